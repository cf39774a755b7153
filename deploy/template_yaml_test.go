package templatecheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// functionIDs are the logical ids that sam build and the Makefile share.
var functionIDs = []string{"RotateFunction", "BulkFunction"}

// loadTemplate reads template.yaml into maps, slices and scalars.
func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
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

// checkSQSEvents returns what is wrong with every SQS event of every
// function: the queue's visibility timeout must be at least 6 x the
// function's timeout plus the batching window, the queue must redrive to a
// dead-letter queue after 5 receives or more, and failures must be reported
// per record.
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
			window := 0
			if w := dig(props, "MaximumBatchingWindowInSeconds"); w != nil {
				if window, ok = w.(int); !ok {
					problems = append(problems, where+": MaximumBatchingWindowInSeconds must be a literal")
				}
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
			if queueArnRef(dig(queue, "RedrivePolicy", "deadLetterTargetArn")) == "" {
				problems = append(problems, queueID+": RedrivePolicy has no deadLetterTargetArn in this template")
			}
		}
	}
	return problems
}

func TestTemplateFunctionsMatchTheMakefileBuild(t *testing.T) {
	tmpl := loadTemplate(t)
	for _, id := range functionIDs {
		if got := dig(tmpl, "Resources", id, "Type"); got != "AWS::Serverless::Function" {
			t.Errorf("%s: Type is %v, want AWS::Serverless::Function", id, got)
			continue
		}
		if got := dig(tmpl, "Resources", id, "Metadata", "BuildMethod"); got != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod is %v, want makefile", id, got)
		}
		if got := functionProperty(tmpl, id, "Runtime"); got != "provided.al2023" {
			t.Errorf("%s: Runtime is %v, want provided.al2023", id, got)
		}
		if got := functionProperty(tmpl, id, "Handler"); got != "bootstrap" {
			t.Errorf("%s: Handler is %v, want bootstrap", id, got)
		}
		if got, _ := functionProperty(tmpl, id, "Architectures").([]any); !slices.Equal(got, []any{"arm64"}) {
			t.Errorf("%s: Architectures is %v, want [arm64] (the Makefile builds arm64)", id, got)
		}
	}
}

func TestTemplateSetsEnvironmentOfBothFunctions(t *testing.T) {
	tmpl := loadTemplate(t)
	names := []string{
		"APINIZER_BASE_URL", "APINIZER_TOKEN_SECRET_ID", "DEAD_LETTER_QUEUE_URL",
		"PASSWORD_LENGTH", "EXCLUDE_CHARACTERS",
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
		for _, name := range names {
			if _, ok := vars[name]; !ok {
				t.Errorf("%s: environment variable %s is not set", id, name)
			}
		}
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
		name  string
		spoil func(tmpl map[string]any)
		want  string
	}{
		{
			name: "visibility timeout equal to the function timeout",
			spoil: func(tmpl map[string]any) {
				dig(tmpl, "Resources", "BulkJobQueue", "Properties").(map[string]any)["VisibilityTimeout"] = 120
			},
			want: "VisibilityTimeout 120 s is below",
		},
		{
			name: "batching window added without raising the visibility timeout",
			spoil: func(tmpl map[string]any) {
				dig(tmpl, "Resources", "BulkFunction", "Properties", "Events", "BulkJobs",
					"Properties").(map[string]any)["MaximumBatchingWindowInSeconds"] = 5
			},
			want: "window 5 s",
		},
		{
			name: "function timeout raised alone",
			spoil: func(tmpl map[string]any) {
				dig(tmpl, "Resources", "BulkFunction", "Properties").(map[string]any)["Timeout"] = 300
			},
			want: "BulkFunction Timeout 300 s",
		},
		{
			name: "maxReceiveCount of 1",
			spoil: func(tmpl map[string]any) {
				dig(tmpl, "Resources", "BulkJobQueue", "Properties", "RedrivePolicy").(map[string]any)["maxReceiveCount"] = 1
			},
			want: "maxReceiveCount is 1",
		},
		{
			name: "ReportBatchItemFailures misspelt",
			spoil: func(tmpl map[string]any) {
				dig(tmpl, "Resources", "BulkFunction", "Properties", "Events", "BulkJobs",
					"Properties").(map[string]any)["FunctionResponseTypes"] = []any{"ReportBatchItemFailure"}
			},
			want: "lacks ReportBatchItemFailures",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := loadTemplate(t)
			tc.spoil(tmpl)
			problems := strings.Join(checkSQSEvents(tmpl), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("expected a problem containing %q, got %q", tc.want, problems)
			}
		})
	}
}
