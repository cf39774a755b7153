// Package deadletter writes failure records to the dead-letter queue: one
// JSON object per failed deployment or per job that cannot succeed. A record
// says what failed and why; it never holds a password or a token.
package deadletter

import (
	"encoding/json"
	"time"

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

// maxJobBody bounds the copy of a job body kept in a record, so that a
// record stays far below the queue's 256 KiB message limit.
const maxJobBody = 16 << 10

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
	type plain Record
	if r.Environments == nil {
		r.Environments = []apinizer.EnvironmentResult{}
	}
	if len(r.JobBody) > maxJobBody {
		r.JobBody = r.JobBody[:maxJobBody] + "...(truncated)"
	}
	return json.Marshal(plain(r))
}
