package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/apinizer-rotation/rotator/internal/standin"
)

// One moto serves the whole package; every test has its own proxy and its
// own secret and queue names.
var (
	motoOnce sync.Once
	motoSrv  *standin.Moto
	motoErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if motoSrv != nil {
		_ = motoSrv.Stop()
	}
	os.Exit(code)
}

func startMoto(t *testing.T) *standin.Moto {
	t.Helper()
	motoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), standin.MotoStartTimeout+5*time.Second)
		defer cancel()
		motoSrv, motoErr = standin.StartMoto(ctx, io.Discard)
	})
	if motoErr != nil {
		t.Fatalf("starting moto: %v", motoErr)
	}
	return motoSrv
}

var nameSeq atomic.Int64

// uniqueName returns a name for a secret or queue no other test uses.
func uniqueName(t *testing.T) string {
	base := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	if len(base) > 60 {
		base = base[len(base)-60:]
	}
	return fmt.Sprintf("fp-%s-%d", strings.Trim(base, "-"), nameSeq.Add(1))
}

// clientOptions shape the SDK clients that go through the proxy.
type clientOptions struct {
	maxAttempts int           // 0: the SDK's default (3)
	noBackoff   bool          // the standard retryer, without waits
	httpTimeout time.Duration // 0: none
}

type env struct {
	p      *Proxy
	sm     *secretsmanager.Client // through the proxy
	q      *sqs.Client            // through the proxy
	motoSM *secretsmanager.Client // straight to moto
	motoQ  *sqs.Client            // straight to moto
}

func setup(t *testing.T, opts clientOptions) *env {
	t.Helper()
	m := startMoto(t)
	p, err := Start(m.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want http://127.0.0.1:PORT", p.URL)
	}

	cfg, err := m.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// cfg.BaseEndpoint on a copy of cfg would not do: the load option in
	// cfg.ConfigSources wins over it. Set it per client.
	common := func(base *string, maxAttempts *int, retryer *aws.Retryer, hc *smithyhttp.ClientDo) {
		*base = p.URL
		if opts.maxAttempts != 0 {
			*maxAttempts = opts.maxAttempts
		}
		if opts.noBackoff {
			*retryer = retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
					return 0, nil
				})
			})
		}
		if opts.httpTimeout != 0 {
			*hc = &http.Client{Timeout: opts.httpTimeout}
		}
	}
	e := &env{
		p: p,
		sm: secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
			var hc smithyhttp.ClientDo
			o.BaseEndpoint = new(string)
			common(o.BaseEndpoint, &o.RetryMaxAttempts, &o.Retryer, &hc)
			if hc != nil {
				o.HTTPClient = hc
			}
		}),
		q: sqs.NewFromConfig(cfg, func(o *sqs.Options) {
			var hc smithyhttp.ClientDo
			o.BaseEndpoint = new(string)
			common(o.BaseEndpoint, &o.RetryMaxAttempts, &o.Retryer, &hc)
			if hc != nil {
				o.HTTPClient = hc
			}
		}),
		motoSM: secretsmanager.NewFromConfig(cfg),
		motoQ:  sqs.NewFromConfig(cfg),
	}
	return e
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createSecret creates a secret straight on moto, unseen by the proxy.
func (e *env) createSecret(t *testing.T, value string) string {
	t.Helper()
	name := uniqueName(t)
	_, err := e.motoSM.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// motoCurrent reads a secret's AWSCURRENT value straight from moto.
func (e *env) motoCurrent(t *testing.T, name string) string {
	t.Helper()
	out, err := e.motoSM.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.SecretString)
}

// createQueue creates a queue straight on moto and returns its URL.
func (e *env) createQueue(t *testing.T) string {
	t.Helper()
	out, err := e.motoQ.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String(uniqueName(t))})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// motoMessages receives, straight from moto, the bodies of the messages
// in a queue.
func (e *env) motoMessages(t *testing.T, queueURL string) []string {
	t.Helper()
	out, err := e.motoQ.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, VisibilityTimeout: 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range out.Messages {
		bodies = append(bodies, aws.ToString(m.Body))
	}
	return bodies
}

func (e *env) getSecret(ctx context.Context, name string) (string, error) {
	out, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func (e *env) putSecret(ctx context.Context, name, value string) error {
	_, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
	})
	return err
}

