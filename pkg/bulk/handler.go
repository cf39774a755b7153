package bulk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apinizer-rotation/rotator/pkg/deadletter"
	"github.com/apinizer-rotation/rotator/pkg/metrics"
	"github.com/apinizer-rotation/rotator/pkg/rotation"
)

// Rotator rotates one secret now under a token.
type Rotator interface {
	RotateNow(ctx context.Context, secretID string, tokenFor rotation.TokenFor) (rotation.Result, error)
}

var _ Rotator = (*rotation.Engine)(nil)

// Defaults for Handler.
const (
	DefaultMaxConcurrency = 10
	// DefaultJobTimeLeft is the least time a job is started with, after
	// the response reserve; a job that has less is reported for a retry
	// instead of being cut off mid-way.
	DefaultJobTimeLeft = 5 * time.Second
	// DefaultResponseReserve is kept back from every job's deadline for
	// sending dead-letter records and answering.
	DefaultResponseReserve = 2 * time.Second
)

// Handler is the bulk function.
type Handler struct {
	Rotator     Rotator
	DeadLetters rotation.DeadLetters
	Logger      *slog.Logger
	// MaxConcurrency and PrepareAhead bound the records that run at once:
	// MaxConcurrency (default DefaultMaxConcurrency) plus PrepareAhead
	// (default none). The Apinizer client bounds its own requests in flight
	// to MaxConcurrency (lambdaapp wires it so); the records beyond that do
	// their Secrets Manager reads and write AWSPENDING while the others are
	// at Apinizer, then wait there for a turn. That hides the Secrets
	// Manager calls behind Apinizer's latency once a batch has more records
	// than MaxConcurrency.
	MaxConcurrency int
	PrepareAhead   int
	// JobTimeLeft is the least time a job must have before its own
	// deadline (the invocation's, less the response reserve) to be
	// started; default DefaultJobTimeLeft. Once jobs of the invocation
	// have finished, a job also needs twice the longest of them: a batch
	// of slow jobs stops starting new ones early enough to finish them.
	JobTimeLeft time.Duration
	// TokenSecretID is the secret holding the Apinizer token; a job that
	// names it is refused.
	TokenSecretID string
	// Metrics receives one embedded-metric-format line per invocation
	// (os.Stdout in Lambda); nil records none.
	Metrics io.Writer
	// FunctionName is the metrics' Function dimension.
	FunctionName string
	now          func() time.Time
	reserve      time.Duration // DefaultResponseReserve when zero; tests shrink it
}

// verdict is what became of one record.
type verdict int

const (
	done       verdict = iota // acknowledged
	retry                     // reported in batchItemFailures
	deadLetter                // acknowledged once its record is in the dead-letter queue
)

type outcome struct {
	verdict verdict
	record  *deadletter.Record
	why     string
	rotated bool // done by a rotation (not an already finished job)
	sent    bool // a dead-letter record already in the queue
}

