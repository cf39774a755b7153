package bulk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
	"github.com/apinizer-rotation/rotator/pkg/rotation"
)

// fakeRotator answers per secret id; it records the order of calls.
type fakeRotator struct {
	mu      sync.Mutex
	calls   []string
	answers map[string]error
	delay   time.Duration
	running atomic.Int32
	peak    atomic.Int32
	cut     atomic.Int32 // jobs whose context ended before their delay did
}

func (f *fakeRotator) RotateNow(ctx context.Context, secretID string, tokenFor rotation.TokenFor) (rotation.Result, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, secretID)
	err := f.answers[secretID]
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			f.cut.Add(1)
			return rotation.Result{}, ctx.Err()
		}
	}
	if secretID == "panics" {
		panic("boom")
	}
	return rotation.Result{VersionID: tokenFor(secretID), ProjectName: "p", Username: "u"}, err
}

// fakeDLQ keeps what it was sent; it refuses records of the secrets in
// refuse.
type fakeDLQ struct {
	mu      sync.Mutex
	records []deadletter.Record
	refuse  map[string]bool
}

func (d *fakeDLQ) Send(_ context.Context, rs ...deadletter.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	failed := map[int]error{}
	for i, r := range rs {
		if d.refuse[r.SecretID] {
			failed[i] = errors.New("throttled")
			continue
		}
		d.records = append(d.records, r)
	}
	if len(failed) > 0 {
		return &deadletter.SendError{Failed: failed}
	}
	return nil
}

func msg(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body, EventSourceARN: "arn:aws:sqs:us-east-1:1:jobs",
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
}

func job(secret string) string { return fmt.Sprintf(`{"secretId":%q}`, secret) }

func failures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func transient() error {
	return &apinizer.Error{Op: "x", StatusCode: 503, Class: apinizer.ClassTransient}
}

func TestS1OneTransientFailureIsTheOnlyItemReported(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{"s4": transient()}}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}}
	var ev events.SQSEvent
	for i := range 10 {
		ev.Records = append(ev.Records, msg(fmt.Sprintf("m%d", i), job(fmt.Sprintf("s%d", i))))
	}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"m4"}) {
		t.Errorf("failures %v, want [m4]", got)
	}
	if len(rot.calls) != 10 {
		t.Errorf("jobs run: %d", len(rot.calls))
	}
}

func TestS2AllDoneIsAnEmptyListNotNull(t *testing.T) {
	h := &Handler{Rotator: &fakeRotator{}, DeadLetters: &fakeDLQ{}}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg("a", job("s"))}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	if string(b) != `{"batchItemFailures":[]}` {
		t.Errorf("got %s", b)
	}
}

func TestS3ResponseKeysAreExact(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{"s": transient()}}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}}
	resp, _ := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg("id-1", job("s"))}})
	b, _ := json.Marshal(resp)
	if string(b) != `{"batchItemFailures":[{"itemIdentifier":"id-1"}]}` {
		t.Errorf("got %s", b)
	}
}

func TestS4APanicInOneRecordIsDeadLetteredWithItsReason(t *testing.T) {
	dlq := &fakeDLQ{}
	h := &Handler{Rotator: &fakeRotator{}, DeadLetters: dlq}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("a", job("panics")), msg("b", job("fine")),
	}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if len(dlq.records) != 1 || dlq.records[0].Reason != deadletter.ReasonUnexpected || dlq.records[0].MessageID != "a" {
		t.Errorf("records %+v", dlq.records)
	}
}

func TestS5ABadBodyIsDeadLetteredOnceAndTheOthersRun(t *testing.T) {
	rot := &fakeRotator{}
	dlq := &fakeDLQ{}
	h := &Handler{Rotator: rot, DeadLetters: dlq}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("a", job("s1")), msg("b", `{bad`), msg("c", job("s2")),
	}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if len(rot.calls) != 2 {
		t.Errorf("valid jobs run: %d", len(rot.calls))
	}
	if len(dlq.records) != 1 || dlq.records[0].Reason != deadletter.ReasonInvalidJob ||
		!strings.Contains(dlq.records[0].JobBody, "not a JSON object") || dlq.records[0].MessageID != "b" {
		t.Errorf("records %+v", dlq.records)
	}
}

func fifo(id, group, body string) events.SQSMessage {
	m := msg(id, body)
	m.EventSourceARN = "arn:aws:sqs:us-east-1:1:jobs.fifo"
	m.Attributes["MessageGroupId"] = group
	return m
}