func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	e := setup(t, clientOptions{})
	ctx := ctxT(t)

	name := uniqueName(t)
	if _, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String("s3cr3t"),
	}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if got, err := e.getSecret(ctx, name); err != nil || got != "s3cr3t" {
		t.Fatalf("GetSecretValue = %q, %v; want s3cr3t", got, err)
	}
	if got := e.motoCurrent(t, name); got != "s3cr3t" {
		t.Fatalf("moto has %q", got)
	}

	cq, err := e.q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(uniqueName(t))})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	sent, err := e.q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{
		QueueUrl: cq.QueueUrl,
		Entries: []sqstypes.SendMessageBatchRequestEntry{
			{Id: aws.String("a"), MessageBody: aws.String("first")},
			{Id: aws.String("b"), MessageBody: aws.String("second")},
		},
	})
	if err != nil || len(sent.Successful) != 2 {
		t.Fatalf("SendMessageBatch = %+v, %v", sent, err)
	}
	// the SDK checks the MD5 digests of bodies: the bodies passed untouched
	got := map[string]bool{}
	for range 5 {
		out, err := e.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: cq.QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 30,
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		for _, m := range out.Messages {
			got[aws.ToString(m.Body)] = true
		}
		if len(got) == 2 {
			break
		}
	}
	if !got["first"] || !got["second"] {
		t.Fatalf("received %v, want first and second", got)
	}

	// errors pass through as moto gave them
	_, directErr := e.motoSM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("fp-no-such-secret")})
	_, err = e.getSecret(ctx, "fp-no-such-secret")
	var notFound *smtypes.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("GetSecretValue of a missing secret: %v, want ResourceNotFoundException", err)
	}
	notFoundStatus := httpStatus(err)
	if notFoundStatus != httpStatus(directErr) || notFoundStatus == 0 {
		t.Fatalf("status through the proxy %d, from moto %d", notFoundStatus, httpStatus(directErr))
	}

	// moto's own API passes and is not an AWS call
	before := e.p.Count("", "")
	resp, err := http.Get(e.p.URL + "/moto-api/data.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "secretsmanager") {
		t.Fatalf("/moto-api/data.json: %d %.200s", resp.StatusCode, body)
	}
	if e.p.Count("", "") != before {
		t.Fatal("a /moto-api request was counted as an AWS call")
	}

	calls := e.p.Calls()
	want := []struct {
		service, op string
		status      int
	}{
		{"secretsmanager", "CreateSecret", 200},
		{"secretsmanager", "GetSecretValue", 200},
		{"sqs", "CreateQueue", 200},
		{"sqs", "SendMessageBatch", 200},
		{"sqs", "ReceiveMessage", 200},
	}
	if len(calls) < len(want)+1 {
		t.Fatalf("calls = %+v", calls)
	}
	for i, w := range want {
		c := calls[i]
		if c.Service != w.service || c.Operation != w.op || c.Status != w.status || c.Fault != "" || c.Time.IsZero() {
			t.Errorf("call %d = %+v, want %s.%s %d", i, c, w.service, w.op, w.status)
		}
	}
	last := calls[len(calls)-1]
	if last.Operation != "GetSecretValue" || last.Status != notFoundStatus {
		t.Errorf("last call = %+v, want GetSecretValue with status %d", last, notFoundStatus)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Time.Before(calls[i-1].Time) {
			t.Errorf("calls out of order: %+v", calls)
		}
	}
}

func TestCount(t *testing.T) {
	t.Parallel()
	e := setup(t, clientOptions{})
	ctx := ctxT(t)
	name := e.createSecret(t, "v")
	queue := e.createQueue(t)

	for range 3 {
		if _, err := e.getSecret(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String("m")}); err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []struct {
		service, op string
		want        int
	}{
		{"secretsmanager", "GetSecretValue", 3},
		{"secretsmanager", "DescribeSecret", 1},
		{"secretsmanager", "", 4},
		{"sqs", "SendMessage", 2},
		{"SQS", "sendmessage", 2},
		{"sqs", "", 2},
		{"", "GetSecretValue", 3},
		{"", "", 6},
		{"sqs", "GetSecretValue", 0},
	} {
		if got := e.p.Count(c.service, c.op); got != c.want {
			t.Errorf("Count(%q, %q) = %d, want %d", c.service, c.op, got, c.want)
		}
	}
	if n := len(e.p.Calls()); n != 6 {
		t.Errorf("len(Calls()) = %d, want 6", n)
	}
	e.p.ResetCalls()
	if n := e.p.Count("", ""); n != 0 || len(e.p.Calls()) != 0 {
		t.Errorf("after ResetCalls: Count = %d, Calls = %v", n, e.p.Calls())
	}
	if _, err := e.getSecret(ctx, name); err != nil {
		t.Fatal(err)
	}
	if n := e.p.Count("secretsmanager", "GetSecretValue"); n != 1 {
		t.Errorf("Count after a reset and one call = %d", n)
	}
}

