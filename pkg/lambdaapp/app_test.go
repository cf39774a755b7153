package lambdaapp

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// TestABurstOfThrottledCallsIsNeverRefusedARetry is case S9: many
// goroutines share one client and their calls are throttled. The SDK's
// default retry quota (500 tokens, 5 a retry) would refuse every retry
// after the hundredth; this retryer has none.
func TestABurstOfThrottledCallsIsNeverRefusedARetry(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	for _, tc := range []struct {
		name        string
		retryer     func() aws.Retryer
		wantRefused bool
	}{
		{"the functions' retryer", NewRetryer, false},
		{"the SDK's default, for contrast", func() aws.Retryer { return retry.NewStandard() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.retryer()
			refused := 0
			for range 300 {
				if _, err := r.GetRetryToken(context.Background(), throttled); err != nil {
					refused++
				}
			}
			if got := refused > 0; got != tc.wantRefused {
				t.Errorf("retries refused out of 300: %d (expect refusals: %v)", refused, tc.wantRefused)
			}
		})
	}
	if got := NewRetryer().MaxAttempts(); got != 5 {
		t.Errorf("max attempts: expect 5, got %d", got)
	}
}
