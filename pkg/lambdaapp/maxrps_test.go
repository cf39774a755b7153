package lambdaapp

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/config"
)

// TestMaxRPSReachesTheApinizerClient builds the app from the environment,
// as a function does at a cold start, and sends Apinizer three requests:
// with APINIZER_MAX_RPS=2.5 they arrive 0.4 s apart, without it at once.
// One local server plays both Secrets Manager (the token secret) and
// Apinizer.
func TestMaxRPSReachesTheApinizerClient(t *testing.T) {
	const spacing = 350 * time.Millisecond // 1/2.5 s, less some slack
	for _, tc := range []struct {
		name, rate string
		spaced     bool
	}{{"2.5 a second", "2.5", true}, {"no limit", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var arrivals []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Amz-Target") == "secretsmanager.GetSecretValue" {
					w.Header().Set("Content-Type", "application/x-amz-json-1.1")
					_, _ = w.Write([]byte(`{"Name":"apinizer-token","VersionId":"v1",` +
						`"SecretString":"{\"token\":\"test-token\"}"}`))
					return
				}
				mu.Lock()
				arrivals = append(arrivals, time.Now())
				mu.Unlock()
				_, _ = w.Write([]byte("hello"))
			}))
			defer srv.Close()
			for k, v := range map[string]string{
				config.EnvBaseURL:             srv.URL,
				config.EnvTokenSecretID:       "apinizer-token",
				config.EnvDeadLetterQueueURL:  "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
				config.EnvMaxRPS:              tc.rate,
				"AWS_ENDPOINT_URL":            srv.URL,
				"AWS_REGION":                  "us-east-1",
				"AWS_ACCESS_KEY_ID":           "test",
				"AWS_SECRET_ACCESS_KEY":       "test",
				"AWS_PROFILE":                 "",
				"AWS_CONFIG_FILE":             filepath.Join(t.TempDir(), "none"),
				"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
			} {
				t.Setenv(k, v)
			}

			app, err := New(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			client, ok := app.Engine.Apinizer.(*apinizer.Client)
			if !ok {
				t.Fatalf("the engine's Apinizer is a %T", app.Engine.Apinizer)
			}
			for range 3 {
				if err := client.CheckToken(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(arrivals) != 3 {
				t.Fatalf("Apinizer got %d requests, want 3", len(arrivals))
			}
			for i := 1; i < len(arrivals); i++ {
				if gap := arrivals[i].Sub(arrivals[i-1]); (gap >= spacing) != tc.spaced {
					t.Errorf("request %d came %v after the one before; spaced out: %v", i+1, gap, tc.spaced)
				}
			}
		})
	}
}