func TestFailBefore(t *testing.T) {
	t.Parallel()
	e := setup(t, clientOptions{maxAttempts: 1})
	ctx := ctxT(t)

	t.Run("throttling", func(t *testing.T) {
		e.p.Add(Rule{
			Service: "secretsmanager", Operation: "CreateSecret", Phase: Before, Action: Fail,
			Status: 400, Code: "ThrottlingException", Message: "Rate exceeded",
		})
		name := uniqueName(t)
		_, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(name), SecretString: aws.String("v"),
		})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("CreateSecret: %v, want an API error", err)
		}
		if apiErr.ErrorCode() != "ThrottlingException" || apiErr.ErrorMessage() != "Rate exceeded" {
			t.Errorf("error code %q message %q", apiErr.ErrorCode(), apiErr.ErrorMessage())
		}
		if httpStatus(err) != 400 {
			t.Errorf("status %d, want 400", httpStatus(err))
		}
		// not forwarded: moto has no such secret
		_, err = e.motoSM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		var notFound *smtypes.ResourceNotFoundException
		if !errors.As(err, &notFound) {
			t.Errorf("moto: DescribeSecret = %v, want ResourceNotFound: the call reached moto", err)
		}
		calls := e.p.Calls()
		last := calls[len(calls)-1]
		if last.Operation != "CreateSecret" || last.Status != 400 || last.Fault != "Fail Before 400 ThrottlingException" {
			t.Errorf("call = %+v", last)
		}
		if e.p.Pending() != 0 {
			t.Errorf("Pending = %d", e.p.Pending())
		}
	})

	t.Run("defaults", func(t *testing.T) {
		name := e.createSecret(t, "v")
		e.p.Add(Rule{Action: Fail})
		_, err := e.getSecret(ctx, name)
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != DefaultCode || apiErr.ErrorMessage() != DefaultMessage {
			t.Fatalf("GetSecretValue: %v, want %s: %s", err, DefaultCode, DefaultMessage)
		}
		if httpStatus(err) != DefaultStatus {
			t.Errorf("status %d, want %d", httpStatus(err), DefaultStatus)
		}
		if got, err := e.getSecret(ctx, name); err != nil || got != "v" {
			t.Errorf("the next call = %q, %v; want it untouched", got, err)
		}
	})

	t.Run("sqs", func(t *testing.T) {
		queue := e.createQueue(t)
		e.p.Add(Rule{Service: "sqs", Operation: "SendMessageBatch", Status: 400, Code: "ValidationException"})
		_, err := e.q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{
			QueueUrl: aws.String(queue),
			Entries:  []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("a"), MessageBody: aws.String("x")}},
		})
		if apiCode(err) != "ValidationException" {
			t.Fatalf("SendMessageBatch: %v, want ValidationException", err)
		}
		if got := e.motoMessages(t, queue); len(got) != 0 {
			t.Errorf("moto's queue holds %v; the call reached moto", got)
		}
	})
}

func TestFailAfterPutSecretValue(t *testing.T) {
	t.Parallel()

	t.Run("the write happened", func(t *testing.T) {
		t.Parallel()
		e := setup(t, clientOptions{maxAttempts: 1})
		ctx := ctxT(t)
		name := e.createSecret(t, "old")
		e.p.Add(Rule{Service: "secretsmanager", Operation: "PutSecretValue", Phase: After, Action: Fail})

		err := e.putSecret(ctx, name, "new")
		if apiCode(err) != DefaultCode {
			t.Fatalf("PutSecretValue: %v, want %s", err, DefaultCode)
		}
		if got := e.motoCurrent(t, name); got != "new" {
			t.Errorf("moto's AWSCURRENT = %q, want new: the write did not happen", got)
		}
		calls := e.p.Calls()
		if len(calls) != 1 || calls[0].Status != 500 || calls[0].Fault != "Fail After 500 InternalFailure" {
			t.Errorf("calls = %+v", calls)
		}
	})

	t.Run("retried by the SDK", func(t *testing.T) {
		t.Parallel()
		e := setup(t, clientOptions{noBackoff: true})
		ctx := ctxT(t)
		name := e.createSecret(t, "old")
		e.p.Add(Rule{Operation: "PutSecretValue", Phase: After, Action: Fail})

		// a 500 is retried: Times 1 is absorbed, and the write is done twice
		if err := e.putSecret(ctx, name, "new"); err != nil {
			t.Fatalf("PutSecretValue: %v, want the SDK's retry to succeed", err)
		}
		if n := e.p.Count("secretsmanager", "PutSecretValue"); n != 2 {
			t.Errorf("PutSecretValue calls = %d, want 2", n)
		}
		if got := e.motoCurrent(t, name); got != "new" {
			t.Errorf("moto's AWSCURRENT = %q", got)
		}
	})
}

