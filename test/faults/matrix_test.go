package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/faultproxy"
	"github.com/apinizer-rotation/rotator/internal/localrun"
	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

// The matrix: for each function, each point, each way of stopping there,
// and each way the work is run again.
var (
	functions = []string{"rotation", "bulk"}
	points    = []string{
		"pending written",
		"sent, no answer",
		"Apinizer answered",
		"deployment failed",
		"AWSCURRENT moved",
		"dead-letter send",
	}
	ways   = []string{"kill", "timeout", "error", "Apinizer gone"}
	reruns = map[string][]string{
		"rotation": {"same token", "bulk job", "scheduled"},
		"bulk":     {"redelivery", "record moved back", "scheduled"},
	}
)

// cell is one run: a stop, then a rerun.
type cell struct {
	function, point, way, rerun string
}

func (c cell) String() string {
	return fmt.Sprintf("%s / %s / %s / %s", c.function, c.point, c.way, c.rerun)
}

func TestFaultMatrix(t *testing.T) {
	results := map[cell]string{}
	for _, fn := range functions {
		for _, p := range points {
			for _, w := range ways {
				for _, r := range reruns[fn] {
					c := cell{fn, p, w, r}
					if !selected(c) {
						continue
					}
					err := run(t, c)
					results[c] = "ok"
					if err != nil {
						results[c] = "FAIL"
						t.Errorf("%s: %v", c, err)
					}
				}
			}
		}
	}
	printMatrix(results)
}

// selected: FAULT_CELLS, a regular expression, picks the cells to run, for
// working on one part of the matrix; all run when it is unset.
func selected(c cell) bool {
	f := os.Getenv("FAULT_CELLS")
	if f == "" {
		return true
	}
	ok, err := regexp.MatchString(f, c.String())
	return err == nil && ok
}

// run performs one cell and returns why it failed, if it did.
func run(t *testing.T, c cell) (err error) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	defer disarm(ctx)
	stack.Proxy.ResetCalls()
	stack.Sim.Reset()
	stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token}})
	if _, _, err := stack.DeadLetters(ctx); err != nil {
		return err
	}
	cred, err := seed(ctx, c)
	if err != nil {
		return err
	}
	if c.point == "deployment failed" || c.point == "dead-letter send" {
		stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token},
			DeployFailures: []simulator.DeployFailure{{Username: cred.username, Environment: "staging"}}})
	}

	// stop at the point
	var fired func() bool
	var token string
	var batch localrun.Batch
	switch c.function {
	case "rotation":
		token, fired, err = stopRotation(ctx, c, cred)
	default:
		batch, fired, err = stopBulk(ctx, c, cred)
	}
	if err != nil {
		return err
	}
	if !fired() {
		return errors.New("the stop never happened")
	}
	if err := disarm(ctx); err != nil {
		return err
	}
	if err := invariant(ctx, cred, "after the stop"); err != nil {
		return err
	}

	// run it again
	maxVersions := 2 // the seed and the one new password
	switch c.rerun {
	case "same token":
		steps, err := stack.ResumeRotation(ctx, cred.arn, token)
		if err != nil {
			return err
		}
		for _, s := range steps {
			if s.Err != nil {
				return fmt.Errorf("rerun %s: %w", s.Step, s.Err)
			}
		}
	case "bulk job":
		maxVersions = 3 // the job may rotate once more if the rotation had finished
		if err := stack.Enqueue(ctx, job(cred, "")); err != nil {
			return err
		}
	case "redelivery":
		if err := redeliver(ctx, cred, batch); err != nil {
			return err
		}
	case "record moved back":
		if err := moveBack(ctx, cred, batch); err != nil {
			return err
		}
	case "scheduled":
		maxVersions = 3
		if err := scheduled(ctx, cred, batch); err != nil {
			return err
		}
	}
	if err := drainJobs(ctx); err != nil {
		return err
	}

	// converged: Apinizer holds AWSCURRENT, nothing pending elsewhere, and
	// no rotation made a second password
	got, err := stack.CheckCredential(ctx, cred.arn, cred.project, cred.username, cred.seed)
	if err != nil {
		return err
	}
	if !got.Converged() || !got.Rotated {
		return fmt.Errorf("after the rerun: %+v", got)
	}
	n, err := valuedVersions(ctx, cred.arn)
	if err != nil {
		return err
	}
	if n > maxVersions {
		return fmt.Errorf("the secret has %d values, at most %d expected: something rotated twice", n, maxVersions)
	}
	// moto overwrites a version reused with another value (AWS refuses), so
	// the versions alone cannot show a second password: count them made
	if made := stack.Proxy.Count("secretsmanager", "GetRandomPassword"); made > maxVersions-1 {
		return fmt.Errorf("%d passwords were generated, at most %d expected", made, maxVersions-1)
	}
	return nil
}

