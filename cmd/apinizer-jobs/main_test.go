package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

func runCmd(stdin string, args ...string) result {
	var out, errOut bytes.Buffer
	code := runWith(args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// Queue URLs for runs that never reach SQS.
const (
	qURL   = "https://sqs.example/1/q"
	dlqURL = "https://sqs.example/1/dlq"
)

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		says string // in stderr, or stdout when the code is 0
	}{
		{"no command", nil, exitUsage, "Usage:"},
		{"an unknown command", []string{"purge"}, exitUsage, `unknown command "purge"`},
		{"help", []string{"help"}, exitOK, "apinizer-jobs enqueue --queue-url URL"},
		{"enqueue -h", []string{"enqueue", "-h"}, exitOK, ""},
		{"enqueue without a queue", []string{"enqueue", "a"}, exitUsage, "--queue-url is required"},
		{"enqueue without secrets", []string{"enqueue", "--queue-url", qURL}, exitUsage,
			"no secrets given"},
		{"an unknown flag", []string{"enqueue", "--queue-url", qURL, "--fast", "a"}, exitUsage,
			"flag provided but not defined: -fast"},
		{"a bad tag", []string{"enqueue", "--queue-url", qURL, "--tag", "rotate"}, exitUsage,
			`tag "rotate" is not Key=Value`},
		{"a bad job id", []string{"enqueue", "--queue-url", qURL, "--job-id", "a b", "x"}, exitUsage,
			"--job-id"},
		{"a project without Apinizer", []string{"enqueue", "--queue-url", qURL, "--project", "P"},
			exitUsage, "--project needs --apinizer-url and --token-secret-id"},
		{"a template without a project", []string{"enqueue", "--queue-url", qURL,
			"--name-template", "x/{username}", "a"}, exitUsage, "go with --project"},
		{"a template without the username", []string{"enqueue", "--queue-url", qURL,
			"--project", "P", "--apinizer-url", "https://a", "--token-secret-id", "t",
			"--name-template", "x/{project}"}, exitUsage, "has no {username}"},
		{"an empty exclusion", []string{"enqueue", "--queue-url", qURL, "--exclude", "x", "--exclude", " ", "a"},
			exitUsage, "--exclude given an empty value"},
		{"an empty file name", []string{"enqueue", "--queue-url", qURL, "--file", ""},
			exitUsage, "--file given an empty value"},
		{"an empty job id, not the default", []string{"enqueue", "--queue-url", qURL, "--job-id", "",
			"--dry-run", "a"}, exitUsage, "--job-id given an empty value"},
		{"redrive -h", []string{"redrive", "-h"}, exitOK, ""},
		{"redrive with an empty secret, not every secret", []string{"redrive", "--dlq-url", dlqURL,
			"--queue-url", qURL, "--secret", " ", "--reason", ""}, exitUsage,
			"--reason, --secret given an empty value"},
		{"redrive without queues", []string{"redrive", "--dlq-url", dlqURL}, exitUsage,
			"--dlq-url and --queue-url are required"},
		{"redrive with an argument", []string{"redrive", "--dlq-url", dlqURL, "--queue-url", qURL, "x"},
			exitUsage, `unexpected argument "x"`},
		{"redrive with a bad reason", []string{"redrive", "--dlq-url", dlqURL, "--queue-url", qURL,
			"--reason", "oops"}, exitUsage, `reason "oops" is none of`},
		{"redrive with a fractional timeout", []string{"redrive", "--dlq-url", dlqURL,
			"--queue-url", qURL, "--visibility-timeout", "1500ms"}, exitUsage, "whole seconds"},
		{"redrive with no visibility timeout", []string{"redrive", "--dlq-url", dlqURL,
			"--queue-url", qURL, "--visibility-timeout", "0s"}, exitUsage, "from 1s to 12h"},
		{"redrive to a queue that is no URL", []string{"redrive", "--dlq-url", dlqURL,
			"--queue-url", "jobs"}, exitUsage, `--queue-url "jobs" is not a queue URL`},
		{"a dry run to a queue that is no URL", []string{"enqueue", "--queue-url", "notaurl",
			"--dry-run", "a"}, exitUsage, `--queue-url "notaurl" is not a queue URL`},
		{"Apinizer over plain http, refused before any AWS call", []string{"enqueue",
			"--queue-url", qURL, "--project", "P", "--apinizer-url", "http://apinizer.example",
			"--token-secret-id", "t"}, exitUsage, "--apinizer-url: base URL host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd("", tt.args...)
			text := r.stderr
			if tt.code == exitOK {
				text = r.stdout + r.stderr
			}
			if r.code != tt.code || !strings.Contains(text, tt.says) {
				t.Errorf("exit %d, want %d; output %q, want it to say %q", r.code, tt.code,
					text, tt.says)
			}
		})
	}
}

