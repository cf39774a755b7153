package standin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Values moto is reached with. Moto accepts any keys; its account id is
// always 123456789012.
const (
	Region          = "us-east-1"
	AccessKeyID     = "test"
	SecretAccessKey = "test"
)

// MotoStartTimeout bounds how long StartMoto waits for moto to answer.
const MotoStartTimeout = 30 * time.Second

const motoInstallHint = "install it with: pip install 'moto[server]'"

// Moto is a running moto_server, the Secrets Manager and SQS emulator.
type Moto struct {
	// URL is where moto listens: http://127.0.0.1:PORT.
	URL string

	proc *process
}

// StartMoto starts moto_server on a free loopback port and waits until it
// answers. It runs moto_server from PATH, or else `python3 -m moto.server`.
// ctx bounds the start only; the server runs until Stop.
func StartMoto(ctx context.Context, logw io.Writer) (*Moto, error) {
	name, baseArgs, err := findMoto(ctx)
	if err != nil {
		return nil, err
	}

	for attempt := 1; ; attempt++ {
		m, err := startMotoOnce(ctx, name, baseArgs, logw)
		if errors.Is(err, errPortTaken) && attempt < startAttempts {
			continue
		}
		return m, err
	}
}

// motoLauncher runs moto's server with one change that does not touch what
// it emulates: moto lists its ~170 service packages on disk (a directory
// read and a stat each) for every request to find the service. The list
// cannot change while the server runs, so it is read once.
//
// Werkzeug's request log stays on. Without it the server closes each
// connection the instant it has written the answer, and Go's transport
// then now and then fails to read an answer moto already acted on
// ("use of closed network connection"); the SDK sends the call again
// (aws/aws-sdk-go-v2#2737), and a resent SendMessageBatch doubles
// dead-letter records, a resent ReceiveMessage hides messages. (Seen in
// test/e2e under load: a dozen resent calls in 45 runs with the log off,
// none in 45 with it on.)
const motoLauncher = `import sys
import moto.backends as backends
if hasattr(backends, "list_of_moto_modules"):
    _modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: _modules
from moto.server import main
sys.exit(main(sys.argv[1:]))
`

// findMoto returns the command that runs moto's server: the launcher above
// under a python3 that has moto, or else moto_server from PATH as it is.
func findMoto(ctx context.Context) (string, []string, error) {
	python, pyErr := exec.LookPath("python3")
	if pyErr == nil {
		// find_spec locates moto without importing it, so this is quick
		probe := exec.CommandContext(ctx, python, "-c",
			"import importlib.util, sys; sys.exit(importlib.util.find_spec('moto') is None)")
		if probe.Run() == nil {
			return python, []string{"-c", motoLauncher}, nil
		}
	}
	if path, err := exec.LookPath("moto_server"); err == nil {
		return path, nil, nil
	}
	if pyErr != nil {
		return "", nil, fmt.Errorf("moto_server is not on PATH and there is no python3; %s",
			motoInstallHint)
	}
	return "", nil, fmt.Errorf("moto_server is not on PATH and python3 has no moto; %s", motoInstallHint)
}

func startMotoOnce(ctx context.Context, name string, baseArgs []string, logw io.Writer) (
	*Moto, error,
) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := slices.Concat(baseArgs, []string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)})
	env := append(os.Environ(), "PYTHONUNBUFFERED=1")
	proc, err := startProcess(name, args, "", env, logw)
	if err != nil {
		return nil, fmt.Errorf("%w; %s", err, motoInstallHint)
	}
	m := &Moto{URL: "http://127.0.0.1:" + strconv.Itoa(port), proc: proc}

	// moto's own API answering shows it is up, not just listening
	client := &http.Client{Timeout: 2 * time.Second}
	err = proc.waitReady(ctx, MotoStartTimeout, func(ctx context.Context) bool {
		return m.get(ctx, client, "/moto-api/data.json") == nil
	})
	if err != nil {
		_ = proc.stop()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf(
				"moto_server did not answer on %s within %s (is moto installed? %s); "+
					"its last output:\n%s",
				m.URL, MotoStartTimeout, motoInstallHint, proc.out.Tail())
		}
		if errors.Is(err, errPortTaken) {
			return nil, err
		}
		return nil, fmt.Errorf("starting moto_server: %w (%s)", err, motoInstallHint)
	}
	return m, nil
}

func (m *Moto) get(ctx context.Context, client *http.Client, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return nil
}

// Reset wipes all of moto's state: every secret, queue and message.
func (m *Moto) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL+"/moto-api/reset", nil)
	if err != nil {
		return fmt.Errorf("resetting moto: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("resetting moto: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, tailSize))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("resetting moto: HTTP %d: %s", resp.StatusCode, bytesTail(body))
	}
	return nil
}

// Stop kills moto_server. It is safe to call more than once.
func (m *Moto) Stop() error {
	return m.proc.stop()
}

// AWSConfig returns an aws.Config that reaches moto: its URL as the base
// endpoint of every service, static dummy keys, Region and the standard
// retry mode. These win over the environment and the shared config files,
// which the SDK still reads: an AWS_PROFILE naming a profile that does not
// exist fails here, and a service-specific endpoint (AWS_ENDPOINT_URL_SQS,
// or endpoint_url in a profile's services section) outranks BaseEndpoint.
func (m *Moto) AWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(Region),
		config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")),
		config.WithBaseEndpoint(m.URL),
		config.WithRetryMode(aws.RetryModeStandard),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading an AWS config for moto at %s: %w", m.URL, err)
	}
	return cfg, nil
}

// Env returns the environment a function process needs to reach moto
// through the SDK's standard variables, as KEY=value strings.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.URL,
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// bytesTail returns the end of b, trimmed, for an error message.
func bytesTail(b []byte) string {
	if len(b) > tailSize {
		b = b[len(b)-tailSize:]
	}
	return strings.TrimSpace(string(b))
}