func TestS6AFIFOFailureStopsTheRestOfItsGroup(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{"b": transient()}}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}}
	resp, _ := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		fifo("a", "g1", job("a")), fifo("b", "g1", job("b")), fifo("c", "g1", job("c")),
	}})
	if got := failures(resp); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("failures %v", got)
	}
	if slices.Contains(rot.calls, "c") {
		t.Error("c ran after b failed")
	}
}

func TestS7AFIFOFailureInOneGroupDoesNotStopAnother(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{"A1": transient()}}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}}
	resp, _ := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		fifo("A1", "gA", job("A1")), fifo("B1", "gB", job("B1")), fifo("A2", "gA", job("A2")),
	}})
	if got := failures(resp); !slices.Equal(got, []string{"A1", "A2"}) {
		t.Errorf("failures %v", got)
	}
	if slices.Contains(rot.calls, "A2") || !slices.Contains(rot.calls, "B1") {
		t.Errorf("calls %v", rot.calls)
	}
}

// S8, a tenth of the size: ten jobs of 300 ms, one at a time, with 2 s
// left. Jobs start while they can finish; the rest are reported; none is
// cut off. With only the 100 ms floor, the sixth job would start with
// 300 ms to go and be cut off at its deadline.
func TestS8JobsNotStartedInTimeAreReported(t *testing.T) {
	rot := &fakeRotator{delay: 300 * time.Millisecond}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}, MaxConcurrency: 1,
		JobTimeLeft: 100 * time.Millisecond, reserve: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var ev events.SQSEvent
	for i := range 10 {
		ev.Records = append(ev.Records, msg(fmt.Sprintf("m%d", i), job(fmt.Sprintf("s%d", i))))
	}
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Error("handler ran past the deadline")
	}
	started := len(rot.calls)
	if started == 0 || started == 10 {
		t.Fatalf("started %d jobs, want some but not all", started)
	}
	if n := rot.cut.Load(); n != 0 {
		t.Errorf("%d jobs were cut off mid-way", n)
	}
	if len(resp.BatchItemFailures) != 10-started {
		t.Errorf("reported %d, want %d", len(resp.BatchItemFailures), 10-started)
	}
	for _, f := range resp.BatchItemFailures {
		if i := slices.Index(rot.calls, "s"+strings.TrimPrefix(f.ItemIdentifier, "m")); i >= 0 {
			t.Errorf("%s was reported after it started", f.ItemIdentifier)
		}
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	rot := &fakeRotator{delay: 20 * time.Millisecond}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}, MaxConcurrency: 3}
	var ev events.SQSEvent
	for i := range 12 {
		ev.Records = append(ev.Records, msg(fmt.Sprintf("m%d", i), job(fmt.Sprintf("s%d", i))))
	}
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if p := rot.peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency %d, want up to 3", p)
	}
}

func TestPrepareAheadRunsThatManyMoreRecordsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name                string
		concurrency, ahead  int
		wantPeak, wantFloor int32
	}{
		{"three and two ahead run five at once", 3, 2, 5, 4},
		{"one and none ahead is the sequential loop", 1, 0, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rot := &fakeRotator{delay: 20 * time.Millisecond}
			h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}, MaxConcurrency: tc.concurrency,
				PrepareAhead: tc.ahead}
			var ev events.SQSEvent
			for i := range 12 {
				ev.Records = append(ev.Records, msg(fmt.Sprintf("m%d", i), job(fmt.Sprintf("s%d", i))))
			}
			resp, err := h.Handle(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.BatchItemFailures) != 0 {
				t.Errorf("batchItemFailures %v, want none", resp.BatchItemFailures)
			}
			if p := rot.peak.Load(); p > tc.wantPeak || p < tc.wantFloor {
				t.Errorf("peak concurrency %d, want %d to %d", p, tc.wantFloor, tc.wantPeak)
			}
		})
	}
}