// stopRotation runs a scheduled rotation's steps until the stop.
func stopRotation(ctx context.Context, c cell, cred credential) (string, func() bool, error) {
	token, err := stack.BeginRotation(ctx, cred.arn)
	if err != nil {
		return "", nil, err
	}
	fn := stack.Rotate
	fired := arm(c, cred, fn)
	for _, step := range localrun.Steps {
		if c.point == "Apinizer answered" && step == "testSecret" {
			fired = armAfterAnswer(c, cred, fn)
		}
		if err := invokeStep(ctx, c, cred, fn, step, token); err != nil {
			break
		}
	}
	return token, fired, nil
}

// stopBulk sends one job and delivers it.
func stopBulk(ctx context.Context, c cell, cred credential) (localrun.Batch, func() bool, error) {
	fn := stack.Bulk
	fired := arm(c, cred, fn)
	if c.point == "Apinizer answered" {
		fired = armAfterAnswer(c, cred, fn)
	}
	if err := stack.Enqueue(ctx, job(cred, cred.jobID)); err != nil {
		return localrun.Batch{}, nil, err
	}
	var b localrun.Batch
	whileKilledAtApinizer(c, cred, fn, func() { b, _ = stack.DeliverBatch(ctx) })()
	return b, fired, nil
}

// invokeStep runs one rotation step, killing the function while Apinizer
// holds the request when the cell asks for that.
func invokeStep(ctx context.Context, c cell, cred credential, fn *standin.Function, step, token string) error {
	var err error
	call := func() { err = stack.InvokeStep(ctx, step, cred.arn, token) }
	if step == "setSecret" {
		call = whileKilledAtApinizer(c, cred, fn, call)
	}
	call()
	return err
}

// whileKilledAtApinizer returns f, or, for a kill while Apinizer holds the
// request, f run beside a watcher that kills the function once Apinizer has
// stored the password.
func whileKilledAtApinizer(c cell, cred credential, fn *standin.Function, f func()) func() {
	if c.point != "sent, no answer" || c.way != "kill" {
		return f
	}
	return func() {
		done := make(chan struct{})
		go func() { f(); close(done) }()
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if stack.Sim.PasswordChanges(cred.project, cred.username) > 0 {
				_ = fn.Kill()
				<-done
				return
			}
		}
	}
}

// arm installs the stop for the cell's point and way, and returns a
// function that tells whether it happened.
func arm(c cell, cred credential, fn *standin.Function) func() bool {
	kill := func() { _ = fn.Kill() }
	var service, op string
	phase := faultproxy.After
	switch c.point {
	case "pending written":
		service, op = "secretsmanager", "PutSecretValue"
	case "sent, no answer":
		return armApinizer(c, cred)
	case "Apinizer answered":
		return func() bool { return true } // armed later, by armAfterAnswer
	case "deployment failed":
		service, op, phase = "sqs", "SendMessageBatch", faultproxy.Before
	case "AWSCURRENT moved":
		service, op = "secretsmanager", "UpdateSecretVersionStage"
	case "dead-letter send":
		service, op = "sqs", "SendMessageBatch"
	}
	return armProxy(c, cred, service, op, phase, kill)
}

// armAfterAnswer arms the stop at the first AWS call after Apinizer
// answered: testSecret's DescribeSecret, or a bulk job's promotion.
func armAfterAnswer(c cell, cred credential, fn *standin.Function) func() bool {
	op := "DescribeSecret"
	if c.function == "bulk" {
		op = "UpdateSecretVersionStage"
	}
	return armProxy(c, cred, "secretsmanager", op, faultproxy.Before, func() { _ = fn.Kill() })
}

