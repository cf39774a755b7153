package apinizer

import (
	"context"
	"net/http"
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