func TestDispositionsByOutcome(t *testing.T) {
	no := false
	failedDeploy := &rotation.Failure{Err: &apinizer.DeploymentError{Deployment: apinizer.Deployment{
		Reported: true, Success: &no, Environments: []apinizer.EnvironmentResult{{Name: "staging"}}}},
		ProjectName: "p", Username: "u", VersionID: "v"}
	rot := &fakeRotator{answers: map[string]error{
		"deploy":   failedDeploy,
		"rejected": &rotation.Failure{Err: &apinizer.Error{StatusCode: 400, Class: apinizer.ClassRejected}},
		"invalid":  fmt.Errorf("x: %w", rotation.ErrInvalidSecret),
		"starting": rotation.ErrRotationStarting,
		"token":    &apinizer.Error{StatusCode: 401, Class: apinizer.ClassToken},
	}}
	dlq := &fakeDLQ{}
	h := &Handler{Rotator: rot, DeadLetters: dlq, MaxConcurrency: 1}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("deploy", job("deploy")), msg("rejected", job("rejected")), msg("invalid", job("invalid")),
		msg("starting", job("starting")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"starting"}) {
		t.Errorf("failures %v", got)
	}
	reasons := map[string]string{}
	for _, r := range dlq.records {
		reasons[r.MessageID] = r.Reason
	}
	want := map[string]string{"deploy": "deployment_failed", "rejected": "rejected", "invalid": "invalid_secret"}
	for k, v := range want {
		if reasons[k] != v {
			t.Errorf("%s: reason %q, want %q", k, reasons[k], v)
		}
	}
	for _, r := range dlq.records {
		if r.MessageID == "deploy" && (len(r.Environments) != 1 || r.Username != "u" || r.VersionID != "v") {
			t.Errorf("deployment record %+v", r)
		}
	}
}

func TestATokenProblemIsRetriedAndNeverDeadLettered(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{}}
	var ev events.SQSEvent
	for i := range 5 {
		s := fmt.Sprintf("s%d", i)
		rot.answers[s] = &apinizer.Error{StatusCode: 401, Class: apinizer.ClassToken}
		ev.Records = append(ev.Records, msg(s, job(s)))
	}
	dlq := &fakeDLQ{}
	var metricsOut, logs bytes.Buffer
	h := &Handler{Rotator: rot, DeadLetters: dlq, MaxConcurrency: 1, Metrics: &metricsOut,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 5 || len(dlq.records) != 0 {
		t.Fatalf("resp %v err %v records %d", resp, err, len(dlq.records))
	}
	if len(rot.calls) != 1 {
		t.Errorf("after the first 401 the others should wait: %d calls", len(rot.calls))
	}
	// one loud line and one count for the batch, not one per record
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 ||
		!strings.Contains(logs.String(), `"outcome":"token_problem"`) {
		t.Errorf("want one ERROR line with outcome token_problem, got %d:\n%s", n, logs.String())
	}
	if !strings.Contains(metricsOut.String(), `"TokenProblems":1`) {
		t.Errorf("metrics lack TokenProblems 1:\n%s", metricsOut.String())
	}
}

func TestS9ARecordWhoseDeadLetterSendFailedIsRetried(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{
		"a": fmt.Errorf("x: %w", rotation.ErrInvalidSecret), "b": fmt.Errorf("x: %w", rotation.ErrInvalidSecret)}}
	dlq := &fakeDLQ{refuse: map[string]bool{"b": true}}
	h := &Handler{Rotator: rot, DeadLetters: dlq}
	resp, _ := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("a", job("a")), msg("b", job("b")),
	}})
	if got := failures(resp); !slices.Equal(got, []string{"b"}) {
		t.Errorf("failures %v", got)
	}
}

func TestJobsForOneSecretRunOneAfterAnother(t *testing.T) {
	rot := &fakeRotator{delay: 10 * time.Millisecond}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}}
	var ev events.SQSEvent
	for i := range 4 {
		ev.Records = append(ev.Records, msg(fmt.Sprintf("m%d", i), job("apinizer/same")))
	}
	// the same secret named by its ARN
	ev.Records = append(ev.Records, msg("arn", job("arn:aws:secretsmanager:us-east-1:1:secret:apinizer/same-AbCdEf")))
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if rot.peak.Load() != 1 {
		t.Errorf("jobs for one secret overlapped: peak %d", rot.peak.Load())
	}
}

