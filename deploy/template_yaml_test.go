package templatecheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/apinizer-rotation/rotator/pkg/config"
)

// functionIDs are the logical ids that sam build and the Makefile share.
var functionIDs = []string{"RotateFunction", "BulkFunction"}

// loadTemplate reads template.yaml into maps, slices and scalars.
func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	return parseTemplate(t, templateText(t))
}

// templateText is template.yaml as it is on disk.
func templateText(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// spoiled is template.yaml with old replaced by new: the purpose-made bad
// copy a check must refuse. old must occur exactly once, so that a change
// to the template cannot make the edit miss silently.
func spoiled(t *testing.T, old, new string) map[string]any {
	t.Helper()
	return spoiledN(t, 1, old, new)
}

// spoiledN is spoiled for an edit that old must match exactly n times.
func spoiledN(t *testing.T, n int, old, new string) map[string]any {
	t.Helper()
	text := templateText(t)
	if found := strings.Count(text, old); found != n {
		t.Fatalf("the bad copy's edit expects %q %d times in template.yaml, found it %d times", old, n, found)
	}
	return parseTemplate(t, strings.ReplaceAll(text, old, new))
}

// parseTemplate reads a template's text into maps, slices and scalars.
func parseTemplate(t *testing.T, text string) map[string]any {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	v, err := plain(&doc)
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatal("template.yaml is not a mapping")
	}
	return m
}