func armProxy(c cell, cred credential, service, op string, phase faultproxy.Phase, kill func()) func() bool {
	rule := faultproxy.Rule{Service: service, Operation: op, Phase: phase}
	switch c.way {
	case "kill":
		rule.Action, rule.Hook = faultproxy.Hook, kill
	case "timeout":
		rule.Action = faultproxy.Hang
	case "error":
		rule.Action, rule.Times, rule.Status, rule.Code = faultproxy.Fail, -1, 500, "InternalFailure"
	case "Apinizer gone":
		// from this point on Apinizer does not answer; the call goes on
		rule.Action, rule.Hook = faultproxy.Pass, func() { apinizerGone(cred) }
	}
	stack.Proxy.Add(rule)
	return func() bool { return stack.Proxy.Count(service, op) > 0 && firedRule(rule) }
}

// firedRule: every rule with a bounded budget must have used it; the
// unbounded ones (Times -1) fired if their call was made at all.
func firedRule(r faultproxy.Rule) bool {
	return r.Times == -1 || stack.Proxy.Pending() == 0
}

// armApinizer stops at Apinizer itself: it stores the password and then
// does not answer, answers an error, or goes away.
func armApinizer(c cell, cred credential) func() bool {
	cfg := simulator.Config{Tokens: []string{stack.Token}}
	switch c.way {
	case "kill", "timeout":
		cfg.LatencyMS = 60_000 // stored at once, answered never
		stack.Sim.SetConfig(cfg)
	case "error":
		stack.Sim.AddFaults(simulator.Fault{Status: 500, Count: 100, Apply: true,
			Project: cred.project, Username: cred.username})
	case "Apinizer gone":
		stack.Sim.AddFaults(simulator.Fault{Drop: true, Apply: true, Count: 1,
			Project: cred.project, Username: cred.username})
		apinizerGone(cred)
	}
	return func() bool { return stack.Sim.PasswordChanges(cred.project, cred.username) > 0 }
}

// apinizerGone makes Apinizer drop every request for the credential.
func apinizerGone(cred credential) {
	stack.Sim.AddFaults(simulator.Fault{Drop: true, Count: 1000, Project: cred.project, Username: cred.username})
}

// disarm removes every injected fault: the stand-ins work again.
func disarm(ctx context.Context) error {
	stack.Proxy.Clear()
	cfg := stack.Sim.Config()
	cfg.LatencyMS, cfg.DeployFailures = 0, nil
	stack.Sim.SetConfig(cfg)
	stack.Sim.ClearFaults()
	for _, fn := range []*standin.Function{stack.Rotate, stack.Bulk} {
		if err := fn.Restart(ctx); err != nil {
			return err
		}
	}
	return nil
}

// invariant: the password Apinizer holds is AWSCURRENT or AWSPENDING.
func invariant(ctx context.Context, cred credential, when string) error {
	got, err := stack.CheckCredential(ctx, cred.arn, cred.project, cred.username, cred.seed)
	if err != nil {
		return err
	}
	if !got.Held() {
		return fmt.Errorf("%s: the password Apinizer holds is in neither AWSCURRENT nor AWSPENDING", when)
	}
	return nil
}

// printMatrix writes the matrix, one line per function and point, a column
// per way of stopping, and in each column one mark per rerun.
func printMatrix(results map[cell]string) {
	var b strings.Builder
	fmt.Fprintln(&b, "\nFault matrix: each cell is a stop at the point, in that way, then each rerun;")
	fmt.Fprintln(&b, "ok = Apinizer's password stayed in AWSCURRENT or AWSPENDING after the stop, and")
	fmt.Fprintln(&b, "after the rerun equals AWSCURRENT with no stray AWSPENDING and no second password.")
	fmt.Fprintln(&b, "reruns: rotation = same token / bulk job / scheduled; bulk = redelivery / record moved back / scheduled")
	fmt.Fprintf(&b, "\n%-9s %-19s", "function", "point")
	for _, w := range ways {
		fmt.Fprintf(&b, " %-15s", w)
	}
	fmt.Fprintln(&b)
	for _, fn := range functions {
		for _, p := range points {
			fmt.Fprintf(&b, "%-9s %-19s", fn, p)
			for _, w := range ways {
				var marks []string
				for _, r := range reruns[fn] {
					marks = append(marks, results[cell{fn, p, w, r}])
				}
				fmt.Fprintf(&b, " %-15s", strings.Join(marks, "/"))
			}
			fmt.Fprintln(&b)
		}
	}
	fmt.Fprint(os.Stdout, b.String())
}
