package apinizer

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

func TestMaxRequestsPerSecondSpacesOutConcurrentCalls(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	var n atomic.Int32
	opts := fastOptions()
	opts.MaxRequestsPerSecond = 20
	hs := newHarness(t, opts, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"success":true,"deploymentResult":{"success":true,"environmentResults":[]}}`))
	})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = hs.client.ChangePassword(context.Background(), "p", "u", sensitive.New(testPassword))
		}()
	}
	wg.Wait()
	if n.Load() != 10 {
		t.Fatalf("requests %d", n.Load())
	}
	// ten requests at 20 per second with a burst of one span at least 9/20 s
	first, last := times[0], times[0]
	for _, ts := range times {
		if ts.Before(first) {
			first = ts
		}
		if ts.After(last) {
			last = ts
		}
	}
	if span := last.Sub(first); span < 400*time.Millisecond {
		t.Errorf("ten requests came within %v; the limit allows one per 50 ms", span)
	}
}

func TestMaxConcurrentRequestsBoundsTheRequestsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bound int
		want  int32 // the most requests the server sees at once
	}{
		{name: "three slots let three in at a time", bound: 3, want: 3},
		{name: "one slot sends one at a time", bound: 1, want: 1},
		{name: "no bound lets all twelve in", bound: 0, want: 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, peak atomic.Int32
			arrived := make(chan struct{}, 12)
			release := make(chan struct{})
			opts := fastOptions()
			opts.MaxConcurrentRequests = tc.bound
			hs := newHarness(t, opts, func(w http.ResponseWriter, r *http.Request) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				arrived <- struct{}{}
				<-release
				_, _ = w.Write([]byte(`{"success":true,"deploymentResult":{"success":true,"environmentResults":[]}}`))
			})
			var wg sync.WaitGroup
			errs := make(chan error, 12)
			for range 12 {
				wg.Go(func() {
					_, err := hs.client.ChangePassword(context.Background(), "p", "u", sensitive.New(testPassword))
					errs <- err
				})
			}
			// let the first wave in, then give the others time to crowd in
			for range tc.want {
				<-arrived
			}
			time.Sleep(50 * time.Millisecond)
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("ChangePassword: %v", err)
				}
			}
			if got := peak.Load(); got != tc.want {
				t.Errorf("most requests in flight at once: expect %d, got %d", tc.want, got)
			}
		})
	}
}

func TestWaitingForARequestSlotEndsWithTheCallersContext(t *testing.T) {
	release := make(chan struct{})
	opts := fastOptions()
	opts.MaxConcurrentRequests = 1
	hs := newHarness(t, opts, func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = w.Write([]byte(`{"success":true,"deploymentResult":{"success":true,"environmentResults":[]}}`))
	})
	defer close(release)
	go func() {
		_, _ = hs.client.ChangePassword(context.Background(), "p", "busy", sensitive.New(testPassword))
	}()
	for hs.requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := hs.client.ChangePassword(ctx, "p", "waiting", sensitive.New(testPassword))
	if err == nil {
		t.Fatal("expect an error once the context ended, got none")
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("the wait outlived the context: %v", waited)
	}
	if got := hs.requests.Load(); got != 1 {
		t.Errorf("requests the server saw: expect 1, got %d", got)
	}
}

func TestASlotThatFreesTooCloseToTheDeadlineIsNotTaken(t *testing.T) {
	release := make(chan struct{})
	opts := fastOptions() // an attempt needs at least a second
	opts.MaxConcurrentRequests = 1
	hs := newHarness(t, opts, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/busy/") {
			<-release
		}
		_, _ = w.Write([]byte(`{"success":true,"deploymentResult":{"success":true,"environmentResults":[]}}`))
	})
	busy := make(chan error, 1)
	go func() {
		_, err := hs.client.ChangePassword(context.Background(), "p", "busy", sensitive.New(testPassword))
		busy <- err
	}()
	for hs.requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}

	// the slot frees 700 ms into a call that has 1.2 s: 0.5 s is too little
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	time.AfterFunc(700*time.Millisecond, func() { close(release) })
	_, err := hs.client.ChangePassword(ctx, "p", "late", sensitive.New(testPassword))
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassTransient {
		t.Fatalf("expect a transient *Error, got %v", err)
	}
	if !strings.Contains(err.Error(), "nothing was sent") {
		t.Errorf("expect the error to say nothing was sent, got %q", err)
	}
	if err := <-busy; err != nil {
		t.Errorf("the call holding the slot: %v", err)
	}
	if got := hs.requests.Load(); got != 1 {
		t.Errorf("requests the server saw: expect only the busy one, got %d", got)
	}
}