// plain turns a YAML node into Go values. CloudFormation's short tags become
// their long forms, as CloudFormation reads them: !Ref x is {"Ref": x},
// !GetAtt a.b is {"Fn::GetAtt": "a.b"}, !Sub s is {"Fn::Sub": s}.
func plain(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return plain(n.Content[0])
	case yaml.AliasNode:
		return plain(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := plain(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := plain(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if isShortTag(n.Tag) {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	if isShortTag(n.Tag) {
		name := strings.TrimPrefix(n.Tag, "!")
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		return map[string]any{name: v}, nil
	}
	return v, nil
}

func isShortTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

// dig follows keys through nested maps; nil when any is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// functionProperty is a function's property, or the Globals one it inherits.
func functionProperty(tmpl map[string]any, id, key string) any {
	if v := dig(tmpl, "Resources", id, "Properties", key); v != nil {
		return v
	}
	return dig(tmpl, "Globals", "Function", key)
}

// queueArnRef names the queue resource in `!GetAtt Queue.Arn`, or "".
func queueArnRef(v any) string {
	switch ref := dig(v, "Fn::GetAtt").(type) {
	case string:
		if id, ok := strings.CutSuffix(ref, ".Arn"); ok {
			return id
		}
	case []any:
		if len(ref) == 2 && ref[1] == "Arn" {
			id, _ := ref[0].(string)
			return id
		}
	}
	return ""
}

// numberBound is a literal number, or the bound ("MinValue" or "MaxValue")
// of the Number parameter that v refers to: the worst case a deployment can
// choose. ok is false for anything else.
func numberBound(tmpl map[string]any, v any, bound string) (n int, ok bool) {
	if n, ok := v.(int); ok {
		return n, true
	}
	name, _ := dig(v, "Ref").(string)
	param := dig(tmpl, "Parameters", name)
	if name == "" || dig(param, "Type") != "Number" {
		return 0, false
	}
	n, ok = dig(param, bound).(int)
	return n, ok
}

// checkSQSEvents returns what is wrong with every SQS event of every
// function: the queue's visibility timeout must be at least 6 x the
// function's timeout plus the largest batching window a deployment may set,
// the queue must redrive after 5 receives or more to a dead-letter queue
// that keeps messages 14 days (longer than the queue itself), failures must
// be reported per record, MaximumConcurrency must be set (2 to 1000), and a
// batch above 10 needs a batching window.
func checkSQSEvents(tmpl map[string]any) []string {
	var problems []string
	resources, _ := dig(tmpl, "Resources").(map[string]any)
	for id, res := range resources {
		if dig(res, "Type") != "AWS::Serverless::Function" {
			continue
		}
		events, _ := dig(res, "Properties", "Events").(map[string]any)
		for name, event := range events {
			if dig(event, "Type") != "SQS" {
				continue
			}
			where := id + " event " + name
			props := dig(event, "Properties")

			types, _ := dig(props, "FunctionResponseTypes").([]any)
			if !slices.Contains(types, any("ReportBatchItemFailures")) {
				problems = append(problems, where+": FunctionResponseTypes lacks ReportBatchItemFailures")
			}
			if v := dig(props, "ScalingConfig", "MaximumConcurrency"); v == nil {
				problems = append(problems, where+": ScalingConfig.MaximumConcurrency is not set")
			} else {
				lo, okLo := numberBound(tmpl, v, "MinValue")
				hi, okHi := numberBound(tmpl, v, "MaxValue")
				if !okLo || !okHi || lo < 2 || hi > 1000 {
					problems = append(problems, fmt.Sprintf(
						"%s: MaximumConcurrency may be outside 2 to 1000 (%v)", where, v))
				}
			}

			window := 0
			if w := dig(props, "MaximumBatchingWindowInSeconds"); w != nil {
				var ok bool
				if window, ok = numberBound(tmpl, w, "MaxValue"); !ok {
					problems = append(problems, where+
						": MaximumBatchingWindowInSeconds must be a literal or a Number parameter with MaxValue")
				}
			}
			if b := dig(props, "BatchSize"); b != nil {
				batch, ok := numberBound(tmpl, b, "MaxValue")
				minWindow, _ := numberBound(tmpl, dig(props, "MaximumBatchingWindowInSeconds"), "MinValue")
				if !ok {
					problems = append(problems,
						where+": BatchSize must be a literal or a Number parameter with MaxValue")
				} else if batch > 10 && minWindow < 1 {
					problems = append(problems, fmt.Sprintf(
						"%s: BatchSize %d needs a batching window of 1 s or more", where, batch))
				}
			}

			queueID := queueArnRef(dig(props, "Queue"))
			if queueID == "" {
				problems = append(problems, where+": Queue is not !GetAtt <queue in this template>.Arn")
				continue
			}
			timeout, ok := functionProperty(tmpl, id, "Timeout").(int)
			if !ok {
				problems = append(problems, id+": Timeout must be a literal number of seconds")
				continue
			}
			queue := dig(resources, queueID, "Properties")
			if visibility, ok := dig(queue, "VisibilityTimeout").(int); !ok {
				problems = append(problems, queueID+": VisibilityTimeout must be set as a literal")
			} else if want := 6*timeout + window; visibility < want {
				problems = append(problems, fmt.Sprintf(
					"%s: VisibilityTimeout %d s is below 6 x %s Timeout %d s + window %d s = %d s",
					queueID, visibility, id, timeout, window, want))
			}
			if n, ok := dig(queue, "RedrivePolicy", "maxReceiveCount").(int); !ok || n < 5 {
				problems = append(problems, fmt.Sprintf(
					"%s: RedrivePolicy maxReceiveCount is %v, want 5 or more", queueID, dig(queue, "RedrivePolicy", "maxReceiveCount")))
			}
			dlqID := queueArnRef(dig(queue, "RedrivePolicy", "deadLetterTargetArn"))
			if dlqID == "" {
				problems = append(problems, queueID+": RedrivePolicy has no deadLetterTargetArn in this template")
				continue
			}
			dlqRetention := dig(resources, dlqID, "Properties", "MessageRetentionPeriod")
			if dlqRetention != 1209600 {
				problems = append(problems, fmt.Sprintf(
					"%s: MessageRetentionPeriod is %v, want 1209600 (14 days)", dlqID, dlqRetention))
			}
			if r, ok := dig(queue, "MessageRetentionPeriod").(int); ok && r >= 1209600 {
				problems = append(problems, fmt.Sprintf(
					"%s: MessageRetentionPeriod %d s must stay below its dead-letter queue's", queueID, r))
			}
		}
	}
	return problems
}

// checkBuild returns where a function differs from what `sam build` and the
// Makefile agree on: built by `make build-<LogicalId>` into an arm64
// `bootstrap` for provided.al2023.
func checkBuild(tmpl map[string]any) []string {
	var problems []string
	for _, id := range functionIDs {
		if got := dig(tmpl, "Resources", id, "Type"); got != "AWS::Serverless::Function" {
			problems = append(problems, fmt.Sprintf("%s: Type is %v, want AWS::Serverless::Function", id, got))
			continue
		}
		if got := dig(tmpl, "Resources", id, "Metadata", "BuildMethod"); got != "makefile" {
			problems = append(problems, fmt.Sprintf("%s: Metadata.BuildMethod is %v, want makefile", id, got))
		}
		if got := functionProperty(tmpl, id, "Runtime"); got != "provided.al2023" {
			problems = append(problems, fmt.Sprintf("%s: Runtime is %v, want provided.al2023", id, got))
		}
		if got := functionProperty(tmpl, id, "Handler"); got != "bootstrap" {
			problems = append(problems, fmt.Sprintf("%s: Handler is %v, want bootstrap", id, got))
		}
		if got, _ := functionProperty(tmpl, id, "Architectures").([]any); !slices.Equal(got, []any{"arm64"}) {
			problems = append(problems, fmt.Sprintf(
				"%s: Architectures is %v, want [arm64] (the Makefile builds arm64)", id, got))
		}
	}
	return problems
}

// checkEnvironment returns the variables a function needs and does not get.
func checkEnvironment(tmpl map[string]any) []string {
	var problems []string
	names := []string{
		config.EnvBaseURL, config.EnvTokenSecretID, config.EnvDeadLetterQueueURL,
		config.EnvPasswordLength, config.EnvExcludeCharacters,
	}
	for _, id := range functionIDs {
		vars := map[string]any{}
		for _, path := range [][]string{
			{"Globals", "Function", "Environment", "Variables"},
			{"Resources", id, "Properties", "Environment", "Variables"},
		} {
			m, _ := dig(tmpl, path...).(map[string]any)
			for k, v := range m {
				vars[k] = v
			}
		}
		want := names
		if id == "BulkFunction" {
			want = append(slices.Clip(names), config.EnvBulkMaxConcurrency, config.EnvBulkPrepareAhead)
		}
		for _, name := range want {
			if _, ok := vars[name]; !ok {
				problems = append(problems, fmt.Sprintf("%s: environment variable %s is not set", id, name))
			}
		}

		// a parameter that allows what the function refuses would deploy,
		// then fail every invocation
		for name, limits := range config.WholeNumbers {
			param, _ := dig(vars[name], "Ref").(string)
			if param == "" {
				continue
			}
			lo, loOK := dig(tmpl, "Parameters", param, "MinValue").(int)
			hi, hiOK := dig(tmpl, "Parameters", param, "MaxValue").(int)
			if !loOK || !hiOK || lo < limits[0] || hi > limits[1] {
				problems = append(problems, fmt.Sprintf(
					"%s: parameter %s for %s must allow %d to %d at most (MinValue, MaxValue), has %v to %v",
					id, param, name, limits[0], limits[1], dig(tmpl, "Parameters", param, "MinValue"),
					dig(tmpl, "Parameters", param, "MaxValue")))
			}
		}
	}
	return problems
}

func TestTemplateFunctionsMatchTheMakefileBuild(t *testing.T) {
	if problems := checkBuild(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

func TestTemplateSetsEnvironmentOfBothFunctions(t *testing.T) {
	if problems := checkEnvironment(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

func TestCheckBuildAndEnvironmentCatchEachMistake(t *testing.T) {
	cases := []struct {
		name     string
		check    func(map[string]any) []string
		old, new string
		want     string
	}{
		{"x86_64 functions", checkBuild, "Architectures: [arm64]", "Architectures: [x86_64]",
			"RotateFunction: Architectures is [x86_64]"},
		{"the older OS-only runtime", checkBuild, "Runtime: provided.al2023", "Runtime: provided.al2",
			"BulkFunction: Runtime is provided.al2"},
		{"a handler sam build does not make", checkBuild, "Handler: bootstrap", "Handler: main",
			"Handler is main"},
		{"SAM's own Go builder", checkBuild,
			"      BuildMethod: makefile\n    Properties:\n      Description: >-\n        Bulk",
			"      BuildMethod: go1.x\n    Properties:\n      Description: >-\n        Bulk",
			"BulkFunction: Metadata.BuildMethod is go1.x"},
		{"no dead-letter queue URL for the bulk function", checkEnvironment,
			"          DEAD_LETTER_QUEUE_URL: !Ref DeadLetterQueue\n          PASSWORD_LENGTH: !Ref PasswordLength\n" +
				"          EXCLUDE_CHARACTERS: !Ref ExcludeCharacters\n          BULK_MAX_CONCURRENCY",
			"          PASSWORD_LENGTH: !Ref PasswordLength\n" +
				"          EXCLUDE_CHARACTERS: !Ref ExcludeCharacters\n          BULK_MAX_CONCURRENCY",
			"BulkFunction: environment variable DEAD_LETTER_QUEUE_URL is not set"},
		{"the bulk concurrency under another name", checkEnvironment,
			"BULK_MAX_CONCURRENCY:", "MAX_CONCURRENCY:",
			"BulkFunction: environment variable BULK_MAX_CONCURRENCY is not set"},
		{"no prepare-ahead for the bulk function", checkEnvironment,
			"          BULK_PREPARE_AHEAD: !Ref BulkPrepareAhead\n", "",
			"BulkFunction: environment variable BULK_PREPARE_AHEAD is not set"},
		{"a prepare-ahead parameter wider than the function takes", checkEnvironment,
			"    Default: 10\n    MinValue: 0\n    MaxValue: 100\n", "    Default: 10\n    MinValue: 0\n    MaxValue: 500\n",
			"parameter BulkPrepareAhead for BULK_PREPARE_AHEAD must allow 0 to 100"},
		{"a password length parameter below what the function takes", checkEnvironment,
			"    MinValue: 16\n", "    MinValue: 8\n",
			"parameter PasswordLength for PASSWORD_LENGTH must allow 16 to 4096"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := strings.Count(templateText(t), tc.old)
			problems := strings.Join(tc.check(spoiledN(t, max(n, 1), tc.old, tc.new)), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("expected a problem containing %q, got %q", tc.want, problems)
			}
		})
	}
}

func TestTemplateDeadLetterQueueKeepsMessagesFourteenDays(t *testing.T) {
	tmpl := loadTemplate(t)
	got := dig(tmpl, "Resources", "DeadLetterQueue", "Properties", "MessageRetentionPeriod")
	if got != 1209600 {
		t.Errorf("DeadLetterQueue MessageRetentionPeriod is %v, want 1209600", got)
	}
}

// S10: a queue visibility timeout shorter than the function needs fails the
// build.
func TestTemplateQueueSettingsFitTheBulkFunction(t *testing.T) {
	if problems := checkSQSEvents(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

func TestCheckSQSEventsCatchesEachMistake(t *testing.T) {
	cases := []struct {
		name     string
		old, new string
		want     string
	}{
		{
			name: "visibility timeout equal to the function timeout",
			old:  "VisibilityTimeout: 780", new: "VisibilityTimeout: 120",
			want: "VisibilityTimeout 120 s is below",
		},
		{
			name: "a longer batching window allowed without raising the visibility timeout",
			old:  "    MinValue: 0\n    MaxValue: 60\n", new: "    MinValue: 0\n    MaxValue: 300\n",
			want: "window 300 s",
		},
		{
			name: "a literal batching window past the one covered",
			old:  "MaximumBatchingWindowInSeconds: !Ref BulkBatchingWindowSeconds",
			new:  "MaximumBatchingWindowInSeconds: 61",
			want: "window 61 s",
		},
		{
			name: "function timeout raised alone",
			old:  "      Timeout: 120\n", new: "      Timeout: 300\n",
			want: "BulkFunction Timeout 300 s",
		},
		{
			name: "maxReceiveCount of 1",
			old:  "maxReceiveCount: 5", new: "maxReceiveCount: 1",
			want: "maxReceiveCount is 1",
		},
		{
			name: "no dead-letter target",
			old:  "        deadLetterTargetArn: !GetAtt DeadLetterQueue.Arn\n", new: "",
			want: "no deadLetterTargetArn",
		},
		{
			name: "dead-letter queue keeping messages 4 days",
			old:  "MessageRetentionPeriod: 1209600", new: "MessageRetentionPeriod: 345600",
			want: "want 1209600",
		},
		{
			name: "ReportBatchItemFailures misspelt",
			old:  "[ReportBatchItemFailures]", new: "[ReportBatchItemFailure]",
			want: "lacks ReportBatchItemFailures",
		},
		{
			name: "no MaximumConcurrency",
			old:  "            ScalingConfig:\n              MaximumConcurrency: !Ref BulkMaximumConcurrency\n",
			new:  "",
			want: "MaximumConcurrency is not set",
		},
		{
			name: "MaximumConcurrency allowed below 2",
			old:  "    MinValue: 2\n    MaxValue: 1000\n", new: "    MinValue: 1\n    MaxValue: 1000\n",
			want: "MaximumConcurrency may be outside 2 to 1000",
		},
		{
			name: "a batch above 10 without a batching window",
			old:  "BatchSize: !Ref BulkBatchSize", new: "BatchSize: 11",
			want: "BatchSize 11 needs a batching window",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := strings.Join(checkSQSEvents(spoiled(t, tc.old, tc.new)), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("expected a problem containing %q, got %q", tc.want, problems)
			}
		})
	}
}
