package rotation

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// Two bulk jobs for one secret in one warm process (a FIFO batch whose
// records name the secret once by name and once by ARN land in two message
// groups, which run at once; two invocations at once are the same race).
// Both read the secret before either writes; A's write lands first, B's
// moves AWSPENDING to B's version, B finishes, then A sends its password
// and loses the promotion. A must then give Apinizer the latest stored
// password, B's, rather than leave its own there with no label on it.
func TestTwoJobsForOneSecretAtOnceConverge(t *testing.T) {
	const ta, tb = "job-a-token-0000000000000000000001", "job-b-token-0000000000000000000002"
	for _, cached := range []bool{false, true} {
		name := "without cache"
		if cached {
			name = "with cache"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(seed)
			if cached {
				f.eng.Cache = NewVersionCache(8, time.Minute)
			}
			h := &hookedSM{fakeSM: f.sm}
			aMayWrite, aWrote, aMaySend := make(chan struct{}), make(chan struct{}), make(chan struct{})
			h.putHook = func(_ context.Context, in *secretsmanager.PutSecretValueInput, put func() error) error {
				switch aws.ToString(in.ClientRequestToken) {
				case ta:
					<-aMayWrite
					err := put()
					close(aWrote)
					<-aMaySend
					return err
				case tb:
					close(aMayWrite)
					<-aWrote
				}
				return put()
			}
			f.eng.Secrets = h

			aDone := make(chan error, 1)
			go func() {
				_, err := rotateNow(f, ta)
				aDone <- err
			}()
			if _, err := rotateNow(f, tb); err != nil {
				close(aMaySend)
				<-aDone
				t.Fatalf("job B: %v", err)
			}
			close(aMaySend)
			errA := <-aDone
			if errA == nil && f.sm.holder(stageCurrent) != tb {
				t.Fatal("job A promoted over job B")
			}

			// SQS delivers job A again
			h.putHook = nil
			var (
				res Result
				err error
			)
			for range 3 {
				if res, err = rotateNow(f, ta); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("job A's retries: %v", err)
			}
			cur := passwordOf(t, f.sm.valueOf(stageCurrent))
			if f.api.stored != cur {
				t.Errorf("job A's retry returned %+v; AWSCURRENT is %s, AWSPENDING on %s; "+
					"Apinizer holds job A's password: %v", res, f.sm.holder(stageCurrent),
					f.sm.holder(stagePending), f.api.stored == passwordOf(t, aws.ToString(f.sm.values[ta])))
			}
			f.assertInvariant(t)
		})
	}
}

// hookedApinizer runs before, when set, ahead of each password change.
type hookedApinizer struct {
	*fakeApinizer
	before func(password string)
}

func (h *hookedApinizer) ChangePassword(ctx context.Context, project, user string,
	p sensitive.String) (*apinizer.Deployment, error) {
	if h.before != nil {
		h.before(p.Reveal())
	}
	return h.fakeApinizer.ChangePassword(ctx, project, user, p)
}

// The window between the two functions: a bulk job reads the secret before
// a scheduled rotation starts, the rotation writes its pending value and
// its setSecret checks AWSPENDING; then the job writes AWSPENDING, sends and
// promotes, and only then does the rotation's password reach Apinizer.
// setSecret notices after sending that its version lost AWSPENDING, fails,
// and leaves Apinizer with the job's password, the one AWSCURRENT holds.
func TestASetSecretOvertakenByABulkJobLeavesTheLatestPassword(t *testing.T) {
	const scheduled, job = "scheduled-token-00000000000000000001", "job-token-000000000000000000000002"
	f := newFixture(seed)
	f.eng.Cache = NewVersionCache(8, time.Minute)
	h := &hookedSM{fakeSM: f.sm}
	f.eng.Secrets = h
	hapi := &hookedApinizer{fakeApinizer: f.api}
	f.eng.Apinizer = hapi

	setAtSend, jobDone := make(chan struct{}), make(chan struct{})
	setErr := make(chan error, 1)
	h.putHook = func(_ context.Context, in *secretsmanager.PutSecretValueInput, put func() error) error {
		if aws.ToString(in.ClientRequestToken) != job {
			return put()
		}
		// the job has read the secret: the scheduled rotation starts now
		f.sm.startRotation(scheduled)
		if err := f.step(t, StepCreate, scheduled); err != nil {
			t.Errorf("createSecret: %v", err)
		}
		go func() { setErr <- f.step(t, StepSet, scheduled) }()
		<-setAtSend
		return put()
	}
	var scheduledPassword string
	hapi.before = func(password string) {
		if scheduledPassword == "" && password == passwordOf(t, aws.ToString(f.sm.values[scheduled])) {
			scheduledPassword = password
			close(setAtSend) // setSecret checked AWSPENDING and is sending
			<-jobDone        // and its request arrives last
		}
	}

	res, err := rotateNow(f, job)
	if err != nil || res.VersionID != job {
		t.Fatalf("the job: %+v, %v", res, err)
	}
	close(jobDone)
	if err := <-setErr; err == nil {
		t.Fatal("setSecret succeeded for a version that lost AWSPENDING while it sent")
	}
	if f.api.stored != passwordOf(t, f.sm.valueOf(stageCurrent)) {
		t.Fatal("Apinizer holds the overtaken rotation's password, not AWSCURRENT's")
	}
	f.assertInvariant(t)
}

// A bulk job resumes the scheduled rotation's own version and promotes it
// while setSecret is sending, and another rotation writes AWSPENDING right
// after. setSecret's version is done (AWSCURRENT): it gives Apinizer the
// latest stored password, the new pending one, and succeeds.
func TestASetSecretWhoseVersionWasPromotedMeanwhileSucceeds(t *testing.T) {
	f := newFixture(seed)
	hapi := &hookedApinizer{fakeApinizer: f.api}
	f.eng.Apinizer = hapi
	f.sm.startRotation(token)
	if err := f.step(t, StepCreate, token); err != nil {
		t.Fatal(err)
	}
	newer := `{"projectName":"Orders","username":"orders-client","password":"Newer-Pass-9","note":"kept"}`
	hapi.before = func(string) {
		hapi.before = nil
		// the bulk job: it finds this version pending, resumes and promotes it
		if res, err := rotateNow(f, "job-token-000000000000000000000003"); err != nil || res.VersionID != token {
			t.Errorf("the job: %+v, %v", res, err)
		}
		// then another rotation writes its pending value
		if _, err := f.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
			SecretId: aws.String("apinizer/orders"), ClientRequestToken: aws.String("next-token-00000000000000000000004"),
			SecretString: aws.String(newer), VersionStages: []string{stagePending}}); err != nil {
			t.Error(err)
		}
	}
	if err := f.step(t, StepSet, token); err != nil {
		t.Errorf("setSecret failed although its version is AWSCURRENT: %v", err)
	}
	if f.sm.holder(stageCurrent) != token || f.api.stored != "Newer-Pass-9" {
		t.Errorf("AWSCURRENT on %q, Apinizer holds %q: want the job's version current and the newer "+
			"pending password at Apinizer", f.sm.holder(stageCurrent), f.api.stored)
	}
	f.assertInvariant(t)
}