// On a FIFO queue two message groups can hold jobs for one secret (named
// once by name, once by ARN): they still run one after the other, and each
// group keeps its order.
func TestFIFOGroupsNamingOneSecretRunOneAfterAnother(t *testing.T) {
	rot := &fakeRotator{delay: 10 * time.Millisecond}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}}
	arn := "arn:aws:secretsmanager:us-east-1:1:secret:apinizer/same-AbCdEf"
	ev := events.SQSEvent{Records: []events.SQSMessage{
		fifo("g1-a", "g1", job("apinizer/same")), fifo("g2-a", "g2", job(arn)),
		fifo("g1-b", "g1", job("apinizer/other")), fifo("g3-a", "g3", job("apinizer/third")),
	}}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %v, err %v", resp, err)
	}
	if rot.peak.Load() < 2 {
		t.Errorf("the unrelated group g3 did not run beside the others: peak %d", rot.peak.Load())
	}
	for _, g := range groups(ev.Records) {
		if slices.Contains(g.indexes, 0) && !slices.Equal(g.indexes, []int{0, 1, 2}) {
			t.Errorf("the groups naming one secret were not joined in batch order: %v", g.indexes)
		}
	}
}

// FIFO groups joined by a shared secret stop together: gB:2 may not run
// before gA:1, and gB:1 may not be passed over by gB:2.
func TestFIFOGroupsJoinedByASecretStopTogether(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{"X": transient()}}
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		fifo("A1", "gA", job("X")), fifo("B1", "gB", job("Y")), fifo("B2", "gB", job("X")),
		fifo("C1", "gC", job("Z")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"A1", "B1", "B2"}) {
		t.Errorf("failures %v, want [A1 B1 B2]", got)
	}
	if !slices.Equal(rot.calls, []string{"X", "Z"}) && !slices.Equal(rot.calls, []string{"Z", "X"}) {
		t.Errorf("calls %v: want X once and the unrelated Z", rot.calls)
	}
}

func TestTheSampleEventIsABatchOfValidJobs(t *testing.T) {
	b, err := os.ReadFile("../../events/bulk-batch.json")
	if err != nil {
		t.Skip("events/bulk-batch.json not written yet")
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) == 0 {
		t.Fatal("no records")
	}
	for _, r := range ev.Records {
		if _, err := ParseJob(r.Body); err != nil {
			t.Errorf("%s: %v", r.MessageId, err)
		}
		if r.MessageId == "" || !strings.HasPrefix(r.EventSourceARN, "arn:aws:sqs:") {
			t.Errorf("record %s is not shaped like SQS's", r.MessageId)
		}
	}
}

func TestAJobNamingTheTokenSecretIsRefused(t *testing.T) {
	rot := &fakeRotator{}
	dlq := &fakeDLQ{}
	h := &Handler{Rotator: rot, DeadLetters: dlq, TokenSecretID: "apinizer/token"}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("a", job("arn:aws:secretsmanager:us-east-1:1:secret:apinizer/token-AbCdEf")),
	}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if len(rot.calls) != 0 || len(dlq.records) != 1 || dlq.records[0].Reason != deadletter.ReasonInvalidJob {
		t.Errorf("calls %v records %+v", rot.calls, dlq.records)
	}
}

func TestABatchWritesItsMetricsOnce(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{
		"bad":  &rotation.Failure{Err: &apinizer.Error{StatusCode: 400, Class: apinizer.ClassRejected}},
		"slow": transient()}}
	var out bytes.Buffer
	h := &Handler{Rotator: rot, DeadLetters: &fakeDLQ{}, Metrics: &out, FunctionName: "bulk-fn"}
	_, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("a", job("good")), msg("b", job("bad")), msg("c", job("slow")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{`"RotationsSucceeded":1`, `"RotationsFailed":1`, `"JobsDeadLettered":1`,
		`"Reason":"rejected"`, `"Function":"bulk-fn"`, `"_aws"`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, text)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Errorf("a metrics line is not JSON: %s", line)
		}
	}
}

// These tests cover how dead-letter send results come back to the records
// of a batch: which messages are acknowledged and which are reported for a
// retry, when and how often the queue is called, and what a record carries.

// eventLog is one ordered list of what the fakes below were asked to do.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// loggedRotator is the package's fakeRotator that also logs "rotate <secret>".
type loggedRotator struct {
	*fakeRotator
	log *eventLog
}

func (r loggedRotator) RotateNow(ctx context.Context, secretID string, token rotation.TokenFor) (rotation.Result, error) {
	r.log.add("rotate " + secretID)
	return r.fakeRotator.RotateNow(ctx, secretID, token)
}

// countingDLQ is the package's fakeDLQ that also keeps the message ids of
// every Send call, logs "send <messageId>" per record, and fails every call
// with err, a plain error, when it is set.
type countingDLQ struct {
	fakeDLQ
	err   error
	log   *eventLog
	mu    sync.Mutex
	calls [][]string
}

