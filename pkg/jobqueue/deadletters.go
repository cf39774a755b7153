package jobqueue

import (
	"encoding/json"

	"github.com/apinizer-rotation/rotator/pkg/bulk"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// deadLetterRecord holds the fields of a dead-letter record a redrive
// reads.
type deadLetterRecord struct {
	Reason    string `json:"reason"`
	SecretID  string `json:"secretId"`
	VersionID string `json:"versionId"`
	MessageID string `json:"messageId"`
	JobBody   string `json:"jobBody"`
}

// readDeadLetter reads one dead-letter message: a record, or a raw job
// body. It fills the job to send back, or marks the message skipped.
func readDeadLetter(messageID, body string) *Message {
	m := &Message{MessageID: messageID}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &fields); err != nil || fields["reason"] == nil {

		// a raw job body, moved by the job queue's redrive policy: SQS kept
		// its message id, which a record of the same job also names
		m.Reason = ReasonRaw
		m.key = "message:" + messageID
		job, err := bulk.ParseJob(body)
		if err != nil {
			m.State, m.Detail = StateSkipped, "neither a dead-letter record nor a job: "+err.Error()
			return m
		}
		m.SecretID, m.JobID, m.body = job.SecretID, job.JobID, body
		return m
	}

	var rec deadLetterRecord
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		m.Reason = "?"
		m.State, m.Detail = StateSkipped, "a dead-letter record that cannot be read: "+err.Error()
		return m
	}
	m.Reason, m.SecretID = rec.Reason, rec.SecretID
	switch {
	case rec.MessageID != "":
		m.key = "message:" + rec.MessageID
	case rec.SecretID != "" && rec.VersionID != "":
		m.key = "version:" + rec.SecretID + "\x00" + rec.VersionID
	}

	// an invalid job fails again as it is, and its record holds it with
	// the faulty fields redacted: it is fixed and enqueued anew, not moved
	if rec.Reason == deadletter.ReasonInvalidJob {
		m.State, m.Detail = StateSkipped, "an invalid job cannot succeed as it is: fix it and enqueue it again"
		return m
	}

	// the job it came from, else a new job for the secret it names
	if job, err := bulk.ParseJob(rec.JobBody); rec.JobBody != "" && err == nil {
		m.SecretID, m.JobID, m.body = job.SecretID, job.JobID, rec.JobBody
		return m
	}
	if rec.SecretID == "" {
		m.State, m.Detail = StateSkipped, "the record holds no valid job and names no secret"
		return m
	}
	jobID := "redrive-" + messageID
	body = jobBody(rec.SecretID, jobID)
	if _, err := bulk.ParseJob(body); err != nil {
		m.State, m.Detail = StateSkipped, "the secret it names makes no valid job: "+err.Error()
		return m
	}
	m.JobID, m.body = jobID, body
	return m
}