// Handle processes one SQS batch and returns the messages to retry.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	start := h.clock()
	log := h.logger()
	for _, r := range ev.Records {
		if r.MessageId == "" {
			// a record that cannot be named cannot be reported alone: the
			// whole batch comes back, before any record is touched
			return events.SQSEventResponse{}, errors.New("a record has no messageId: " +
				"failing the whole batch, untouched, so that nothing is lost")
		}
	}
	outcomes := make([]outcome, len(ev.Records))
	var rec *metrics.Recorder
	if h.Metrics != nil {
		rec = metrics.New(h.Metrics, metrics.Namespace, map[string]string{metrics.DimensionFunction: h.FunctionName})
		ctx = metrics.NewContext(ctx, rec)
		defer func() {
			if err := rec.Flush(); err != nil {
				log.WarnContext(ctx, "metrics not written", "error", err.Error())
			}
		}()
	}
	var tokenProblem sync.Once
	tokenFailed := make(chan struct{})
	var longest atomic.Int64 // the longest job of this invocation so far

	// run every group of records; records of one group run in order
	sem := make(chan struct{}, h.concurrency()+max(0, h.PrepareAhead))
	var wg sync.WaitGroup
	for _, g := range groups(ev.Records) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed := false
			for _, i := range g.indexes {
				rec := ev.Records[i]
				switch {
				case failed && g.ordered:
					outcomes[i] = outcome{verdict: retry, why: "an earlier message of its FIFO group failed"}
					continue
				case isClosed(tokenFailed):
					outcomes[i] = outcome{verdict: retry, why: "not started: the Apinizer token is failing"}
					continue
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					outcomes[i] = outcome{verdict: retry, why: "not started: the invocation ended"}
					failed = true
					continue
				}
				if isClosed(tokenFailed) {
					// it failed while this record waited for its turn
					<-sem
					outcomes[i] = outcome{verdict: retry, why: "not started: the Apinizer token is failing"}
					failed = true
					continue
				}
				outcomes[i] = h.one(ctx, rec, &longest, func() { tokenProblem.Do(func() { close(tokenFailed) }) })
				<-sem
				if outcomes[i].verdict == retry {
					failed = true
				}
				if g.ordered && outcomes[i].verdict == deadLetter {
					// in a FIFO group the record must be in the queue
					// before the next message runs
					h.sendNow(ctx, &outcomes[i])
					failed = failed || outcomes[i].verdict == retry
				}
			}
		}()
	}
	wg.Wait()

	// dead-letter records, ten per call; a record not sent is retried
	sctx, cancel := h.sendContext(ctx)
	defer cancel()
	h.sendDeadLetters(sctx, outcomes)

	resp := h.response(ev.Records, outcomes)
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[[]string{"done", "retry", "deadLettered"}[o.verdict]]++
		switch {
		case o.verdict == retry:
			rec.Count(metrics.RotationsFailed, 1)
		case o.verdict == done && o.rotated:
			rec.Count(metrics.RotationsSucceeded, 1)
		case o.verdict == deadLetter:
			rec.With(metrics.DimensionReason, o.record.Reason).Count(metrics.JobsDeadLettered, 1)
			if o.record.Reason == deadletter.ReasonDeploymentFailed {
				rec.Count(metrics.DeploymentsFailed, 1)
			}
		}
	}
	if isClosed(tokenFailed) {
		rec.Count(metrics.TokenProblems, 1)
		log.ErrorContext(ctx, "apinizer token rejected or unreadable: check APINIZER_TOKEN_SECRET_ID; "+
			"messages will be retried", "outcome", "token_problem")
	}
	log.InfoContext(ctx, "batch done", "records", len(ev.Records), "done", counts["done"],
		"retry", counts["retry"], "deadLettered", counts["deadLettered"],
		"durationMs", h.clock().Sub(start).Milliseconds())
	return resp, nil
}