func (d *countingDLQ) Send(ctx context.Context, rs ...deadletter.Record) error {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.MessageID)
		d.log.add("send " + r.MessageID)
	}
	d.mu.Lock()
	d.calls = append(d.calls, ids)
	d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	return d.fakeDLQ.Send(ctx, rs...)
}

func invalidSecret() error { return fmt.Errorf("x: %w", rotation.ErrInvalidSecret) }

func rejected() error {
	return &rotation.Failure{Err: &apinizer.Error{StatusCode: 400, Class: apinizer.ClassRejected}}
}

func sentIDs(d *fakeDLQ) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for _, r := range d.records {
		ids = append(ids, r.MessageID)
	}
	slices.Sort(ids)
	return ids
}

// (a) The queue takes A's record and refuses B's: the refusal at index 1 of
// the records sent belongs to B, the fourth message, not to the second.
func TestARefusedDeadLetterReportsOnlyItsOwnMessage(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{"A": invalidSecret(), "B": invalidSecret()}}
	dlq := &fakeDLQ{refuse: map[string]bool{"B": true}}
	h := &Handler{Rotator: rot, DeadLetters: dlq}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("ok1", job("ok1")), msg("A", job("A")), msg("ok2", job("ok2")), msg("B", job("B")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"B"}) {
		t.Errorf("failures %v, want exactly [B] (A's record was sent, so A is acknowledged)", got)
	}
	if got := sentIDs(dlq); !slices.Equal(got, []string{"A"}) {
		t.Errorf("dead-letter records sent for %v, want [A]", got)
	}
}

// (b) In a FIFO group a dead-letter record must be in the queue before the
// next message of the group runs; when the queue refuses it, the message
// and every later one of its group are retried, and the later ones never run.
func TestFIFODeadLetterNotSentStopsTheRestOfItsGroup(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{"a": rejected()}}
	dlq := &fakeDLQ{refuse: map[string]bool{"a": true}}
	h := &Handler{Rotator: rot, DeadLetters: dlq}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		fifo("a", "g", job("a")), fifo("b", "g", job("b")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("failures %v, want [a b]", got)
	}
	if slices.Contains(rot.calls, "b") {
		t.Errorf("b ran although a's dead-letter record was not sent: calls %v", rot.calls)
	}
	if got := sentIDs(dlq); len(got) != 0 {
		t.Errorf("records kept %v, want none", got)
	}
}

func TestFIFODeadLetterIsSentBeforeTheNextMessageRuns(t *testing.T) {
	log := &eventLog{}
	rot := loggedRotator{fakeRotator: &fakeRotator{answers: map[string]error{"a": rejected()}}, log: log}
	dlq := &countingDLQ{log: log}
	h := &Handler{Rotator: rot, DeadLetters: dlq}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		fifo("a", "g", job("a")), fifo("b", "g", job("b")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); len(got) != 0 {
		t.Errorf("failures %v, want none", got)
	}
	want := []string{"rotate a", "send a", "rotate b"}
	if got := log.list(); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v (a's record sent once, before b starts)", got, want)
	}
}

// (c) A Send that fails as a whole, with an error that names no record,
// leaves every record that needed a dead-letter for a retry.
func TestADeadLetterCallErrorRetriesEveryRecordItHeld(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{
		"A": invalidSecret(), "B": rejected(), "slow": transient()}}
	dlq := &countingDLQ{err: errors.New("dial tcp: connection refused")}
	h := &Handler{Rotator: rot, DeadLetters: dlq}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("ok1", job("ok1")), msg("A", job("A")), msg("bad", `{bad`), msg("B", job("B")),
		msg("slow", job("slow")), msg("ok2", job("ok2")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"A", "B", "bad", "slow"}) {
		t.Errorf("failures %v, want [A B bad slow]: a dead-letter record not sent must not be acknowledged", got)
	}
	if len(dlq.calls) != 1 {
		t.Errorf("Send calls %v, want one", dlq.calls)
	}
}

