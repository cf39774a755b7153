package jobqueue

import (
	"context"
	"fmt"
	"io"
	"os"
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
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/bulk"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// One moto serves the package's integration tests; each test has its own
// secret names and queues.
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

// awsClients are SDK clients that reach moto.
type awsClients struct {
	sm *secretsmanager.Client
	q  *sqs.Client
}

func startMoto(t *testing.T) awsClients {
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
	cfg, err := motoSrv.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return awsClients{sm: secretsmanager.NewFromConfig(cfg), q: sqs.NewFromConfig(cfg)}
}

// unique returns a name no other test uses.
func unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, nameSeq.Add(1))
}

func createQueue(t *testing.T, c awsClients, name string) string {
	t.Helper()
	in := &sqs.CreateQueueInput{QueueName: aws.String(name)}
	if strings.HasSuffix(name, ".fifo") {
		in.Attributes = map[string]string{"FifoQueue": "true"}
	}
	out, err := c.q.CreateQueue(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

func createSecret(t *testing.T, c awsClients, name, value string, tags ...string) {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	for _, kv := range tags {
		k, v, _ := strings.Cut(kv, "=")
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if _, err := c.sm.CreateSecret(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

// received is one message read back from a queue.
type received struct {
	body, group, dedup string
}

// drain reads and deletes every message of a queue.
func drain(t *testing.T, c awsClients, url string) []received {
	t.Helper()
	var out []received
	for {
		r, err := c.q.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 30,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{
				types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			out = append(out, received{body: aws.ToString(m.Body),
				group: m.Attributes["MessageGroupId"], dedup: m.Attributes["MessageDeduplicationId"]})
			if _, err := c.q.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{
				QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func sortedBodies(rs []received) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.body)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func TestMotoListSecretIDsByPrefixAndTag(t *testing.T) {
	c := startMoto(t)
	base := unique("apinizer/list") + "/"
	createSecret(t, c, base+"orders/a", `{"password":"x"}`, "rotate=now")
	createSecret(t, c, base+"orders/b", `{"password":"x"}`, "rotate=nowhere")
	createSecret(t, c, base+"ordersx/c", `{"password":"x"}`, "rotate=now")
	createSecret(t, c, "other/"+base+"orders/d", `{"password":"x"}`, "team=now", "rotate=later")
	for i := range 105 { // more than one page
		createSecret(t, c, fmt.Sprintf("%spaged/%03d", base, i), "x")
	}

	got, err := ListSecretIDs(t.Context(), c.sm, SecretFilter{Prefix: base + "orders/"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprintf("[%sorders/a %sorders/b]", base, base) {
		t.Errorf("by prefix: %v", got)
	}

	got, err = ListSecretIDs(t.Context(), c.sm, SecretFilter{Prefix: base + "paged/"})
	if err != nil || len(got) != 105 {
		t.Errorf("paged: %d ids, %v", len(got), err)
	}

	got, err = ListSecretIDs(t.Context(), c.sm, SecretFilter{Prefix: base, TagKey: "rotate",
		TagValue: "now"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprintf("[%sorders/a %sordersx/c]", base, base) {
		t.Errorf("by prefix and tag: %v", got)
	}
}

func TestMotoEnqueue(t *testing.T) {
	c := startMoto(t)
	for _, name := range []string{unique("jobs-"), unique("jobs-") + ".fifo"} {
		t.Run(name, func(t *testing.T) {
			url := createQueue(t, c, name)
			ids := secretIDs(23)
			r, err := Enqueue(t.Context(), c.q, append(ids, ids[:5]...),
				EnqueueOptions{QueueURL: url, JobID: "leak-9"})
			if err != nil {
				t.Fatal(err)
			}
			if r.Found != 28 || r.Enqueued != 23 || r.Duplicates != 5 || !r.OK() {
				t.Fatalf("report: found %d enqueued %d duplicates %d failed %v", r.Found,
					r.Enqueued, r.Duplicates, r.Failed)
			}
			got := drain(t, c, url)
			if len(got) != 23 {
				t.Fatalf("%d messages in the queue, want 23", len(got))
			}
			for i, m := range got {
				job, err := bulk.ParseJob(m.body)
				if err != nil || job.JobID != "leak-9" || !slices.Contains(ids, job.SecretID) {
					t.Errorf("message %d: %s (%v)", i, m.body, err)
				}
				if isFIFO(url) && (m.group != job.SecretID || m.dedup != dedupID("leak-9", job.SecretID)) {
					t.Errorf("message %d: group %q dedup %q", i, m.group, m.dedup)
				}
			}
		})
	}
}

func TestMotoRedrive(t *testing.T) {
	c := startMoto(t)
	dlq := createQueue(t, c, unique("dead-letters-"))
	jobs := createQueue(t, c, unique("jobs-"))
	send := func(body string) {
		if _, err := c.q.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(dlq),
			MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	bulkRecord := record(t, deadletter.Record{Reason: "deployment_failed", Source: "bulk",
		SecretID: "apinizer/o/a", MessageID: "orig-a", JobID: "leak-1",
		JobBody: `{"secretId":"apinizer/o/a","jobId":"leak-1"}`})
	send(bulkRecord)
	send(bulkRecord) // repeated after a crash
	send(record(t, deadletter.Record{Reason: "rejected", Source: "rotation",
		SecretID: "apinizer/o/b", VersionID: "v-b"}))
	send(`{"secretId":"apinizer/o/c","jobId":"leak-1"}`)
	send(record(t, deadletter.Record{Reason: "invalid_job", Source: "bulk", MessageID: "orig-x",
		JobBody: "garbage"}))

	// a dry run leaves all five to be received at once
	r, err := Redrive(t.Context(), c.q, RedriveOptions{DLQURL: dlq, QueueURL: jobs, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Count(StateWouldRedrive) != 3 || r.Count(StateWouldDedupe) != 1 ||
		r.Count(StateSkipped) != 1 {
		t.Errorf("dry run: %s", states(r))
	}
	if n := len(drain(t, c, jobs)); n != 0 {
		t.Errorf("a dry run sent %d jobs", n)
	}

	// the rotation record only
	r, err = Redrive(t.Context(), c.q, RedriveOptions{DLQURL: dlq, QueueURL: jobs,
		Reason: "rejected"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Count(StateRedriven) != 1 || r.Count(StateNotMatching) != 4 || !r.OK() {
		t.Errorf("rejected only: %s", states(r))
	}
	rotationMsg := r.Messages[slices.IndexFunc(r.Messages, func(m *Message) bool {
		return m.State == StateRedriven
	})].MessageID
	want := fmt.Sprintf(`{"secretId":"apinizer/o/b","jobId":"redrive-%s"}`, rotationMsg)
	if got := sortedBodies(drain(t, c, jobs)); got != want {
		t.Errorf("sent %s, want %s", got, want)
	}

	// then the rest
	r, err = Redrive(t.Context(), c.q, RedriveOptions{DLQURL: dlq, QueueURL: jobs})
	if err != nil {
		t.Fatal(err)
	}
	if r.Count(StateRedriven) != 2 || r.Count(StateDuplicate) != 1 || r.Count(StateSkipped) != 1 ||
		!r.OK() || len(r.Messages) != 4 {
		t.Errorf("the rest: %s", states(r))
	}
	want = `{"secretId":"apinizer/o/a","jobId":"leak-1"} {"secretId":"apinizer/o/c","jobId":"leak-1"}`
	if got := sortedBodies(drain(t, c, jobs)); got != want {
		t.Errorf("sent %s, want %s", got, want)
	}
	left := drain(t, c, dlq)
	if len(left) != 1 || !strings.Contains(left[0].body, `"invalid_job"`) {
		t.Errorf("left in the DLQ: %v", left)
	}
}

func TestMotoEnqueueAProjectsCredentials(t *testing.T) {
	c := startMoto(t)
	sim, err := simulator.Start(simulator.Config{Tokens: []string{"sim-token-1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	project := unique("Orders")
	sim.SetCredential(project, "orders-client", "pw-1")
	sim.SetCredential(project, "billing", "pw-2")
	sim.SetCredential(unique("Other"), "someone", "pw-3")
	tokenID := unique("apinizer-token-")
	createSecret(t, c, tokenID, "sim-token-1")

	client, err := apinizer.New(sim.URL, apinizer.NewSecretToken(c.sm, tokenID), apinizer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ProjectSecretIDs(t.Context(), client, project, DefaultNameTemplate)
	if err != nil {
		t.Fatal(err)
	}
	url := createQueue(t, c, unique("jobs-"))
	opts := EnqueueOptions{QueueURL: url, JobID: "p-1"}
	if _, err := Enqueue(t.Context(), c.q, ids, opts); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"secretId":"apinizer/%s/billing","jobId":"p-1"} `+
		`{"secretId":"apinizer/%s/orders-client","jobId":"p-1"}`, project, project)
	if got := sortedBodies(drain(t, c, url)); got != want {
		t.Errorf("sent %s\nwant %s", got, want)
	}

	// a token Apinizer refuses is an error, and no id
	createSecret(t, c, tokenID+"-bad", "wrong")
	bad, _ := apinizer.New(sim.URL, apinizer.NewSecretToken(c.sm, tokenID+"-bad"),
		apinizer.Options{MaxAttempts: 1})
	if ids, err := ProjectSecretIDs(t.Context(), bad, project, DefaultNameTemplate); err == nil {
		t.Errorf("a refused token listed %v", ids)
	}
}
