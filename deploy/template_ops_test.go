package templatecheck

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apinizer-rotation/rotator/pkg/config"
)

// getAttRef names the resource and attribute of `!GetAtt Res.Attr`.
func getAttRef(v any) (id, attr string) {
	switch ref := dig(v, "Fn::GetAtt").(type) {
	case string:
		id, attr, _ = strings.Cut(ref, ".")
	case []any:
		if len(ref) == 2 {
			id, _ = ref[0].(string)
			attr, _ = ref[1].(string)
		}
	}
	return id, attr
}

// resourcesOfType lists the logical ids of one resource type, sorted.
func resourcesOfType(tmpl map[string]any, typ string) []string {
	resources, _ := dig(tmpl, "Resources").(map[string]any)
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		if dig(resources[id], "Type") == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

// findAlarm is the first alarm on namespace/metric whose dimension dim
// satisfies match.
func findAlarm(tmpl map[string]any, namespace, metric, dim string, match func(any) bool) (string, any) {
	for _, id := range resourcesOfType(tmpl, "AWS::CloudWatch::Alarm") {
		props := dig(tmpl, "Resources", id, "Properties")
		if dig(props, "Namespace") != namespace || dig(props, "MetricName") != metric {
			continue
		}
		dims, _ := dig(props, "Dimensions").([]any)
		for _, d := range dims {
			if dig(d, "Name") == dim && match(dig(d, "Value")) {
				return id, props
			}
		}
	}
	return "", nil
}

// findMathAlarm is the first alarm whose metric queries (Metrics) read
// namespace/metric with the Function dimension naming fn, returned by an
// expression that fills missing data with 0 when there is more than one.
func findMathAlarm(tmpl map[string]any, namespace, metric, fn string) (string, any) {
	for _, id := range resourcesOfType(tmpl, "AWS::CloudWatch::Alarm") {
		props := dig(tmpl, "Resources", id, "Properties")
		queries, _ := dig(props, "Metrics").([]any)
		for _, q := range queries {
			m := dig(q, "MetricStat", "Metric")
			if dig(m, "Namespace") != namespace || dig(m, "MetricName") != metric {
				continue
			}
			dims, _ := dig(m, "Dimensions").([]any)
			for _, d := range dims {
				if dig(d, "Name") == "Function" && dig(d, "Value", "Ref") == fn && returnsFilled(queries, dig(q, "Id")) {
					return id, props
				}
			}
		}
	}
	return "", nil
}

// returnsFilled says whether the query id is what the alarm watches: it
// returns data itself, or an expression that returns data reads it
// through FILL(id, 0), so that one quiet function does not blank the sum.
func returnsFilled(queries []any, id any) bool {
	for _, q := range queries {
		if dig(q, "ReturnData") != true {
			continue
		}
		expr, _ := dig(q, "Expression").(string)
		if dig(q, "Id") == id || strings.Contains(expr, fmt.Sprintf("FILL(%v, 0)", id)) {
			return true
		}
	}
	return false
}

// firesOnTheFirst says whether an alarm goes off at the first failure in
// any 5-minute period.
func firesOnTheFirst(props any) bool {
	threshold := dig(props, "Threshold")
	switch dig(props, "ComparisonOperator") {
	case "GreaterThanThreshold":
		return threshold == 0
	case "GreaterThanOrEqualToThreshold":
		return threshold == 1
	}
	return false
}

// checkAlarms returns what is missing from the alarms: the dead-letter
// queue not empty, errors of each function, Secrets Manager's RotationFailed
// events (a rule sending them to the alarm topic, and an alarm on its
// matches), each alarm going off at the first occurrence and notifying the
// topic the rule sends to.
func checkAlarms(tmpl map[string]any) []string {
	var problems []string

	id, dlq := findAlarm(tmpl, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
		func(v any) bool { q, attr := getAttRef(v); return q == "DeadLetterQueue" && attr == "QueueName" })
	switch {
	case id == "":
		problems = append(problems,
			"no alarm on messages in the dead-letter queue (ApproximateNumberOfMessagesVisible)")
	case !firesOnTheFirst(dlq):
		problems = append(problems, id+": does not go off at the first dead-letter message")
	case dig(dlq, "TreatMissingData") != "ignore":
		problems = append(problems,
			id+": TreatMissingData must be ignore: SQS stops the metric of an idle queue")
	}

	for _, fn := range functionIDs {
		id, props := findAlarm(tmpl, "AWS/Lambda", "Errors", "FunctionName",
			func(v any) bool { return dig(v, "Ref") == fn })
		if id == "" {
			problems = append(problems, "no alarm on the Errors of "+fn)
		} else if !firesOnTheFirst(props) {
			problems = append(problems, id+": does not go off at the first error of "+fn)
		}
	}

	for _, fn := range functionIDs {
		if id, props := findMathAlarm(tmpl, "ApinizerRotation", "TokenProblems", fn); id == "" {
			problems = append(problems, "no alarm on the TokenProblems of "+fn)
		} else if !firesOnTheFirst(props) {
			problems = append(problems, id+": does not go off at the first token problem of "+fn)
		}
	}

	var rule string
	var ruleTarget any
	for _, id := range resourcesOfType(tmpl, "AWS::Events::Rule") {
		pattern := dig(tmpl, "Resources", id, "Properties", "EventPattern")
		sources, _ := dig(pattern, "source").([]any)
		names, _ := dig(pattern, "detail", "eventName").([]any)
		if !slices.Contains(sources, any("aws.secretsmanager")) ||
			!slices.Contains(names, any("RotationFailed")) {
			continue
		}
		rule = id
		types, _ := dig(pattern, "detail-type").([]any)
		if !slices.Contains(types, any("AWS Service Event via CloudTrail")) {
			problems = append(problems,
				id+`: detail-type lacks "AWS Service Event via CloudTrail", how RotationFailed arrives`)
		}
		if targets, _ := dig(tmpl, "Resources", id, "Properties", "Targets").([]any); len(targets) == 0 {
			problems = append(problems, id+": no target: RotationFailed events reach no one")
		} else {
			ruleTarget = dig(targets[0], "Arn")
		}
	}
	if rule == "" {
		problems = append(problems, "no EventBridge rule on Secrets Manager's RotationFailed events")
	} else if id, props := findAlarm(tmpl, "AWS/Events", "TriggeredRules", "RuleName",
		func(v any) bool { return dig(v, "Ref") == rule }); id == "" {
		problems = append(problems, "no alarm on the matches of "+rule)
	} else if !firesOnTheFirst(props) {
		problems = append(problems, id+": does not go off at the first failed rotation")
	}

	for _, id := range resourcesOfType(tmpl, "AWS::CloudWatch::Alarm") {
		actions, _ := dig(tmpl, "Resources", id, "Properties", "AlarmActions").([]any)
		if len(actions) == 0 {
			problems = append(problems, id+": no AlarmActions")
		} else if ruleTarget != nil && !reflect.DeepEqual(actions[0], ruleTarget) {
			problems = append(problems, fmt.Sprintf("%s: notifies %v, the RotationFailed rule %v",
				id, actions[0], ruleTarget))
		}
	}

	// a topic this stack makes must let the rule publish to it
	for _, id := range resourcesOfType(tmpl, "AWS::SNS::TopicPolicy") {
		allowed := false
		for _, s := range statements(tmpl) {
			src, _ := getAttRef(dig(s.body, "Condition", "ArnEquals", "aws:SourceArn"))
			if s.resource == id && dig(s.body, "Principal", "Service") == "events.amazonaws.com" && src == rule {
				allowed = true
			}
		}
		if !allowed {
			problems = append(problems, fmt.Sprintf("%s: %s may not publish to the topic", id, rule))
		}
	}
	return problems
}

// isParamCondition says whether condition name is defined as want.
func isParamCondition(tmpl map[string]any, name any, want any) bool {
	n, _ := name.(string)
	return n != "" && reflect.DeepEqual(dig(tmpl, "Conditions", n), want)
}

func notEmpty(param string) any {
	equals := map[string]any{"Fn::Equals": []any{map[string]any{"Ref": param}, ""}}
	return map[string]any{"Fn::Not": []any{equals}}
}

var noValue = map[string]any{"Ref": "AWS::NoValue"}

// checkExample returns what is wrong with the optional example: it must be
// off by default, made only when asked for, name its secret under the
// prefix with the credential's keys, and rotate it with RotateFunction on
// AutomaticallyAfterDays or ScheduleExpression, never both, immediately or
// not as the parameter says.
func checkExample(tmpl map[string]any) []string {
	var problems []string
	if got := dig(tmpl, "Parameters", "CreateExampleSecret", "Default"); got != "false" {
		problems = append(problems,
			fmt.Sprintf("CreateExampleSecret: Default is %v, want false (off by default)", got))
	}
	asked := map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "CreateExampleSecret"}, "true"}}
	secrets := resourcesOfType(tmpl, "AWS::SecretsManager::Secret")
	schedules := resourcesOfType(tmpl, "AWS::SecretsManager::RotationSchedule")
	if len(secrets) == 0 || len(schedules) == 0 {
		return append(problems, "no example secret with a RotationSchedule")
	}
	for _, id := range append(slices.Clone(secrets), schedules...) {
		if !isParamCondition(tmpl, dig(tmpl, "Resources", id, "Condition"), asked) {
			problems = append(problems, id+": Condition is not CreateExampleSecret = true")
		}
	}
	for _, id := range secrets {
		props := dig(tmpl, "Resources", id, "Properties")
		name, _ := dig(props, "Name", "Fn::Sub").(string)
		if !strings.HasPrefix(name, "${CredentialSecretPrefix}") {
			problems = append(problems, id+": Name does not start with ${CredentialSecretPrefix}")
		}
		value := fmt.Sprint(dig(props, "GenerateSecretString", "SecretStringTemplate"),
			dig(props, "SecretString"))
		if !strings.Contains(value, `"projectName"`) || !strings.Contains(value, `"username"`) {
			problems = append(problems, id+": the value lacks projectName or username")
		}
	}
	for _, id := range schedules {
		props := dig(tmpl, "Resources", id, "Properties")
		if fn, _ := getAttRef(dig(props, "RotationLambdaARN")); fn != "RotateFunction" {
			problems = append(problems, id+": RotationLambdaARN is not RotateFunction's")
		}
		if dig(tmpl, "Resources", id, "DependsOn") != "RotateFunctionInvokePermission" {
			problems = append(problems, id+": does not wait for RotateFunctionInvokePermission")
		}
		param, _ := dig(props, "RotateImmediatelyOnUpdate", "Ref").(string)
		if dig(tmpl, "Parameters", param) == nil {
			problems = append(problems,
				id+": RotateImmediatelyOnUpdate is not the ExampleRotateImmediately parameter")
		}
		days := dig(props, "RotationRules", "AutomaticallyAfterDays")
		expr := dig(props, "RotationRules", "ScheduleExpression")
		if !exactlyOne(days, expr) {
			problems = append(problems,
				id+": RotationRules must take exactly one of AutomaticallyAfterDays and ScheduleExpression")
		}
	}
	return problems
}

