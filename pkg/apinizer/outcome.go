package apinizer

import (
	"errors"
	"fmt"
	"strings"
)

// EnvironmentResult is the deployment outcome for one gateway environment,
// or for one pod of it when Apinizer reports per pod (detailList).
type EnvironmentResult struct {
	Name    string `json:"name"`
	Pod     string `json:"pod,omitempty"`
	Success bool   `json:"success"`
	Message string `json:"message,omitempty"`
}

// Deployment is what Apinizer reported about deploying a changed credential
// to the gateway environments.
type Deployment struct {
	// Reported is false when the response carried no readable
	// deploymentResult: the outcome is unknown and is not "deployed".
	Reported bool
	// Success is the overall deploymentResult.success flag; nil if absent.
	Success *bool
	// Message is deploymentResult.message or the envelope's resultMessage.
	Message string
	// Environments lists every environment or pod entry, flattened.
	Environments []EnvironmentResult
}

// Deployed reports whether the change reached every gateway: a result was
// reported, its overall flag is not false, every entry succeeded, and there
// is positive evidence (an overall true flag or at least one entry).
func (d Deployment) Deployed() bool {
	if !d.Reported {
		return false
	}
	if d.Success != nil && !*d.Success {
		return false
	}
	for _, e := range d.Environments {
		if !e.Success {
			return false
		}
	}
	return d.Success != nil || len(d.Environments) > 0
}

// Failed returns the entries that did not succeed.
func (d Deployment) Failed() []EnvironmentResult {
	var failed []EnvironmentResult
	for _, e := range d.Environments {
		if !e.Success {
			failed = append(failed, e)
		}
	}
	return failed
}

// Class sorts an outcome by what a caller should do about it.
type Class int

const (
	// ClassUnknown is an error this package did not produce.
	ClassUnknown Class = iota
	// ClassTransient may succeed if tried again later (429, 5xx, network).
	ClassTransient
	// ClassRejected will not succeed as sent (400, 404 and other 4xx).
	ClassRejected
	// ClassToken means the access token is missing, invalid or expired (401,
	// 403): a configuration problem shared by every call.
	ClassToken
	// ClassDeploymentFailed means Apinizer saved the password but did not
	// report it deployed everywhere.
	ClassDeploymentFailed
)

// String names the class in lower case, for logs and metrics.
func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassRejected:
		return "rejected"
	case ClassToken:
		return "token"
	case ClassDeploymentFailed:
		return "deployment_failed"
	default:
		return "unknown"
	}
}

// Error is a call to Apinizer that did not end in a 200 success envelope, or
// that never got an answer. It carries no password and no token.
type Error struct {
	Op         string // what was attempted, e.g. "change password of project/user"
	StatusCode int    // HTTP status; 0 when no answer arrived
	Code       string // "error" of the older envelope, "FAILURE" of the newer
	Message    string // error_description or resultMessage, or a body excerpt
	Class      Class
	Attempts   int
	Err        error // the transport error, when there was one
}

// Error describes the failure: the operation, the HTTP status, Apinizer's
// code and message (redacted), the attempts made and the transport error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apinizer: ")
	b.WriteString(e.Op)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the transport or context error, so errors.Is finds
// context.DeadlineExceeded.
func (e *Error) Unwrap() error { return e.Err }

// DeploymentError is a 200 answer whose deployment did not reach every
// environment, or whose result is missing or unreadable (then
// Deployment.Reported is false and the outcome is unknown). The password is
// saved in Apinizer's Manager, as far as the answer tells.
type DeploymentError struct {
	Op         string
	Deployment Deployment
	// Reason says why no deployment result could be read, when one was
	// there but unreadable (with a short excerpt, never the password);
	// empty when the result was simply absent or was read.
	Reason string
}

// Error names the environments and pods that failed, or says that no
// deployment result was reported and why.
func (e *DeploymentError) Error() string {
	if !e.Deployment.Reported {
		msg := "apinizer: " + e.Op + ": password saved but no deployment result was reported"
		if e.Reason != "" {
			msg += ": " + e.Reason
		}
		if e.Deployment.Message != "" {
			msg += ": " + e.Deployment.Message
		}
		return msg
	}
	// a few failed entries say enough; the dead-letter record lists them
	const shown, messageLen = 5, 120
	failed := e.Deployment.Failed()
	var names []string
	for _, f := range failed[:min(len(failed), shown)] {
		n := f.Name
		if f.Pod != "" {
			n += "/" + f.Pod
		}
		if m := f.Message; m != "" {
			if len(m) > messageLen {
				m = strings.ToValidUTF8(m[:messageLen], "") + "..."
			}
			n += " (" + m + ")"
		}
		names = append(names, n)
	}
	if len(failed) > shown {
		names = append(names, fmt.Sprintf("and %d more", len(failed)-shown))
	}
	msg := "apinizer: " + e.Op + ": password saved but deployment failed"
	if len(names) > 0 {
		msg += " in " + strings.Join(names, ", ")
	} else if e.Deployment.Message != "" {
		msg += ": " + e.Deployment.Message
	}
	return msg
}

// ClassOf tells how a caller should treat err. Errors not from this package
// are ClassUnknown.
func ClassOf(err error) Class {
	var de *DeploymentError
	if errors.As(err, &de) {
		return ClassDeploymentFailed
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Class
	}
	return ClassUnknown
}