func TestHang(t *testing.T) {
	t.Parallel()

	t.Run("until the client gives up", func(t *testing.T) {
		t.Parallel()
		e := setup(t, clientOptions{})
		name := e.createSecret(t, "v")
		e.p.Add(Rule{Operation: "GetSecretValue", Action: Hang})

		ctx, cancel := context.WithTimeout(ctxT(t), time.Second)
		defer cancel()
		start := time.Now()
		_, err := e.getSecret(ctx, name)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GetSecretValue: %v, want the deadline", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("gave up after %s", d)
		}
		if n := e.p.Count("", "GetSecretValue"); n != 1 {
			t.Errorf("GetSecretValue calls = %d, want 1: a ctx deadline is not retried", n)
		}
		// the hanging call ends with the client's request, before Close
		waitFor(t, func() bool { return e.p.inflight.Load() == 0 })
		// the next call passes; Close (in Cleanup) does not wait for the hang
		if got, err := e.getSecret(ctxT(t), name); err != nil || got != "v" {
			t.Errorf("next call = %q, %v", got, err)
		}
		if c := e.p.Calls()[0]; c.Fault != "Hang Before" || c.Status != 0 {
			t.Errorf("call = %+v", c)
		}
	})

	t.Run("until the proxy closes", func(t *testing.T) {
		t.Parallel()
		e := setup(t, clientOptions{maxAttempts: 1})
		name := e.createSecret(t, "v")
		e.p.Add(Rule{Operation: "PutSecretValue", Phase: After, Action: Hang})

		done := make(chan error, 1)
		go func() { done <- e.putSecret(ctxT(t), name, "new") }()
		waitFor(t, func() bool { return e.p.Count("", "PutSecretValue") == 1 })
		select {
		case err := <-done:
			t.Fatalf("PutSecretValue returned while hanging: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		closed := make(chan struct{})
		go func() { e.p.Close(); close(closed) }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("PutSecretValue succeeded; want a connection error")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("PutSecretValue still hangs after Close")
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close does not return")
		}
		if got := e.motoCurrent(t, name); got != "new" {
			t.Errorf("moto's AWSCURRENT = %q: Phase After did not forward", got)
		}
	})
}

func TestDrop(t *testing.T) {
	t.Parallel()
	for _, phase := range []Phase{Before, After} {
		t.Run(phase.String(), func(t *testing.T) {
			t.Parallel()
			e := setup(t, clientOptions{maxAttempts: 1})
			queue := e.createQueue(t)
			e.p.Add(Rule{Service: "sqs", Operation: "SendMessageBatch", Phase: phase, Action: Drop})

			_, err := e.q.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{
				QueueUrl: aws.String(queue),
				Entries:  []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("a"), MessageBody: aws.String("dropped")}},
			})
			if err == nil {
				t.Fatal("SendMessageBatch succeeded")
			}
			var apiErr smithy.APIError
			if errors.As(err, &apiErr) {
				t.Fatalf("SendMessageBatch: got an API error %v, want a connection error", err)
			}
			got := e.motoMessages(t, queue)
			if phase == Before && len(got) != 0 {
				t.Errorf("moto's queue holds %v; the call reached moto", got)
			}
			if phase == After && (len(got) != 1 || got[0] != "dropped") {
				t.Errorf("moto's queue holds %v; want the message", got)
			}
			if c := e.p.Calls()[0]; c.Fault != "Drop "+phase.String() || c.Status != 0 {
				t.Errorf("call = %+v", c)
			}
		})
	}
}