// exactlyOne says whether one of a and b is set whatever the conditions:
// one alone, or both under !If on one condition, each AWS::NoValue where
// the other is not.
func exactlyOne(a, b any) bool {
	if a == nil || b == nil {
		return a != nil || b != nil
	}
	ia, _ := dig(a, "Fn::If").([]any)
	ib, _ := dig(b, "Fn::If").([]any)
	if len(ia) != 3 || len(ib) != 3 || ia[0] != ib[0] {
		return false
	}
	isNone := func(v any) bool { return reflect.DeepEqual(v, noValue) }
	return isNone(ia[1]) != isNone(ib[1]) && isNone(ia[2]) != isNone(ib[2]) &&
		isNone(ia[1]) != isNone(ia[2])
}

// loggingConfig is a function's LoggingConfig merged over the Globals one,
// as SAM merges them.
func loggingConfig(tmpl map[string]any, id string) map[string]any {
	merged := map[string]any{}
	for _, path := range [][]string{
		{"Globals", "Function", "LoggingConfig"},
		{"Resources", id, "Properties", "LoggingConfig"},
	} {
		m, _ := dig(tmpl, path...).(map[string]any)
		maps.Copy(merged, m)
	}
	return merged
}

// checkOptionalSettings returns what is wrong with the settings an operator
// may leave empty: the gateway variables, set only when given, under the
// names the Go code reads; the VPC, only when subnets are given; and JSON
// logs at the chosen level into the function's own log group.
func checkOptionalSettings(tmpl map[string]any) []string {
	var problems []string
	optional := []string{
		"GatewayUrl", "GatewayProbePath", "KmsKeyArn", "AlarmTopicArn", "SubnetIds", "SecurityGroupIds",
	}
	for _, param := range optional {
		if got := dig(tmpl, "Parameters", param, "Default"); got != "" {
			problems = append(problems, fmt.Sprintf("%s: Default is %v, want empty (optional)", param, got))
		}
	}
	inVpc := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{
		map[string]any{"Fn::Join": []any{"", map[string]any{"Ref": "SubnetIds"}}}, ""}}}}
	for _, id := range functionIDs {
		vars := dig(tmpl, "Resources", id, "Properties", "Environment", "Variables")
		gateway := map[string]string{
			config.EnvGatewayURL: "GatewayUrl", config.EnvGatewayProbePath: "GatewayProbePath",
		}
		for name, param := range gateway {
			args, _ := dig(vars, name, "Fn::If").([]any)
			if len(args) != 3 || !isParamCondition(tmpl, args[0], notEmpty(param)) ||
				!reflect.DeepEqual(args[1], map[string]any{"Ref": param}) || !reflect.DeepEqual(args[2], noValue) {
				problems = append(problems, fmt.Sprintf("%s: %s is not !If [<%s set>, !Ref %s, !Ref AWS::NoValue]",
					id, name, param, param))
			}
		}

		vpc, _ := dig(tmpl, "Resources", id, "Properties", "VpcConfig", "Fn::If").([]any)
		if len(vpc) != 3 || !isParamCondition(tmpl, vpc[0], inVpc) || !reflect.DeepEqual(vpc[2], noValue) ||
			!reflect.DeepEqual(dig(vpc[1], "SubnetIds"), map[string]any{"Ref": "SubnetIds"}) ||
			!reflect.DeepEqual(dig(vpc[1], "SecurityGroupIds"), map[string]any{"Ref": "SecurityGroupIds"}) {
			problems = append(problems, id+": VpcConfig is not set exactly when SubnetIds is")
		}

		logging := loggingConfig(tmpl, id)
		if logging["LogFormat"] != "JSON" {
			problems = append(problems,
				fmt.Sprintf("%s: LoggingConfig.LogFormat is %v, want JSON", id, logging["LogFormat"]))
		}
		if dig(logging["ApplicationLogLevel"], "Ref") != "LogLevel" {
			problems = append(problems, id+": LoggingConfig.ApplicationLogLevel is not the LogLevel parameter")
		}
		group, _ := dig(logging["LogGroup"], "Ref").(string)
		if dig(tmpl, "Resources", group, "Type") != "AWS::Logs::LogGroup" {
			problems = append(problems, id+": LoggingConfig.LogGroup is not a log group of this template")
		}
	}
	return problems
}

