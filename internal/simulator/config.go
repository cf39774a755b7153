package simulator

import (
	"errors"
	"fmt"
	"slices"
)

// Envelope names the JSON wrapping Apinizer puts around its answers.
type Envelope string

const (
	// EnvelopeSeed is the older documented style: {"success": true, ...} on
	// success and {"error", "error_description"} on failure. A missing
	// project is 404 not_found.
	EnvelopeSeed Envelope = "seed"

	// EnvelopeCurrent is the style the server answers in today:
	// {"status": "SUCCESS", ...} on success and {"status": "FAILURE",
	// "resultMessage"} on failure. A missing project is 400.
	EnvelopeCurrent Envelope = "current"
)

// DeploymentShape names how deploymentResult reports the automatic deploy.
type DeploymentShape string

const (
	// ShapeEnvironments reports one entry per environment:
	// {"success", "message", "environmentResults": [{"environmentName",
	// "success", "message"}]}.
	ShapeEnvironments DeploymentShape = "environmentResults"

	// ShapePods reports one entry per gateway pod, as the generated schema
	// does: {"success", "responseTime", "detailList": [{"envName", "podName",
	// "podIp", "success", "detail", "responseTime"}]}.
	ShapePods DeploymentShape = "detailList"
)

// DefaultPodsPerEnv is how many pods each environment has when Config leaves
// PodsPerEnv at zero.
const DefaultPodsPerEnv = 2

// DefaultDeployFailureMessage is the reason a failed deployment entry gives
// when its DeployFailure names none.
const DefaultDeployFailureMessage = "Connection refused"

// defaultEnvironments are used when Config.Environments is nil.
var defaultEnvironments = []string{"production", "staging"}

// DeployFailure makes the deploy to one environment, or one pod of it, fail
// for matching credentials. The password is still saved, as on Apinizer, and
// the answer is still 200.
type DeployFailure struct {
	// Project limits the failure to one project; empty matches any.
	Project string `json:"project,omitempty"`
	// Username limits the failure to one credential; empty matches any.
	Username string `json:"username,omitempty"`
	// Environment is the environment whose deploy fails; empty matches
	// every environment.
	Environment string `json:"environment"`
	// Pod limits the failure to one pod (see PodName); empty fails every
	// pod of the environment. In the ShapeEnvironments shape a failed pod
	// fails its whole environment entry.
	Pod string `json:"pod,omitempty"`
	// Message is the reason reported; empty means
	// DefaultDeployFailureMessage.
	Message string `json:"message,omitempty"`
}

// matches reports whether f applies to the credential's deploy to env, and
// to pod when pod is not empty (an environment entry fails when any of its
// pods does).
func (f DeployFailure) matches(project, username, env, pod string) bool {
	switch {
	case f.Project != "" && f.Project != project:
		return false
	case f.Username != "" && f.Username != username:
		return false
	case f.Environment != "" && f.Environment != env:
		return false
	case pod != "" && f.Pod != "" && f.Pod != pod:
		return false
	}
	return true
}

// Config is how the simulator answers. The zero value is usable: every field
// has a default, applied by New and SetConfig and visible in Server.Config.
//
// Latency is given in whole milliseconds (LatencyMS and JitterMS) rather than
// as a time.Duration, so that the JSON form used by the control API and by
// configuration files reads as plain numbers.
type Config struct {
	// Envelope is the answer style; empty means EnvelopeCurrent.
	Envelope Envelope `json:"envelope"`
	// Shape is the deploymentResult shape; empty means ShapeEnvironments,
	// in either envelope.
	Shape DeploymentShape `json:"shape"`
	// Environments are the gateway environments every change is deployed
	// to. Nil means ["production", "staging"]; an empty, non-nil list means
	// none, and every deployment then reports success false with no entries
	// (no gateway reachable).
	Environments []string `json:"environments"`
	// PodsPerEnv is how many pods each environment has in the ShapePods
	// shape; zero means DefaultPodsPerEnv.
	PodsPerEnv int `json:"podsPerEnv"`
	// DeployFailures script failed deployments; see DeployFailure.
	DeployFailures []DeployFailure `json:"deployFailures"`
	// OmitDeploymentResult answers a successful password change with 200
	// and no deploymentResult at all: the deploy outcome is unknown.
	OmitDeploymentResult bool `json:"omitDeploymentResult"`
	// LatencyMS delays every answer to a password change by this many
	// milliseconds, after the password is stored (the deploy is slow).
	LatencyMS int `json:"latencyMs"`
	// JitterMS adds a uniformly random 0..JitterMS milliseconds to
	// LatencyMS.
	JitterMS int `json:"jitterMs"`
	// GatewayLagMS is how many milliseconds after a password change the
	// gateway starts to accept the newly deployed password; until then each
	// pod keeps accepting the password it had (see the gateway endpoints).
	// Zero, the default, is left out of the JSON form.
	GatewayLagMS int `json:"gatewayLagMs,omitempty"`
	// Tokens are the Personal API Access Tokens accepted as
	// "Authorization: Bearer <token>". Nil means none: only tokens issued
	// by the token endpoint are accepted then.
	Tokens []string `json:"tokens"`
}

// Validate reports what is wrong with c, naming the field; it never repeats
// a token.
func (c Config) Validate() error {
	var errs []error
	switch c.Envelope {
	case "", EnvelopeSeed, EnvelopeCurrent:
	default:
		errs = append(errs, fmt.Errorf("envelope %q is not %q or %q",
			c.Envelope, EnvelopeSeed, EnvelopeCurrent))
	}
	switch c.Shape {
	case "", ShapeEnvironments, ShapePods:
	default:
		errs = append(errs, fmt.Errorf("shape %q is not %q or %q",
			c.Shape, ShapeEnvironments, ShapePods))
	}
	for i, env := range c.Environments {
		if env == "" {
			errs = append(errs, fmt.Errorf("environments[%d] is empty", i))
		}
	}
	if c.PodsPerEnv < 0 {
		errs = append(errs, errors.New("podsPerEnv is negative"))
	}
	if c.LatencyMS < 0 || c.JitterMS < 0 {
		errs = append(errs, errors.New("latencyMs and jitterMs must not be negative"))
	}
	if c.GatewayLagMS < 0 {
		errs = append(errs, errors.New("gatewayLagMs is negative"))
	}
	for i, tok := range c.Tokens {
		if tok == "" {
			errs = append(errs, fmt.Errorf("tokens[%d] is empty", i))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c with every default filled in; the copy
// shares no slice with c.
func (c Config) withDefaults() Config {
	if c.Envelope == "" {
		c.Envelope = EnvelopeCurrent
	}
	if c.Shape == "" {
		c.Shape = ShapeEnvironments
	}
	if c.Environments == nil {
		c.Environments = defaultEnvironments
	}
	if c.PodsPerEnv == 0 {
		c.PodsPerEnv = DefaultPodsPerEnv
	}
	c.Environments = append([]string{}, c.Environments...)
	c.DeployFailures = slices.Clone(c.DeployFailures)
	c.Tokens = slices.Clone(c.Tokens)
	return c
}

// PodName is the name the simulator gives pod n (from 0) of an environment,
// for DeployFailure.Pod and for the podName of detailList entries.
func PodName(environment string, n int) string {
	return fmt.Sprintf("%s-worker-%d", environment, n)
}