// (d) The dead-letter records of a batch that is not FIFO go in one Send
// call, eleven of them too (the Sender batches them by ten), whatever the
// groups.
func TestDeadLettersOfABatchGoInOneSendCall(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{}}
	var ev events.SQSEvent
	var want []string
	for i := range 15 {
		id := fmt.Sprintf("m%02d", i)
		switch i % 3 {
		case 0:
			rot.answers[id] = invalidSecret()
			want = append(want, id)
		case 1:
			rot.answers[id] = rejected()
			want = append(want, id)
		}
		ev.Records = append(ev.Records, msg(id, job(id)))
	}
	ev.Records = append(ev.Records, msg("bad", `{bad`))
	want = append(want, "bad")
	dlq := &countingDLQ{}
	h := &Handler{Rotator: rot, DeadLetters: dlq, MaxConcurrency: 4}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if len(dlq.calls) != 1 {
		t.Fatalf("%d Send calls %v, want one", len(dlq.calls), dlq.calls)
	}
	got := slices.Sorted(slices.Values(dlq.calls[0]))
	if slices.Sort(want); !slices.Equal(got, want) {
		t.Errorf("the call held %v, want %v", got, want)
	}
}

// (e) A record carries the message's ApproximateReceiveCount, whatever made
// it a dead letter: a body that is not a job, a job refused for good, a panic.
func TestADeadLetterRecordCarriesTheReceiveCount(t *testing.T) {
	rot := &fakeRotator{answers: map[string]error{"rejected": rejected()}}
	dlq := &fakeDLQ{}
	h := &Handler{Rotator: rot, DeadLetters: dlq}
	var ev events.SQSEvent
	for i, body := range []string{`{bad`, job("rejected"), job("panics")} {
		m := msg(fmt.Sprintf("m%d", i), body)
		m.Attributes["ApproximateReceiveCount"] = fmt.Sprint(i + 3)
		ev.Records = append(ev.Records, m)
	}
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if len(dlq.records) != 3 {
		t.Fatalf("records %+v, want 3", dlq.records)
	}
	for _, r := range dlq.records {
		var i int
		if _, err := fmt.Sscanf(r.MessageID, "m%d", &i); err != nil {
			t.Fatalf("record for %q", r.MessageID)
		}
		if want := fmt.Sprint(i + 3); r.ReceiveCount != want {
			t.Errorf("%s (%s): receiveCount %q, want %q", r.MessageID, r.Reason, r.ReceiveCount, want)
		}
	}
}

// (f) One Handler handles many batches: nothing of a batch (its failures,
// a failing token, the secrets it ran, the length of its jobs, its counts)
// reaches the next one. The second batch holds the first batch's failed
// message again, under the same message id, as SQS delivers it, and has time
// for a fast job but not for twice the first batch's slow ones.
func TestTwoBatchesOnOneHandlerAreIndependent(t *testing.T) {
	rot := &fakeRotator{delay: 400 * time.Millisecond, answers: map[string]error{
		"s1":  transient(),
		"tok": &apinizer.Error{StatusCode: 401, Class: apinizer.ClassToken},
		"s5":  invalidSecret(),
	}}
	dlq := &fakeDLQ{}
	var metricsOut bytes.Buffer
	h := &Handler{Rotator: rot, DeadLetters: dlq, Metrics: &metricsOut, FunctionName: "bulk-fn",
		JobTimeLeft: 100 * time.Millisecond}

	resp1, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("m1", job("s1")), msg("m2", job("tok")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp1); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("batch 1 failures %v, want [m1 m2]", got)
	}
	ran1 := len(rot.calls)
	metricsOut.Reset()
	rot.delay = 0

	ctx, cancel := context.WithTimeout(context.Background(), DefaultResponseReserve+600*time.Millisecond)
	defer cancel()
	resp2, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
		msg("m1", job("s1")), msg("m4", job("s4")), msg("m5", job("s5")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp2); !slices.Equal(got, []string{"m1"}) {
		t.Errorf("batch 2 failures %v, want [m1]: state of batch 1 leaked into batch 2", got)
	}
	if got := slices.Sorted(slices.Values(rot.calls[ran1:])); !slices.Equal(got, []string{"s1", "s4", "s5"}) {
		t.Errorf("batch 2 ran %v, want [s1 s4 s5]", got)
	}
	if got := sentIDs(dlq); !slices.Equal(got, []string{"m5"}) {
		t.Errorf("records %v, want [m5]", got)
	}
	counts := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(metricsOut.String()), "\n") {
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		for _, name := range []string{"RotationsFailed", "RotationsSucceeded", "JobsDeadLettered", "TokenProblems"} {
			if n, ok := doc[name].(float64); ok {
				counts[name] += n
			}
		}
	}
	want := map[string]float64{"RotationsFailed": 1, "RotationsSucceeded": 1, "JobsDeadLettered": 1}
	if !maps.Equal(counts, want) {
		t.Errorf("batch 2 metrics %v, want %v:\n%s", counts, want, metricsOut.String())
	}
}