func TestTemplateAlarmsOnEveryFailure(t *testing.T) {
	if problems := checkAlarms(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

func TestTemplateExampleSecretIsOptionalAndRotatedOnOneRule(t *testing.T) {
	if problems := checkExample(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

func TestTemplateOptionalSettingsApplyOnlyWhenGiven(t *testing.T) {
	if problems := checkOptionalSettings(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

func TestTemplateChecksCatchEachMistake(t *testing.T) {
	const topic = "AlarmActions: [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]]\n"
	cases := []struct {
		name     string
		check    func(map[string]any) []string
		n        int // times old occurs; 0 for once
		old, new string
		want     string
	}{
		{
			name: "dead-letter alarm on the wrong metric", check: checkAlarms,
			old: "MetricName: ApproximateNumberOfMessagesVisible", new: "MetricName: NumberOfMessagesSent",
			want: "no alarm on messages in the dead-letter queue",
		},
		{
			name: "dead-letter alarm turning OK when SQS goes quiet", check: checkAlarms,
			old: "TreatMissingData: ignore", new: "TreatMissingData: notBreaching",
			want: "DeadLetterQueueAlarm: TreatMissingData must be ignore",
		},
		{
			name: "errors of the bulk function unwatched", check: checkAlarms,
			old:  "        - Name: FunctionName\n          Value: !Ref BulkFunction\n",
			new:  "        - Name: FunctionName\n          Value: !Ref RotateFunction\n",
			want: "no alarm on the Errors of BulkFunction",
		},
		{
			name: "the rule matching successes", check: checkAlarms,
			old: "eventName: [RotationFailed]", new: "eventName: [RotationSucceeded]",
			want: "no EventBridge rule on Secrets Manager's RotationFailed events",
		},
		{
			name: "the rule matching only API calls", check: checkAlarms,
			old:  "detail-type: [AWS Service Event via CloudTrail, AWS API Call via CloudTrail]",
			new:  "detail-type: [AWS API Call via CloudTrail]",
			want: `lacks "AWS Service Event via CloudTrail"`,
		},
		{
			name: "the rule sending nowhere", check: checkAlarms,
			old:  "      Targets:\n        - Id: AlarmTopic\n          Arn: !If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]\n",
			new:  "",
			want: "RotationFailedRule: no target",
		},
		{
			name: "no alarm on the rule's matches", check: checkAlarms,
			old: "MetricName: TriggeredRules", new: "MetricName: FailedInvocations",
			want: "no alarm on the matches of RotationFailedRule",
		},
		{
			name: "an alarm that tells no one", check: checkAlarms,
			old: "      TreatMissingData: ignore\n      " + topic, new: "      TreatMissingData: ignore\n",
			want: "DeadLetterQueueAlarm: no AlarmActions",
		},
		{
			name: "an alarm that waits for two errors", check: checkAlarms,
			old:  "          Value: !Ref BulkFunction\n      Statistic: Sum\n      Period: 300\n      EvaluationPeriods: 1\n      Threshold: 0\n",
			new:  "          Value: !Ref BulkFunction\n      Statistic: Sum\n      Period: 300\n      EvaluationPeriods: 1\n      Threshold: 1\n",
			want: "BulkFunctionErrorsAlarm: does not go off at the first error",
		},
		{
			name: "token problems of the bulk function unwatched", check: checkAlarms,
			old: "                  Value: !Ref BulkFunction\n", new: "                  Value: !Ref RotateFunction\n",
			want: "no alarm on the TokenProblems of BulkFunction",
		},
		{
			name: "a quiet rotation function blanking the token alarm", check: checkAlarms,
			old: "Expression: FILL(rotate, 0) + FILL(bulk, 0)", new: "Expression: rotate + bulk",
			want: "no alarm on the TokenProblems of RotateFunction",
		},
		{
			name: "a token alarm that waits for two", check: checkAlarms,
			old:  "          ReturnData: true\n      EvaluationPeriods: 1\n      Threshold: 0\n",
			new:  "          ReturnData: true\n      EvaluationPeriods: 1\n      Threshold: 1\n",
			want: "TokenProblemsAlarm: does not go off at the first token problem",
		},
		{
			name: "the topic refusing the rule", check: checkAlarms,
			old: "aws:SourceArn: !GetAtt RotationFailedRule.Arn", new: "aws:SourceArn: !GetAtt RotateFunction.Arn",
			want: "AlarmTopicPolicy: RotationFailedRule may not publish",
		},
		{
			name: "the example on by default", check: checkExample,
			old: "Default: 'false'", new: "Default: 'true'",
			want: "Default is true, want false",
		},
		{
			name: "the example schedule made whatever the parameter", check: checkExample,
			old: "    Condition: CreateExample\n    # Secrets Manager checks", new: "    # Secrets Manager checks",
			want: "ExampleRotationSchedule: Condition is not CreateExampleSecret = true",
		},
		{
			name: "both rotation rules at once", check: checkExample,
			old:  "AutomaticallyAfterDays: !If [ExampleUsesScheduleExpression, !Ref AWS::NoValue, !Ref ExampleRotationDays]",
			new:  "AutomaticallyAfterDays: !Ref ExampleRotationDays",
			want: "exactly one of AutomaticallyAfterDays and ScheduleExpression",
		},
		{
			name: "both rotation rules on the same branch", check: checkExample,
			old:  "ScheduleExpression: !If [ExampleUsesScheduleExpression, !Ref ExampleScheduleExpression, !Ref AWS::NoValue]",
			new:  "ScheduleExpression: !If [ExampleUsesScheduleExpression, !Ref AWS::NoValue, !Ref ExampleScheduleExpression]",
			want: "exactly one of AutomaticallyAfterDays and ScheduleExpression",
		},
		{
			name: "rotating immediately whatever the parameter", check: checkExample,
			old: "RotateImmediatelyOnUpdate: !Ref ExampleRotateImmediately", new: "RotateImmediatelyOnUpdate: true",
			want: "RotateImmediatelyOnUpdate is not the ExampleRotateImmediately parameter",
		},
		{
			name: "the example rotated by the bulk function", check: checkExample,
			old: "RotationLambdaARN: !GetAtt RotateFunction.Arn", new: "RotationLambdaARN: !GetAtt BulkFunction.Arn",
			want: "RotationLambdaARN is not RotateFunction's",
		},
		{
			name: "the example named outside the prefix", check: checkExample,
			old:  "Name: !Sub ${CredentialSecretPrefix}${ExampleProjectName}/${ExampleUsername}",
			new:  "Name: !Sub example/${ExampleUsername}",
			want: "ExampleCredentialSecret: Name does not start with ${CredentialSecretPrefix}",
		},
		{
			name: "the gateway URL set even when empty", check: checkOptionalSettings, n: 2,
			old:  "APINIZER_GATEWAY_URL: !If [HasGatewayUrl, !Ref GatewayUrl, !Ref AWS::NoValue]",
			new:  "APINIZER_GATEWAY_URL: !Ref GatewayUrl",
			want: "RotateFunction: APINIZER_GATEWAY_URL is not",
		},
		{
			name: "the probe path under the gateway URL's condition", check: checkOptionalSettings, n: 2,
			old:  "APINIZER_GATEWAY_PROBE_PATH: !If [HasGatewayProbePath,",
			new:  "APINIZER_GATEWAY_PROBE_PATH: !If [HasGatewayUrl,",
			want: "BulkFunction: APINIZER_GATEWAY_PROBE_PATH is not",
		},
		{
			name: "the gateway URL under another name", check: checkOptionalSettings, n: 2,
			old: "APINIZER_GATEWAY_URL:", new: "GATEWAY_URL:",
			want: "APINIZER_GATEWAY_URL is not",
		},
		{
			name: "the VPC on another condition", check: checkOptionalSettings, n: 2,
			old: "      VpcConfig: !If\n        - InVpc\n", new: "      VpcConfig: !If\n        - HasKmsKey\n",
			want: "VpcConfig is not set exactly when SubnetIds is",
		},
		{
			name: "text logs", check: checkOptionalSettings,
			old: "      LogFormat: JSON", new: "      LogFormat: Text",
			want: "LoggingConfig.LogFormat is Text, want JSON",
		},
		{
			name: "a required KMS key", check: checkOptionalSettings,
			old:  "    Default: ''\n    AllowedPattern: ^(arn:aws[a-z-]*:kms:",
			new:  "    AllowedPattern: ^(arn:aws[a-z-]*:kms:",
			want: "KmsKeyArn: Default is <nil>, want empty",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := strings.Join(tc.check(spoiledN(t, max(tc.n, 1), tc.old, tc.new)), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("expected a problem containing %q, got %q", tc.want, problems)
			}
		})
	}
}