func TestHook(t *testing.T) {
	t.Parallel()
	e := setup(t, clientOptions{maxAttempts: 1})
	ctx := ctxT(t)
	name := e.createSecret(t, "v0")

	var hooks atomic.Int32
	var countAtHook atomic.Int32
	e.p.Add(Rule{
		Service: "secretsmanager", Operation: "PutSecretValue", Skip: 1,
		Phase: After, Action: Hook,
		Hook: func() {
			hooks.Add(1)
			countAtHook.Store(int32(e.p.Count("secretsmanager", "PutSecretValue")))
		},
	})

	var errs []error
	for i := 1; i <= 3; i++ {
		if _, err := e.getSecret(ctx, name); err != nil {
			t.Fatal(err)
		}
		errs = append(errs, e.putSecret(ctx, name, fmt.Sprintf("v%d", i)))
	}
	if hooks.Load() != 1 {
		t.Fatalf("Hook called %d times, want 1", hooks.Load())
	}
	if countAtHook.Load() != 2 {
		t.Errorf("Hook called at PutSecretValue #%d, want #2", countAtHook.Load())
	}
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Errorf("PutSecretValue errors = %v, want only the second to fail", errs)
	}
	if got := e.motoCurrent(t, name); got != "v3" {
		t.Errorf("moto's AWSCURRENT = %q", got)
	}
	var faults []string
	for _, c := range e.p.Calls() {
		if c.Fault != "" {
			faults = append(faults, c.Operation+": "+c.Fault)
		}
	}
	if len(faults) != 1 || faults[0] != "PutSecretValue: Hook After" {
		t.Errorf("faults = %v", faults)
	}
	if e.p.Pending() != 0 {
		t.Errorf("Pending = %d", e.p.Pending())
	}

	t.Run("nil hook, before", func(t *testing.T) {
		e.p.Add(Rule{Operation: "PutSecretValue", Action: Hook})
		if err := e.putSecret(ctx, name, "never"); err == nil {
			t.Fatal("PutSecretValue succeeded")
		}
		if got := e.motoCurrent(t, name); got != "v3" {
			t.Errorf("moto's AWSCURRENT = %q; the call reached moto", got)
		}
	})
}

