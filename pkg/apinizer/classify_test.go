package apinizer

import (
	"fmt"
	"testing"
)

func TestClassifyStatus(t *testing.T) {
	tests := []struct {
		codes []int
		want  Class
		why   string
	}{
		{[]int{400, 404, 405, 409, 410, 422, 418, 451, 499}, ClassRejected, "a 4xx will not pass as sent"},
		{[]int{401, 403}, ClassToken, "the token is missing, invalid or lacks a permission"},
		{[]int{408, 425, 429}, ClassTransient, "timeouts and rate limits pass later"},
		{[]int{500, 502, 503, 504, 507, 520, 599}, ClassTransient, "server failures are retried"},
		{[]int{501, 505}, ClassRejected, "not implemented never passes"},
		{[]int{300, 301, 302, 303, 304, 307, 308}, ClassRejected, "redirects are never followed"},
		{[]int{100, 600, 999}, ClassRejected, "statuses outside the known ranges are not retried"},
	}
	for _, tt := range tests {
		for _, code := range tt.codes {
			t.Run(fmt.Sprintf("%d is %v because %s", code, tt.want, tt.why), func(t *testing.T) {
				if got := classifyStatus(code); got != tt.want {
					t.Errorf("classifyStatus(%d) = %v, want %v", code, got, tt.want)
				}
			})
		}
	}
}

func TestClassStringsAreStable(t *testing.T) {
	want := map[Class]string{
		ClassUnknown:          "unknown",
		ClassTransient:        "transient",
		ClassRejected:         "rejected",
		ClassToken:            "token",
		ClassDeploymentFailed: "deployment_failed",
	}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), s)
		}
	}
}