// one handles one record, recovering from a panic in it.
func (h *Handler) one(ctx context.Context, rec events.SQSMessage, longest *atomic.Int64,
	onTokenProblem func()) (out outcome) {
	log := h.logger().With("messageId", rec.MessageId)
	started := h.clock()
	base := deadletter.Record{
		Source:       deadletter.SourceBulk,
		MessageID:    rec.MessageId,
		JobBody:      redactJobBody(rec.Body),
		ReceiveCount: rec.Attributes["ApproximateReceiveCount"],
	}
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "job panicked", "outcome", deadletter.ReasonUnexpected, "panic", fmt.Sprint(p))
			r := base
			r.Reason = deadletter.ReasonUnexpected
			r.Error = fmt.Sprintf("internal error while handling the job (recovered panic): %v", p)
			out = outcome{verdict: deadLetter, record: &r}
		}
	}()

	job, err := ParseJob(rec.Body)
	if err != nil {
		log.WarnContext(ctx, "invalid job", "outcome", deadletter.ReasonInvalidJob, "error", err.Error())
		r := base
		r.Reason, r.Error = deadletter.ReasonInvalidJob, err.Error()
		return outcome{verdict: deadLetter, record: &r}
	}
	base.SecretID, base.JobID = job.SecretID, job.JobID
	log = log.With("secretId", job.SecretID, "jobId", job.JobID)
	if h.TokenSecretID != "" && SameSecret(job.SecretID, h.TokenSecretID) {
		log.WarnContext(ctx, "invalid job: it names the Apinizer token secret", "outcome", deadletter.ReasonInvalidJob)
		r := base
		r.Reason, r.Error = deadletter.ReasonInvalidJob,
			"invalid bulk job: it names the secret that holds the Apinizer token, which is not a credential"
		return outcome{verdict: deadLetter, record: &r}
	}

	// start only with enough time left to finish
	jctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		jobDeadline := dl.Add(-h.responseReserve())
		need := max(h.jobTimeLeft(), 2*time.Duration(longest.Load()))
		if left := jobDeadline.Sub(h.clock()); left < need {
			log.WarnContext(ctx, "job not started: too little time left", "outcome", "retry",
				"leftMs", left.Milliseconds(), "needMs", need.Milliseconds())
			return outcome{verdict: retry, why: "not started: too little time left before the deadline"}
		}
		var cancel context.CancelFunc
		jctx, cancel = context.WithDeadline(ctx, jobDeadline)
		defer cancel()
	}

	// the token comes from the name Secrets Manager gives: a partial ARN
	// and the name of one secret make one token
	tokenFor := func(name string) string {
		return Token(Job{SecretID: name, JobID: job.JobID}, rec.MessageId)
	}
	jobStart := h.clock()
	res, err := h.Rotator.RotateNow(jctx, job.SecretID, tokenFor)
	took := h.clock().Sub(jobStart)
	for prev := longest.Load(); int64(took) > prev && !longest.CompareAndSwap(prev, int64(took)); {
		prev = longest.Load()
	}
	durationMs := h.clock().Sub(started).Milliseconds()
	if err == nil {
		log.InfoContext(ctx, "job done", "outcome", outcomeName(res), "versionId", res.VersionID,
			"project", res.ProjectName, "username", res.Username, "durationMs", durationMs)
		return outcome{verdict: done, rotated: !res.AlreadyDone}
	}

	d := rotation.Classify(err)
	switch {
	case d.TokenProblem:
		onTokenProblem()
		return outcome{verdict: retry, why: "apinizer token problem"}
	case d.Reason == "":
		log.WarnContext(ctx, "job failed; it will be retried", "outcome", "retry", "error", err.Error(),
			"durationMs", durationMs)
		return outcome{verdict: retry, why: err.Error()}
	}
	r := base
	r.Reason, r.Error, r.Environments = d.Reason, err.Error(), d.Environments
	r.VersionID, r.ProjectName, r.Username = res.VersionID, res.ProjectName, res.Username
	var f *rotation.Failure
	if errors.As(err, &f) {
		r.VersionID, r.ProjectName, r.Username = f.VersionID, f.ProjectName, f.Username
	}
	log.ErrorContext(ctx, "job cannot succeed; recording it in the dead-letter queue", "outcome", d.Reason,
		"versionId", r.VersionID, "project", r.ProjectName, "username", r.Username,
		"error", err.Error(), "durationMs", durationMs)
	return outcome{verdict: deadLetter, record: &r}
}

// sendContext bounds a dead-letter send so that the answer still goes out
// before the deadline: a send that cannot finish leaves its messages
// reported for a retry instead of the whole invocation timing out.
func (h *Handler) sendContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-h.responseReserve()/2))
	}
	return context.WithCancel(ctx)
}