func TestPassRunsTheHookThenForwards(t *testing.T) {
	t.Parallel()
	e := setup(t, clientOptions{maxAttempts: 1})
	ctx := ctxT(t)
	name := e.createSecret(t, "v0")

	release := make(chan struct{})
	var hooked atomic.Int32
	e.p.Add(Rule{Service: "secretsmanager", Operation: "PutSecretValue", Action: Pass,
		Hook: func() { hooked.Add(1); <-release }})
	done := make(chan error)
	go func() { done <- e.putSecret(ctx, name, "v1") }()
	select {
	case err := <-done:
		t.Fatalf("the call went on while the hook held it: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if got := e.motoCurrent(t, name); got != "v0" {
		t.Errorf("moto saw the call before the hook returned: %q", got)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("a passed call failed: %v", err)
	}
	if got := e.motoCurrent(t, name); got != "v1" || hooked.Load() != 1 {
		t.Errorf("moto's AWSCURRENT = %q, hook calls %d", got, hooked.Load())
	}
}

func TestTimesEvery(t *testing.T) {
	t.Parallel()
	e := setup(t, clientOptions{})
	ctx := ctxT(t)
	name := e.createSecret(t, "v")
	e.p.Add(Rule{Operation: "GetSecretValue", Times: -1, Status: 400, Code: "ValidationException"})
	if e.p.Pending() != 1 {
		t.Fatalf("Pending before any call = %d, want 1", e.p.Pending())
	}
	for i := range 5 {
		if _, err := e.getSecret(ctx, name); apiCode(err) != "ValidationException" {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := e.p.Count("", "GetSecretValue"); n != 5 {
		t.Errorf("calls = %d, want 5 (ValidationException is not retried)", n)
	}
	if e.p.Pending() != 0 {
		t.Errorf("Pending = %d after it fired, want 0", e.p.Pending())
	}
	e.p.Clear()
	if got, err := e.getSecret(ctx, name); err != nil || got != "v" {
		t.Errorf("after Clear: %q, %v", got, err)
	}
}

func TestPendingSkipAndOrder(t *testing.T) {
	t.Parallel()
	e := setup(t, clientOptions{maxAttempts: 1})
	ctx := ctxT(t)
	name := e.createSecret(t, "v")
	describe := func() error {
		_, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		return err
	}

	e.p.Add(
		Rule{Operation: "GetSecretValue", Times: 2, Status: 400, Code: "First"},
		Rule{Operation: "GetSecretValue", Skip: 1, Status: 400, Code: "Second"},
		Rule{Service: "sqs", Status: 400, Code: "NotSecretsManager"},
		Rule{Operation: "DescribeSecret", Skip: 2, Status: 400, Code: "Third"},
	)
	if e.p.Pending() != 4 {
		t.Fatalf("Pending = %d, want 4", e.p.Pending())
	}

	var codes []string
	for range 4 {
		_, err := e.getSecret(ctx, name)
		codes = append(codes, apiCode(err))
	}
	// rule 2 was due from the 2nd call, but rule 1 comes first while it has
	// budget left
	if want := []string{"First", "First", "Second", ""}; strings.Join(codes, ",") != strings.Join(want, ",") {
		t.Errorf("GetSecretValue codes = %q, want %q", codes, want)
	}
	if e.p.Pending() != 2 {
		t.Errorf("Pending = %d, want 2", e.p.Pending())
	}

	codes = nil
	for range 4 {
		codes = append(codes, apiCode(describe()))
	}
	if want := []string{"", "", "Third", ""}; strings.Join(codes, ",") != strings.Join(want, ",") {
		t.Errorf("DescribeSecret codes = %q, want %q", codes, want)
	}
	if e.p.Pending() != 1 {
		t.Errorf("Pending = %d, want 1 (the sqs rule)", e.p.Pending())
	}
	e.p.Clear()
	if e.p.Pending() != 0 {
		t.Errorf("Pending after Clear = %d", e.p.Pending())
	}
}

func TestParallel(t *testing.T) {
	t.Parallel()
	e := setup(t, clientOptions{maxAttempts: 1})
	name := e.createSecret(t, "v")
	queue := e.createQueue(t)
	e.p.Add(Rule{Operation: "GetSecretValue", Times: 5, Status: 400, Code: "ValidationException"})

	const n = 40
	var failed, ok atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx := ctxT(t)
			got, err := e.getSecret(ctx, name)
			switch {
			case err == nil && got == "v":
				ok.Add(1)
			case apiCode(err) == "ValidationException":
				failed.Add(1)
			default:
				t.Errorf("GetSecretValue: %q, %v", got, err)
			}
			_, err = e.q.SendMessage(ctx, &sqs.SendMessageInput{
				QueueUrl: aws.String(queue), MessageBody: aws.String(fmt.Sprint(i)),
			})
			if err != nil {
				t.Errorf("SendMessage: %v", err)
			}
			_ = e.p.Calls()
			_ = e.p.Pending()
		})
	}
	wg.Wait()
	if failed.Load() != 5 || ok.Load() != n-5 {
		t.Errorf("failed %d, ok %d; want 5 and %d", failed.Load(), ok.Load(), n-5)
	}
	if got := e.p.Count("secretsmanager", "GetSecretValue"); got != n {
		t.Errorf("GetSecretValue calls = %d", got)
	}
	if got := e.p.Count("sqs", "SendMessage"); got != n {
		t.Errorf("SendMessage calls = %d", got)
	}
	if e.p.Pending() != 0 {
		t.Errorf("Pending = %d", e.p.Pending())
	}
}

