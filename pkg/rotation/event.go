package rotation

import (
	"errors"
	"fmt"
	"unicode"

	"github.com/aws/aws-lambda-go/events"
)

// The four steps of the Secrets Manager rotation contract.
const (
	StepCreate = "createSecret"
	StepSet    = "setSecret"
	StepTest   = "testSecret"
	StepFinish = "finishSecret"
)

// Event is what Secrets Manager sends for each step.
type Event = events.SecretsManagerSecretRotationEvent

// ErrInvalidEvent marks an event that is not a rotation step; nothing was
// called because of it.
var ErrInvalidEvent = errors.New("invalid rotation event")

// maxFieldLength bounds the event fields: secret ARNs are at most 2048
// characters, tokens at most 64.
const maxFieldLength = 2048

// ValidateEvent checks that ev names a known step and carries a secret id
// and a token of printable ASCII. RotationToken is optional.
func ValidateEvent(ev Event) error {
	switch ev.Step {
	case StepCreate, StepSet, StepTest, StepFinish:
	case "":
		return fmt.Errorf("%w: Step is missing", ErrInvalidEvent)
	default:
		return fmt.Errorf("%w: Step %q is not one of createSecret, setSecret, testSecret, finishSecret",
			ErrInvalidEvent, printable(ev.Step))
	}
	fields := []struct{ name, value string }{
		{"SecretId", ev.SecretID},
		{"ClientRequestToken", ev.ClientRequestToken},
	}
	for _, f := range fields {
		if f.value == "" {
			return fmt.Errorf("%w: %s is missing", ErrInvalidEvent, f.name)
		}
		if err := checkField(f.name, f.value); err != nil {
			return err
		}
	}
	if ev.RotationToken != "" {
		if err := checkField("RotationToken", ev.RotationToken); err != nil {
			return err
		}
	}
	return nil
}

func checkField(name, value string) error {
	if len(value) > maxFieldLength {
		return fmt.Errorf("%w: %s is longer than %d characters", ErrInvalidEvent, name, maxFieldLength)
	}
	for _, r := range value {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return fmt.Errorf("%w: %s must be printable ASCII without spaces", ErrInvalidEvent, name)
		}
	}
	return nil
}

// printable shortens s and replaces what is not printable ASCII, for error
// messages about a value the caller sent.
func printable(s string) string {
	const limit = 40
	out := make([]rune, 0, limit)
	for _, r := range s {
		if len(out) == limit {
			return string(out) + "..."
		}
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}