// sendNow sends one record at once (FIFO groups) and marks it sent.
func (h *Handler) sendNow(ctx context.Context, o *outcome) {
	ctx, cancel := h.sendContext(ctx)
	defer cancel()
	if err := h.DeadLetters.Send(ctx, *o.record); err != nil {
		h.logger().ErrorContext(ctx, "dead-letter record not sent; message will be retried",
			"messageId", o.record.MessageID, "error", err.Error())
		*o = outcome{verdict: retry, why: "dead-letter send failed"}
		return
	}
	o.sent = true
}

// sendDeadLetters sends every record still waiting, in one Send call that
// batches by ten, and turns each record the queue did not take into a retry.
func (h *Handler) sendDeadLetters(ctx context.Context, outcomes []outcome) {
	var records []deadletter.Record
	var owners []int
	for i, o := range outcomes {
		if o.verdict == deadLetter && !o.sent {
			records = append(records, *o.record)
			owners = append(owners, i)
		}
	}
	if len(records) == 0 {
		return
	}
	err := h.DeadLetters.Send(ctx, records...)
	var se *deadletter.SendError
	switch {
	case err == nil:
	case errors.As(err, &se):
		for j := range se.Failed {
			outcomes[owners[j]] = outcome{verdict: retry, why: "dead-letter send failed"}
		}
	default:
		for _, i := range owners {
			outcomes[i] = outcome{verdict: retry, why: "dead-letter send failed"}
		}
	}
	if err != nil {
		h.logger().ErrorContext(ctx, "dead-letter records not sent; their messages will be retried", "error", err.Error())
	}
}

// response lists every record to retry, by message id, once each. Handle
// has refused a batch with a record that has none.
func (h *Handler) response(records []events.SQSMessage, outcomes []outcome) events.SQSEventResponse {
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	seen := map[string]bool{}
	for i, o := range outcomes {
		if id := records[i].MessageId; o.verdict == retry && !seen[id] {
			seen[id] = true
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
	}
	return resp
}

// group is a set of records that run one after another.
type group struct {
	indexes []int
	ordered bool // a FIFO message group: stop at the first failure
}

// groups splits a batch into records that run one after another, in batch
// order: FIFO records by message group, and every record by secret, so that
// two jobs for one secret never race inside a batch, even when they name it
// differently (by name and by ARN) or sit in different message groups. A
// record whose body is not a job is a group of its own.
func groups(records []events.SQSMessage) []group {
	// union-find over the records: one key shared joins two records
	parent := make([]int, len(records))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	first := map[string]int{}
	join := func(key string, i int) {
		if j, ok := first[key]; ok {
			parent[find(i)] = find(j)
		} else {
			first[key] = i
		}
	}
	fifo := make([]bool, len(records))
	for i, r := range records {
		if fifo[i] = strings.HasSuffix(r.EventSourceARN, ".fifo"); fifo[i] {
			join("fifo:"+r.Attributes["MessageGroupId"], i)
		}
		if job, err := ParseJob(r.Body); err == nil {
			join("secret:"+SecretName(job.SecretID), i)
		}
	}

	var out []group
	byRoot := map[int]int{}
	for i := range records {
		root := find(i)
		g, ok := byRoot[root]
		if !ok {
			g = len(out)
			byRoot[root] = g
			out = append(out, group{})
		}
		out[g].indexes = append(out[g].indexes, i)
		out[g].ordered = out[g].ordered || fifo[i]
	}
	return out
}

func outcomeName(r rotation.Result) string {
	switch {
	case r.AlreadyDone:
		return "already_done"
	case r.Resumed:
		return "resumed"
	default:
		return "rotated"
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (h *Handler) concurrency() int {
	if h.MaxConcurrency > 0 {
		return h.MaxConcurrency
	}
	return DefaultMaxConcurrency
}

func (h *Handler) jobTimeLeft() time.Duration {
	if h.JobTimeLeft > 0 {
		return h.JobTimeLeft
	}
	return DefaultJobTimeLeft
}

func (h *Handler) responseReserve() time.Duration {
	if h.reserve > 0 {
		return h.reserve
	}
	return DefaultResponseReserve
}

func (h *Handler) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}