func TestEnqueueDryRunNeedsNoAWS(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	// flags after and between the ids; "--" ends the flags
	r := runCmd("", "enqueue", "a", "--queue-url", "https://sqs/q", "b", "--dry-run",
		"--job-id=j-1", "a", "--", "-c")
	want := `queue: https://sqs/q (standard)
job id: j-1
would send {"secretId":"a","jobId":"j-1"}
would send {"secretId":"b","jobId":"j-1"}
would send {"secretId":"-c","jobId":"j-1"}
summary (dry run, nothing sent): found 4, would enqueue 3, failed 0, skipped duplicates 1, excluded 0
`
	if r.code != exitOK || r.stdout != want {
		t.Errorf("exit %d\n%s\nwant\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
}

func TestEnqueueSendsASecretNamedByNameAndByARNOnce(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/o/a-AbCdEf"
	r := runCmd("", "enqueue", "--queue-url", qURL, "--dry-run", "--job-id", "j",
		"apinizer/o/a", arn)
	if r.code != exitOK || strings.Count(r.stdout, "would send") != 1 ||
		!strings.Contains(r.stdout, `would send {"secretId":"apinizer/o/a","jobId":"j"}`) ||
		!strings.Contains(r.stdout, "would enqueue 1, failed 0, skipped duplicates 1,") {
		t.Errorf("exit %d\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

func TestEnqueueDefaultJobIDIsOnePerRun(t *testing.T) {
	r := runCmd("", "enqueue", "--queue-url", qURL, "--dry-run", "a", "b")
	lines := strings.Split(r.stdout, "\n")
	jobID, ok := strings.CutPrefix(lines[1], "job id: ")
	if !ok || !strings.HasPrefix(jobID, "enqueue-") ||
		!strings.Contains(r.stdout, fmt.Sprintf(`{"secretId":"b","jobId":%q}`, jobID)) {
		t.Errorf("output:\n%s", r.stdout)
	}
}

// One moto serves the tests that send; each test has its own names.
var (
	motoOnce sync.Once
	motoSrv  *standin.Moto
	motoErr  error
	nameSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if motoSrv != nil {
		_ = motoSrv.Stop()
	}
	os.Exit(code)
}

// motoEnv points the SDK's default configuration at moto, as an operator
// would with AWS_ENDPOINT_URL, and returns clients for the test's own
// checks.
func motoEnv(t *testing.T) (*sqs.Client, *secretsmanager.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs moto")
	}
	motoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), standin.MotoStartTimeout+5*time.Second)
		defer cancel()
		motoSrv, motoErr = standin.StartMoto(ctx, io.Discard)
	})
	if motoErr != nil {
		t.Fatalf("starting moto: %v", motoErr)
	}
	for _, kv := range motoSrv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	cfg, err := motoSrv.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return sqs.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg)
}

func unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, nameSeq.Add(1))
}

