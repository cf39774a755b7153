// Command echofn is a tiny Lambda function for the standin tests: it echoes
// the event back, and fails, panics or sleeps when the event asks it to.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Fail    bool   `json:"fail"`
	Panic   bool   `json:"panic"`
	SleepMs int    `json:"sleepMs"`
	Env     string `json:"env"`
}

type reply struct {
	Event json.RawMessage `json:"event"`
	Env   string          `json:"env,omitempty"`
	PID   int             `json:"pid"`
}

func handle(ctx context.Context, raw json.RawMessage) (reply, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return reply{}, err
	}

	if ev.SleepMs > 0 {
		// sleep through the deadline, as a stuck handler would: the
		// emulator's timeout, not the handler, must end the invocation
		time.Sleep(time.Duration(ev.SleepMs) * time.Millisecond)
	}
	if ev.Panic {
		panic("echofn was asked to panic")
	}
	if ev.Fail {
		return reply{}, errors.New("echofn was asked to fail")
	}

	r := reply{Event: raw, PID: os.Getpid()}
	if ev.Env != "" {
		r.Env = os.Getenv(ev.Env)
	}
	return r, nil
}

func main() {
	lambda.Start(handle)
}