// TestSDKRetryBehaviour records which injected faults the SDK's standard
// retryer retries, and how many attempts it makes by default. The waits
// between attempts are taken out; everything else is the default.
func TestSDKRetryBehaviour(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		rule     Rule
		opts     clientOptions
		ctx      time.Duration
		attempts int
	}{
		{"500 InternalFailure", Rule{}, clientOptions{}, 0, 3},
		{"500 unknown code", Rule{Status: 500, Code: "Whatever"}, clientOptions{}, 0, 3},
		{"502", Rule{Status: 502, Code: "BadGateway"}, clientOptions{}, 0, 3},
		{"503 ServiceUnavailable", Rule{Status: 503, Code: "ServiceUnavailable"}, clientOptions{}, 0, 3},
		{"504", Rule{Status: 504, Code: "GatewayTimeout"}, clientOptions{}, 0, 3},
		{"500 modeled InternalServiceError", Rule{Status: 500, Code: "InternalServiceError"}, clientOptions{}, 0, 3},
		{"400 ThrottlingException", Rule{Status: 400, Code: "ThrottlingException"}, clientOptions{}, 0, 3},
		{"400 LimitExceededException", Rule{Status: 400, Code: "LimitExceededException"}, clientOptions{}, 0, 3},
		{"400 RequestTimeoutException", Rule{Status: 400, Code: "RequestTimeoutException"}, clientOptions{}, 0, 3},
		{"429 unmodeled code", Rule{Status: 429, Code: "TooManyThings"}, clientOptions{}, 0, 3},
		{"400 ValidationException", Rule{Status: 400, Code: "ValidationException"}, clientOptions{}, 0, 1},
		{"400 modeled ResourceNotFound", Rule{Status: 400, Code: "ResourceNotFoundException"}, clientOptions{}, 0, 1},
		{"400 InvalidRequestException", Rule{Status: 400, Code: "InvalidRequestException"}, clientOptions{}, 0, 1},
		{"403 AccessDeniedException", Rule{Status: 403, Code: "AccessDeniedException"}, clientOptions{}, 0, 1},
		{"429 modeled InvalidRequest", Rule{Status: 429, Code: "InvalidRequestException"}, clientOptions{}, 0, 1},
		{"Drop Before", Rule{Action: Drop}, clientOptions{}, 0, 3},
		{"Drop After", Rule{Action: Drop, Phase: After}, clientOptions{}, 0, 3},
		{"Hook", Rule{Action: Hook}, clientOptions{}, 0, 3},
		{"Hang, ctx deadline", Rule{Action: Hang}, clientOptions{}, time.Second, 1},
		{"Hang, http.Client timeout", Rule{Action: Hang}, clientOptions{httpTimeout: 500 * time.Millisecond}, 0, 3},
		{"RetryMaxAttempts 5", Rule{}, clientOptions{maxAttempts: 5}, 0, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := c.opts
			opts.noBackoff = true
			e := setup(t, opts)
			name := e.createSecret(t, "v")
			r := c.rule
			r.Operation, r.Times = "DescribeSecret", -1
			e.p.Add(r)
			ctx := ctxT(t)
			if c.ctx != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.ctx)
				defer cancel()
			}
			_, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
			if err == nil {
				t.Fatal("DescribeSecret succeeded")
			}
			if got := e.p.Count("secretsmanager", "DescribeSecret"); got != c.attempts {
				t.Errorf("attempts = %d, want %d (error: %v)", got, c.attempts, err)
			}
		})
	}

	t.Run("sqs", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			rule     Rule
			attempts int
		}{
			{Rule{Status: 400, Code: "RequestThrottled"}, 3},
			{Rule{Status: 403, Code: "OverLimit"}, 1},
			{Rule{Status: 400, Code: "QueueDoesNotExist"}, 1},
		} {
			e := setup(t, clientOptions{noBackoff: true})
			queue := e.createQueue(t)
			r := c.rule
			r.Service, r.Times = "sqs", -1
			e.p.Add(r)
			_, err := e.q.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String("m")})
			if err == nil {
				t.Fatalf("%s: SendMessage succeeded", c.rule.Code)
			}
			if got := e.p.Count("sqs", "SendMessage"); got != c.attempts {
				t.Errorf("%s: attempts = %d, want %d (error: %v)", c.rule.Code, got, c.attempts, err)
			}
		}
	})
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		target, auth string
		service, op  string
		ok           bool
	}{
		{"secretsmanager.PutSecretValue", "", "secretsmanager", "PutSecretValue", true},
		{"AmazonSQS.SendMessageBatch", "", "sqs", "SendMessageBatch", true},
		{"DynamoDB_20120810.GetItem",
			"AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc",
			"dynamodb", "GetItem", true},
		{"Logs_20140328.PutLogEvents", "", "logs_20140328", "PutLogEvents", true},
		{"", "", "", "", false},
		{"nodot", "", "", "", false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://x/", nil)
		if c.target != "" {
			r.Header.Set("X-Amz-Target", c.target)
		}
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		service, op, ok := identify(r)
		if service != c.service || op != c.op || ok != c.ok {
			t.Errorf("identify(%q) = %q, %q, %v; want %q, %q, %v", c.target, service, op, ok, c.service, c.op, c.ok)
		}
	}
}

func TestStartRefusesABadTarget(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"", "127.0.0.1:4566", "ftp://x", "http://"} {
		if p, err := Start(target); err == nil {
			p.Close()
			t.Errorf("Start(%q) succeeded", target)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	p, err := Start("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