func createQueue(t *testing.T, q *sqs.Client) string {
	t.Helper()
	out, err := q.CreateQueue(t.Context(),
		&sqs.CreateQueueInput{QueueName: aws.String(unique("jobs-"))})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

func createSecret(t *testing.T, sm *secretsmanager.Client, name, value string, tags ...string) {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	for _, kv := range tags {
		k, v, _ := strings.Cut(kv, "=")
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if _, err := sm.CreateSecret(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

// bodies reads and deletes every message of a queue and returns the
// bodies, sorted, each once. A standard queue delivers at least once, and
// the SDK resends a SendMessageBatch whose answer the connection lost
// (aws/aws-sdk-go-v2#2737, #2949): a job may arrive twice, which the bulk
// function turns into one rotation (same job id, same version), so the
// tests check which jobs were sent, not how many copies.
func bodies(t *testing.T, q *sqs.Client, url string) []string {
	t.Helper()
	var out []string
	for {
		r, err := q.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, VisibilityTimeout: 30})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			slices.Sort(out)
			return slices.Compact(out)
		}
		for _, m := range r.Messages {
			out = append(out, aws.ToString(m.Body))
			if _, err := q.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url),
				ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// jobs returns the sorted bodies of jobs for secrets under one job id.
func jobs(jobID string, secretIDs ...string) []string {
	var out []string
	for _, id := range secretIDs {
		out = append(out, fmt.Sprintf(`{"secretId":%q,"jobId":%q}`, id, jobID))
	}
	slices.Sort(out)
	return out
}

func TestEnqueueAgainstMoto(t *testing.T) {
	q, sm := motoEnv(t)
	base := unique("apinizer/cmd") + "/"
	createSecret(t, sm, base+"a", `{"password":"pw-a"}`, "rotate=now")
	createSecret(t, sm, base+"b", `{"password":"pw-b"}`, "rotate=later")
	createSecret(t, sm, base+"c", `{"password":"pw-c"}`, "rotate=now")
	createSecret(t, sm, "elsewhere/"+base+"d", `{"password":"pw-d"}`, "rotate=now")
	file := filepath.Join(t.TempDir(), "ids.txt")
	list := "# leaked\n" + base + "a\n\n" + base + "b\n" + base + "a\n"
	if err := os.WriteFile(file, []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{"from the arguments", "", []string{base + "a", base + "b"}, jobs("j", base+"a", base+"b")},
		{"from a file", "", []string{"--file", file}, jobs("j", base+"a", base+"b")},
		{"from stdin", base + "c\n" + base + "a\n", []string{"-", base + "b"},
			jobs("j", base+"a", base+"b", base+"c")},
		{"by prefix", "", []string{"--prefix", base}, jobs("j", base+"a", base+"b", base+"c")},
		// the token secret under the same prefix gets no job, by name or ARN
		{"by prefix, excluding one", "", []string{"--prefix", base, "--exclude", base + "b",
			"--exclude", "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + base + "c-AbCdEf"},
			jobs("j", base+"a")},
		{"by tag", "", []string{"--tag", "rotate=now"}, nil}, // checked below: other tests' secrets match
		{"by prefix and tag", "", []string{"--prefix", base, "--tag", "rotate=now"},
			jobs("j", base+"a", base+"c")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := createQueue(t, q)
			r := runCmd(tt.stdin, append([]string{"enqueue", "--queue-url", url, "--job-id", "j"},
				tt.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			got := bodies(t, q, url)
			if tt.want == nil {
				for _, id := range []string{base + "a", base + "c", "elsewhere/" + base + "d"} {
					if !slices.Contains(got, jobs("j", id)[0]) {
						t.Errorf("no job for %s in %v", id, got)
					}
				}
				if slices.Contains(got, jobs("j", base+"b")[0]) {
					t.Errorf("a job for %sb, tagged rotate=later", base)
				}
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("sent %v\nwant %v", got, tt.want)
			}
			wantSummary := fmt.Sprintf("enqueued %d, failed 0", len(tt.want))
			if !strings.Contains(r.stdout, wantSummary) {
				t.Errorf("summary lacks %q:\n%s", wantSummary, r.stdout)
			}
			if strings.Contains(r.stdout+r.stderr, "pw-") {
				t.Errorf("a password was printed:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}

func TestEnqueueFailsForAnInvalidIDAndShowsProgress(t *testing.T) {
	q, _ := motoEnv(t)
	url := createQueue(t, q)
	r := runCmd("", "enqueue", "--queue-url", url, "--progress", "good", "bad id", "good")
	if r.code != exitFailed {
		t.Errorf("exit %d, want %d", r.code, exitFailed)
	}
	for _, line := range []string{
		"summary: found 3, enqueued 1, failed 1, skipped duplicates 1, excluded 0\n",
		`failed bad id: invalid bulk job: "secretId" must be printable ASCII without spaces` + "\n",
	} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("stdout lacks %q:\n%s", line, r.stdout)
		}
	}
	if r.stderr != "enqueue: 1/1 sent, 0 failed\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
	if got := bodies(t, q, url); len(got) != 1 {
		t.Errorf("sent %v", got)
	}
}

func TestEnqueueToAQueueThatDoesNotExist(t *testing.T) {
	q, _ := motoEnv(t)
	url := createQueue(t, q) + "-gone"
	r := runCmd("", "enqueue", "--queue-url", url, "a", "b")
	if r.code != exitFailed || !strings.Contains(r.stdout, "summary: found 2, enqueued 0, failed 2") {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestEnqueueAProject(t *testing.T) {
	q, sm := motoEnv(t)
	sim, err := simulator.Start(simulator.Config{Tokens: []string{"sim-token-7"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	project := unique("Orders")
	sim.SetCredential(project, "orders-client", "pw-1")
	sim.SetCredential(project, "billing", "pw-2")
	tokenID := unique("apinizer-token-")
	createSecret(t, sm, tokenID, `{"token":"sim-token-7"}`)
	url := createQueue(t, q)

	r := runCmd("", "enqueue", "--queue-url", url, "--job-id", "p", "--project", project,
		"--apinizer-url", sim.URL, "--token-secret-id", tokenID,
		"--name-template", "creds/{project}/{username}")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := jobs("p", "creds/"+project+"/orders-client", "creds/"+project+"/billing")
	if got := bodies(t, q, url); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent %v\nwant %v", got, want)
	}
	if all := r.stdout + r.stderr; strings.Contains(all, "sim-token-7") || strings.Contains(all, "pw-") {
		t.Errorf("a secret value was printed:\n%s%s", r.stdout, r.stderr)
	}

	// an unknown project fails before anything is sent
	r = runCmd("", "enqueue", "--queue-url", url, "--project", "Nope", "--apinizer-url", sim.URL,
		"--token-secret-id", tokenID)
	if r.code != exitFailed || !strings.Contains(r.stderr, `Apinizer project "Nope"`) {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// record returns a dead-letter record as the functions write it.
func record(t *testing.T, r deadletter.Record) string {
	t.Helper()
	r.Timestamp = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRedriveAgainstMoto(t *testing.T) {
	q, _ := motoEnv(t)
	dlq, jobQueue := createQueue(t, q), createQueue(t, q)
	for _, body := range []string{
		record(t, deadletter.Record{Reason: deadletter.ReasonDeploymentFailed,
			Source: deadletter.SourceRotation, SecretID: "apinizer/o/b", VersionID: "v1",
			Error: "staging failed"}),
		record(t, deadletter.Record{Reason: deadletter.ReasonRejected, Source: deadletter.SourceBulk,
			SecretID: "apinizer/o/a", MessageID: "m-1", JobID: "leak-1",
			JobBody: `{"secretId":"apinizer/o/a","jobId":"leak-1"}`, Error: "404"}),
		`{"secretId":"apinizer/o/c","jobId":"leak-1"}`,
	} {
		if _, err := q.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(dlq),
			MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}

	r := runCmd("", "redrive", "--dlq-url", dlq, "--queue-url", jobQueue, "--dry-run")
	if r.code != exitOK || strings.Count(r.stdout, "\nwould redrive ") != 3 {
		t.Errorf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = runCmd("", "redrive", "--dlq-url", dlq, "--queue-url", jobQueue, "--secret", "apinizer/o/a",
		"--progress")
	if r.code != exitOK ||
		!strings.Contains(r.stdout, "summary: received 3, selected 1, redriven 1") ||
		!strings.Contains(r.stderr, "redrive: received 3, redriven 1, failed 0") {
		t.Errorf("one secret: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := bodies(t, q, jobQueue); fmt.Sprint(got) != fmt.Sprint(jobs("leak-1", "apinizer/o/a")) {
		t.Errorf("sent %v", got)
	}

	r = runCmd("", "redrive", "--dlq-url", dlq, "--queue-url", jobQueue)
	if r.code != exitOK || !strings.Contains(r.stdout, "summary: received 2, selected 2, redriven 2") {
		t.Errorf("the rest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got := bodies(t, q, jobQueue)
	both := strings.Join(got, " ")
	if len(got) != 2 || !strings.Contains(both, `{"secretId":"apinizer/o/c","jobId":"leak-1"}`) ||
		!strings.Contains(both, `{"secretId":"apinizer/o/b","jobId":"redrive-`) {
		t.Errorf("sent %v", got)
	}
	if left := bodies(t, q, dlq); len(left) != 0 {
		t.Errorf("left in the DLQ: %v", left)
	}
}

// The SDK sends to its own region's endpoint whatever the queue URL's host
// says: a queue of another region is refused before anything is sent.
func TestAQueueOfAnotherRegionIsRefused(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9") // nothing listens: no call may be made
	euQueue := "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
	for _, args := range [][]string{
		{"enqueue", "--queue-url", euQueue, "apinizer/o/a"},
		{"redrive", "--dlq-url", "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
			"--queue-url", euQueue},
	} {
		r := runCmd("", args...)
		if r.code != exitUsage || !strings.Contains(r.stderr,
			"--queue-url is a queue in eu-west-1, but the AWS configuration's region is us-east-1") {
			t.Errorf("%s: exit %d\n%s", args[0], r.code, r.stderr)
		}
	}
}

func TestCheckQueueRegion(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://sqs.us-east-1.amazonaws.com/1/q":             true,
		"https://SQS.US-EAST-1.amazonaws.com/1/q":             true,
		"https://us-east-1.queue.amazonaws.com/1/q":           true,
		"https://sqs.eu-west-1.amazonaws.com/1/q":             false,
		"https://eu-west-1.queue.amazonaws.com/1/q":           false,
		"http://127.0.0.1:4566/000000000000/q":                true, // an emulator
		"https://sqs.eu-west-1.example.com/1/q":               true, // not AWS
		"https://vpce-1.sqs.eu-west-1.vpce.amazonaws.com/1/q": true, // an endpoint of the caller's choosing
	} {
		if err := checkQueueRegion("--queue-url", url, "us-east-1"); (err == nil) != ok {
			t.Errorf("%s: %v, want ok %v", url, err, ok)
		}
	}
}
