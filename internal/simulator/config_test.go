package simulator

import (
	"strings"
	"testing"
)

func TestConfigDefaults(t *testing.T) {
	got := New(Config{}).Config()
	want := Config{Envelope: EnvelopeCurrent, Shape: ShapeEnvironments,
		Environments: []string{"production", "staging"}, PodsPerEnv: DefaultPodsPerEnv}
	if !equalConfig(got, want) {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}

	// an empty, non-nil environment list stays empty
	if envs := New(Config{Environments: []string{}}).Config().Environments; envs == nil ||
		len(envs) != 0 {
		t.Errorf("environments = %#v, want an empty list", envs)
	}
}

func TestConfigIsCopied(t *testing.T) {
	envs := []string{"prod"}
	s := New(Config{Environments: envs})
	envs[0] = "changed"
	got := s.Config()
	got.Environments[0] = "changed too"
	if s.Config().Environments[0] != "prod" {
		t.Error("the server shares its environment list with callers")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"the zero config is valid", Config{}, ""},
		{"everything set is valid", Config{Envelope: EnvelopeSeed, Shape: ShapePods,
			Environments: []string{"a"}, PodsPerEnv: 3, LatencyMS: 1, JitterMS: 1,
			Tokens: []string{"t"}}, ""},
		{"an unknown envelope", Config{Envelope: "v2"}, `envelope "v2"`},
		{"an unknown shape", Config{Shape: "pods"}, `shape "pods"`},
		{"an empty environment name", Config{Environments: []string{""}}, "environments[0]"},
		{"negative pods", Config{PodsPerEnv: -1}, "podsPerEnv"},
		{"negative jitter", Config{JitterMS: -1}, "jitterMs"},
		{"an empty token", Config{Tokens: []string{"ok", ""}}, "tokens[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestInvalidConfigs(t *testing.T) {
	if _, err := Start(Config{Envelope: "v2"}); err == nil {
		t.Error("Start accepted an invalid config")
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted an invalid config")
		}
	}()
	New(Config{Shape: "pods"})
}

func TestSetCredentialDoesNotCountAsAChange(t *testing.T) {
	s := New(Config{})
	s.SetCredential("p", "u", "one")
	s.SetCredential("p", "u", "two")
	if pw, ok := s.Password("p", "u"); !ok || pw != "two" {
		t.Errorf("Password = %q, %v, want two", pw, ok)
	}
	if n := s.PasswordChanges("p", "u"); n != 0 {
		t.Errorf("PasswordChanges = %d, want 0", n)
	}
	if _, ok := s.Password("p", "nobody"); ok {
		t.Error("an unknown credential exists")
	}
}
