package e2e

import (
	"errors"
	"strings"
	"testing"

	"github.com/apinizer-rotation/rotator/internal/standin"
)

func TestMissingConfigurationFailsEveryInvocationWithOneClearMessage(t *testing.T) {
	cases := []struct {
		name, bootstrap, event string
		env                    []string
		want                   []string
	}{
		{"rotation function, nothing set", stack.RotateBootstrap,
			`{"Step":"createSecret","SecretId":"s","ClientRequestToken":"t"}`, nil,
			[]string{"APINIZER_BASE_URL is not set", "APINIZER_TOKEN_SECRET_ID is not set", "DEAD_LETTER_QUEUE_URL is not set"}},
		{"bulk function, plain http to a remote host", stack.BulkBootstrap,
			`{"Records":[{"messageId":"m1","body":"{\"secretId\":\"s\"}"}]}`,
			[]string{"APINIZER_BASE_URL=http://apinizer.example.com", "APINIZER_TOKEN_SECRET_ID=t",
				"DEAD_LETTER_QUEUE_URL=" + stack.DeadLetterQueueURL, "PASSWORD_LENGTH=eight"},
			[]string{"https", "PASSWORD_LENGTH"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requests := len(stack.Sim.Requests())
			fn, err := standin.StartFunction(testContext(t), stack.RIE, standin.FunctionOptions{
				Bootstrap: tc.bootstrap, Env: append(stack.Moto.Env(), tc.env...), LogWriter: &logs,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer fn.Stop()
			for range 2 {
				_, err := fn.Invoke(testContext(t), []byte(tc.event))
				var ie *standin.InvokeError
				if !errors.As(err, &ie) {
					t.Fatalf("want a function error, got %v", err)
				}
				if strings.Count(ie.Message, "configuration:") != 1 {
					t.Errorf("want one message, got %q", ie.Message)
				}
				for _, w := range tc.want {
					if !strings.Contains(ie.Message, w) {
						t.Errorf("message %q does not say %q", ie.Message, w)
					}
				}
			}
			if len(stack.Sim.Requests()) != requests {
				t.Error("a misconfigured function reached Apinizer")
			}
		})
	}
}
