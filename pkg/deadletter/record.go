// Package deadletter writes failure records to the dead-letter queue: one
// JSON object per failed deployment or per job that cannot succeed. A record
// says what failed and why; it never holds a password or a token.
package deadletter

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
)

// Reasons a record is written.
const (
	ReasonDeploymentFailed = "deployment_failed" // Apinizer saved the password, a gateway did not get it
	ReasonRejected         = "rejected"          // Apinizer refused the change (400, 404)
	ReasonInvalidJob       = "invalid_job"       // the queue message is not a bulk job
	ReasonInvalidSecret    = "invalid_secret"    // the secret cannot be rotated as it is
	ReasonUnexpected       = "unexpected"        // a failure of no known kind (a recovered panic)
)

// Sources of a record.
const (
	SourceRotation = "rotation"
	SourceBulk     = "bulk"
)

// Bounds that keep a record far below the queue's 256 KiB message limit,
// whatever Apinizer answered: at most 64 KiB even when every character
// needs a six-byte JSON escape.
const (
	maxJobBody      = 4 << 10
	maxError        = 2 << 10
	maxEnvironments = 50
	maxEnvMessage   = 200
)

// Record is one dead-letter message.
type Record struct {
	Reason       string                       `json:"reason"`
	Source       string                       `json:"source"`
	SecretID     string                       `json:"secretId,omitempty"`
	ProjectName  string                       `json:"projectName,omitempty"`
	Username     string                       `json:"username,omitempty"`
	VersionID    string                       `json:"versionId,omitempty"`
	Environments []apinizer.EnvironmentResult `json:"environments"`
	Error        string                       `json:"error"`
	MessageID    string                       `json:"messageId,omitempty"`
	JobID        string                       `json:"jobId,omitempty"`
	JobBody      string                       `json:"jobBody,omitempty"`
	ReceiveCount string                       `json:"receiveCount,omitempty"`
	Timestamp    time.Time                    `json:"timestamp"`
}

// MarshalJSON keeps environments a list (never null) and cuts an oversized
// job body.
func (r Record) MarshalJSON() ([]byte, error) {
	type fields Record // without this method
	type plain struct {
		fields
		// EnvironmentsOmitted counts the entries left out past the bound.
		EnvironmentsOmitted int `json:"environmentsOmitted,omitempty"`
	}
	out := plain{fields: fields(r)}
	envs := r.Environments
	if len(envs) > maxEnvironments {
		// keep the failed ones first: they are what the record is about
		sorted := make([]apinizer.EnvironmentResult, 0, len(envs))
		for _, e := range envs {
			if !e.Success {
				sorted = append(sorted, e)
			}
		}
		for _, e := range envs {
			if e.Success {
				sorted = append(sorted, e)
			}
		}
		out.EnvironmentsOmitted = len(envs) - maxEnvironments
		envs = sorted[:maxEnvironments]
	}
	out.Environments = make([]apinizer.EnvironmentResult, len(envs))
	for i, e := range envs {
		e.Name, e.Pod, e.Message = cut(e.Name, maxEnvMessage), cut(e.Pod, maxEnvMessage), cut(e.Message, maxEnvMessage)
		out.Environments[i] = e
	}
	out.Error = cut(r.Error, maxError)
	out.JobBody = cut(r.JobBody, maxJobBody)
	out.SecretID = cut(r.SecretID, maxError)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "...(truncated)"
}
