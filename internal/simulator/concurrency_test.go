package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParallelPasswordChanges(t *testing.T) {
	run := start(t, Config{JitterMS: 5, Shape: ShapePods})
	const n = 50
	for i := range n {
		run.SetCredential("app", fmt.Sprintf("user-%d", i), "old")
	}
	run.AddFaults(Fault{Status: 503, Count: 5, Username: "svc"})

	var wg sync.WaitGroup
	errs := make(chan string, 3*n)
	for i := range n {
		// each credential once, and svc from every goroutine
		wg.Go(func() {
			user := fmt.Sprintf("user-%d", i)
			a, err := trySend(run.URL, patchCall("app", user, "new-"+user))
			if err != nil || a.status != 200 {
				errs <- fmt.Sprintf("%s: %d %s %v", user, a.status, a.body, err)
			}
			if _, err := trySend(run.URL, patchCall("app", "svc", fmt.Sprintf("svc-%d", i))); err != nil {
				errs <- err.Error()
			}
		})
		// readers and a writer of the configuration, at the same time
		wg.Go(func() {
			_ = run.Requests()
			_, _ = run.Password("app", "svc")
			run.SetConfig(Config{JitterMS: 5, Shape: ShapePods, Tokens: []string{testToken}})
			_ = run.Config()
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	for i := range n {
		user := fmt.Sprintf("user-%d", i)
		if pw, _ := run.Password("app", user); pw != "new-"+user {
			t.Errorf("%s: password %q", user, pw)
		}
	}
	if got := run.PasswordChanges("app", "svc"); got != n-5 {
		t.Errorf("svc PasswordChanges = %d, want %d (5 faults)", got, n-5)
	}
	if pw, _ := run.Password("app", "svc"); !strings.HasPrefix(pw, "svc-") {
		t.Errorf("svc password = %q", pw)
	}
	if got := len(run.Requests()); got != 2*n {
		t.Errorf("logged %d requests, want %d", got, 2*n)
	}
}

func TestRequestLogHoldsNoSecrets(t *testing.T) {
	run := start(t, Config{})
	const password = "Sup3r-S3cret-P4ssw0rd"

	patch(t, run.URL, "app", "svc", password)
	send(t, run.URL, call{method: http.MethodPatch,
		path: "/apiops/projects/app/credentials/svc/?password=" + password, token: "wrong-token",
		contentType: "application/json", body: `{"password":"` + password + `"}`})
	send(t, run.URL, call{method: http.MethodPost, path: "/apiops/auth/token",
		contentType: "application/x-www-form-urlencoded",
		body:        "grant_type=client_credentials&client_id=svc&client_secret=" + password})

	reqs := run.Requests()
	if len(reqs) != 3 {
		t.Fatalf("logged %d requests, want 3", len(reqs))
	}
	logged, _ := json.Marshal(reqs)
	for _, secret := range []string{password, testToken, "wrong-token", "Bearer"} {
		if strings.Contains(string(logged), secret) {
			t.Errorf("the request log holds %q: %s", secret, logged)
		}
	}

	first := reqs[0]
	if first.Done.Before(first.Time) {
		t.Errorf("answered at %v, before it arrived at %v", first.Done, first.Time)
	}
	want := Request{Time: first.Time, Done: first.Done, Method: http.MethodPatch,
		Path:    "/apiops/projects/app/credentials/svc/",
		RawPath: "/apiops/projects/app/credentials/svc/", Project: "app", Username: "svc",
		Status: 200, HasAuthorization: true, TokenAccepted: true,
		PasswordLength: len(password)}
	if first != want {
		t.Errorf("logged\n%+v\nwant\n%+v", first, want)
	}
	if reqs[1].Status != 401 || reqs[1].TokenAccepted || !reqs[1].HasAuthorization {
		t.Errorf("second request logged as %+v", reqs[1])
	}
	if reqs[2].Username != "svc" || reqs[2].PasswordLength != 0 {
		t.Errorf("token request logged as %+v", reqs[2])
	}
}

func TestRequestLogIsBounded(t *testing.T) {
	s := New(Config{})
	for i := range MaxRequests + 10 {
		s.record(Request{Status: i})
	}
	reqs := s.Requests()
	if len(reqs) != MaxRequests || reqs[0].Status != 10 {
		t.Errorf("kept %d requests from status %d, want %d from 10",
			len(reqs), reqs[0].Status, MaxRequests)
	}
}

func TestMostAtOnceCountsTheRequestsAnsweredAtTheSameTime(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	span := func(from, to int) Request { return Request{Time: at(from), Done: at(to)} }
	for _, tc := range []struct {
		name string
		reqs []Request
		want int
	}{
		{"no requests", nil, 0},
		{"one after another, touching", []Request{span(0, 10), span(10, 20), span(20, 30)}, 1},
		{"three overlapping and one apart", []Request{span(0, 10), span(5, 15), span(8, 12), span(20, 30)}, 3},
		{"nested", []Request{span(0, 100), span(10, 20), span(30, 40)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MostAtOnce(tc.reqs); got != tc.want {
				t.Errorf("expect %d, got %d", tc.want, got)
			}
		})
	}
}

func TestTheLogTellsHowManyPasswordChangesRanAtOnce(t *testing.T) {
	run := start(t, Config{LatencyMS: 300})
	for i := range 6 {
		run.SetCredential("app", fmt.Sprintf("user-%d", i), "old")
	}

	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() { _, _ = trySend(run.URL, patchCall("app", fmt.Sprintf("user-%d", i), "six")) })
	}
	wg.Wait()
	reqs := run.Requests()
	if got := MostAtOnce(reqs); got != 6 {
		t.Errorf("six sent at once: expect 6 at once, got %d", got)
	}
	for _, r := range reqs {
		if d := r.Done.Sub(r.Time); d < 300*time.Millisecond {
			t.Errorf("%s answered after %v, before its latency", r.Username, d)
		}
	}
}
