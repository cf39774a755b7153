// Package bulk handles SQS batches of bulk rotation jobs: each message asks
// for one credential secret to be rotated now. It reports a verdict per
// message (partial batch response), runs records concurrently with a bound,
// keeps FIFO groups in order, and dead-letters what cannot succeed.
package bulk

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrInvalidJob marks a message body that is not a bulk job.
var ErrInvalidJob = errors.New("invalid bulk job")

// Job is one message body: {"secretId": "<name or ARN>", "jobId": "..."}.
type Job struct {
	SecretID string `json:"secretId"`
	JobID    string `json:"jobId,omitempty"`
}

const (
	maxSecretID = 2048
	maxJobID    = 128
)

// ParseJob reads a message body. Unknown keys are ignored; a missing or
// malformed secretId or jobId is an error that says which.
func ParseJob(body string) (Job, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil || dec.More() {
		return Job{}, fmt.Errorf(`%w: the body is not a JSON object like {"secretId": "..."}`, ErrInvalidJob)
	}
	var job Job
	raw, ok := fields["secretId"]
	if !ok {
		return Job{}, fmt.Errorf("%w: key \"secretId\" is missing", ErrInvalidJob)
	}
	if err := json.Unmarshal(raw, &job.SecretID); err != nil {
		return Job{}, fmt.Errorf("%w: \"secretId\" must be a string", ErrInvalidJob)
	}
	if err := checkText("secretId", job.SecretID, maxSecretID); err != nil {
		return Job{}, err
	}
	if raw, ok := fields["jobId"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &job.JobID); err != nil {
			return Job{}, fmt.Errorf("%w: \"jobId\" must be a string", ErrInvalidJob)
		}
		if job.JobID != "" {
			if err := checkText("jobId", job.JobID, maxJobID); err != nil {
				return Job{}, err
			}
		}
	}
	return job, nil
}

func checkText(key, v string, limit int) error {
	if v == "" {
		return fmt.Errorf("%w: %q is empty", ErrInvalidJob, key)
	}
	if len(v) > limit {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidJob, key, limit)
	}
	for _, r := range v {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return fmt.Errorf("%w: %q must be printable ASCII without spaces", ErrInvalidJob, key)
		}
	}
	return nil
}

// Token derives the rotation token (the new version's id) of a job. It
// depends only on the secret and on the job id, or the message id when the
// job has none, so a redelivered message resumes the same rotation and a
// job enqueued twice under one job id rotates once, whether it names the
// secret by name or by ARN: the secret counts by its name (SecretName).
func Token(job Job, messageID string) string {
	id := job.JobID
	if id == "" {
		id = "message:" + messageID
	}
	sum := sha256.Sum256([]byte("apinizer-bulk-job\x00" + SecretName(job.SecretID) + "\x00" + id))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// redactJobBody is the copy of a message body kept in a dead-letter record.
// Of a JSON object it keeps secretId and jobId when they are strings and
// replaces every other value, since a sender may have put a password there;
// anything else is replaced whole, saying what it was.
func redactJobBody(body string) string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &fields); err != nil || fields == nil {
		return fmt.Sprintf("[REDACTED: not a JSON object, %d bytes]", len(body))
	}
	changed := false
	for k, v := range fields {
		var s string
		if (k == "secretId" || k == "jobId") && json.Unmarshal(v, &s) == nil {
			continue
		}
		fields[k] = json.RawMessage(`"[REDACTED]"`)
		changed = true
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return "[REDACTED]"
	}
	return string(out)
}

// SecretName is the name part of a secret id, name or ARN. The name in a
// full ARN ends in a dash and six letters or digits Secrets Manager adds;
// they are dropped. A partial ARN, one without them, keeps its name whole,
// unless that name itself ends in a dash and six letters or digits
// ("...:secret:apinizer/o/my-client"): such a partial ARN cannot be told
// from a full one without asking Secrets Manager, and loses that end
// ("apinizer/o/my"). A full ARN, the form AWS hands out, is always right.
func SecretName(id string) string {
	const marker = ":secret:"
	if i := strings.Index(id, marker); strings.HasPrefix(id, "arn:") && i >= 0 {
		n := id[i+len(marker):]
		if len(n) > 7 && n[len(n)-7] == '-' && isAlphanumeric(n[len(n)-6:]) {
			n = n[:len(n)-7]
		}
		return n
	}
	return id
}

// isAlphanumeric reports whether s holds only ASCII letters and digits.
func isAlphanumeric(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// SameSecret reports whether two secret ids, names or ARNs, name the same
// secret; a name given without the ARN's suffix matches.
func SameSecret(a, b string) bool {
	return a == b || SecretName(a) == SecretName(b)
}
