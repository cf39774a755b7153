package templatecheck

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/apinizer-rotation/rotator/pkg/config"
)

// maxRpsValues are edge values of APINIZER_MAX_RPS. The template's
// parameter must allow those marked allow, and nothing the functions
// refuse; it may refuse the odd spellings the functions take.
var maxRpsValues = []struct {
	v     string
	allow bool // the functions take it and the template must too
}{
	{"", true}, {"10", true}, {"1", true}, {"2.5", true}, {"0.5", true}, {"0.001", true},
	{"0.01", true}, {"0.125", true}, {"999.999", true}, {"1000", true}, {"1000.0", true},
	{"1000.000", true},
	// refused by the functions
	{"0", false}, {"00", false}, {"0.0", false}, {"0.000", false}, {"-1", false},
	{"1000.001", false}, {"1001", false}, {"5000", false}, {"1e4", false}, {"fast", false},
	{"NaN", false}, {"Inf", false}, {"1,5", false}, {"0." + strings.Repeat("0", 400) + "1", false},
	// taken by the functions, refused by the template as odd or too fine
	{"1e2", false}, {".5", false}, {"5.", false}, {"+5", false}, {"010", false},
	{"0.0001", false}, {"2.5000", false},
}

// checkMaxRps returns what is wrong with the parameter each function's
// APINIZER_MAX_RPS comes from: its AllowedPattern (matched whole, as
// CloudFormation does) or its Default lets through a value config.Load
// refuses, which would deploy and then fail every invocation, or the
// pattern refuses a rate the functions take that maxRpsValues says to allow.
func checkMaxRps(tmpl map[string]any) []string {
	var problems []string
	checked := map[string]bool{}
	for _, id := range functionIDs {
		vars := dig(tmpl, "Resources", id, "Properties", "Environment", "Variables")
		args, _ := dig(vars, config.EnvMaxRPS, "Fn::If").([]any)
		param := ""
		if len(args) == 3 {
			param, _ = dig(args[1], "Ref").(string)
		}
		if param == "" || dig(tmpl, "Parameters", param) == nil {
			problems = append(problems, fmt.Sprintf("%s: %s is not !If [<set>, !Ref <parameter>, ...]",
				id, config.EnvMaxRPS))
			continue
		}
		if checked[param] {
			continue
		}
		checked[param] = true

		pattern, _ := dig(tmpl, "Parameters", param, "AllowedPattern").(string)
		re, err := regexp.Compile(`^(?:` + pattern + `)$`)
		if pattern == "" || err != nil {
			problems = append(problems, fmt.Sprintf("parameter %s: no usable AllowedPattern (%v)", param, err))
			continue
		}
		def, _ := dig(tmpl, "Parameters", param, "Default").(string)
		if !re.MatchString(def) {
			problems = append(problems, fmt.Sprintf("parameter %s: its pattern refuses its Default %q", param, def))
		}
		if err := loadMaxRps(def); err != nil {
			problems = append(problems, fmt.Sprintf("parameter %s: Default %q is refused by the functions: %v",
				param, def, err))
		}
		for _, tc := range maxRpsValues {
			allowed, err := re.MatchString(tc.v), loadMaxRps(tc.v)
			switch {
			case allowed && err != nil:
				problems = append(problems, fmt.Sprintf("parameter %s allows %.40q, which the functions refuse: %v",
					param, tc.v, err))
			case tc.allow && !allowed:
				problems = append(problems, fmt.Sprintf("parameter %s refuses %q, which the functions take",
					param, tc.v))
			}
		}
	}
	return problems
}

// loadMaxRps is config.Load's verdict on a deployment that sets
// APINIZER_MAX_RPS to v; the template leaves it unset when v is empty.
func loadMaxRps(v string) error {
	env := map[string]string{
		config.EnvBaseURL:            "https://apinizer.example.com",
		config.EnvTokenSecretID:      "apinizer/token",
		config.EnvDeadLetterQueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
	}
	if v != "" {
		env[config.EnvMaxRPS] = v
	}
	_, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return err
}

func TestTemplateMaxRpsAllowsOnlyWhatTheFunctionsTake(t *testing.T) {
	if problems := checkMaxRps(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

// TestMaxRpsEdgeValuesAreWhatTheyClaim keeps maxRpsValues honest: a value
// marked allow is one the functions take.
func TestMaxRpsEdgeValuesAreWhatTheyClaim(t *testing.T) {
	for _, tc := range maxRpsValues {
		if err := loadMaxRps(tc.v); tc.allow && err != nil {
			t.Errorf("%q is marked allowed, but the functions refuse it: %v", tc.v, err)
		}
	}
	for _, v := range []string{"0", "5000"} {
		if loadMaxRps(v) == nil {
			t.Errorf("the functions take %q; the edge values assume they refuse it", v)
		}
	}
}

func TestCheckMaxRpsCatchesEachMistake(t *testing.T) {
	const pattern = `    AllowedPattern: ^(1000(\.0{1,3})?|[1-9][0-9]{0,2}(\.[0-9]{1,3})?|0\.([1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))?$` + "\n"
	cases := []struct {
		name     string
		n        int // times old occurs; 0 for once
		old, new string
		want     string
	}{
		{"any number, as before", 0, pattern, `    AllowedPattern: ^([0-9]+(\.[0-9]+)?)?$` + "\n",
			`parameter ApinizerMaxRps allows "0", which the functions refuse`},
		{"more than 1000", 0, pattern, `    AllowedPattern: ^([1-9][0-9]{0,3}(\.[0-9]{1,3})?)?$` + "\n",
			`parameter ApinizerMaxRps allows "5000", which the functions refuse`},
		{"no way to leave it empty", 0, pattern, `    AllowedPattern: ^[1-9][0-9]{0,2}(\.[0-9]{1,3})?$` + "\n",
			`parameter ApinizerMaxRps refuses ""`},
		{"whole numbers only", 0, pattern, `    AllowedPattern: ^([1-9][0-9]{0,2}|1000)?$` + "\n",
			`parameter ApinizerMaxRps refuses "2.5"`},
		{"a Default the functions refuse", 0, "    Default: '10'\n    # only", "    Default: '0'\n    # only",
			`parameter ApinizerMaxRps: Default "0" is refused by the functions`},
		{"a literal rate, checked by nothing", 2, "[HasMaxRps, !Ref ApinizerMaxRps,", "[HasMaxRps, '5000',",
			"RotateFunction: APINIZER_MAX_RPS is not !If"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := strings.Join(checkMaxRps(spoiledN(t, max(tc.n, 1), tc.old, tc.new)), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("expected a problem containing %q, got %q", tc.want, problems)
			}
		})
	}
}
