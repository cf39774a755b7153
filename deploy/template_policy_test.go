package templatecheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// wildcardActions may have Resource "*", because AWS takes nothing else for
// them: GetRandomPassword acts on no resource, and the EC2 Describe actions
// and the network-interface actions that Lambda checks on "*" when it puts a
// function in a VPC. The value is the condition a statement with them must
// sit under ("" for none).
var wildcardActions = map[string]string{
	"secretsmanager:GetRandomPassword": "",
	"ec2:CreateNetworkInterface":       "InVpc",
	"ec2:DescribeNetworkInterfaces":    "InVpc",
	"ec2:DescribeSubnets":              "InVpc",
	"ec2:DeleteNetworkInterface":       "InVpc",
	"ec2:AssignPrivateIpAddresses":     "InVpc",
	"ec2:UnassignPrivateIpAddresses":   "InVpc",
}

// statement is one policy statement and the conditions of the !If branches
// it sits in ("Cond" or "!Cond").
type statement struct {
	resource string // logical id of the resource that holds it
	body     map[string]any
	conds    []string
}

func (s statement) where() string {
	sid, _ := s.body["Sid"].(string)
	if sid == "" {
		sid = "a statement"
	}
	return s.resource + " " + sid
}

// statements finds every policy statement in the template's resources:
// identity policies, trust policies and resource policies alike.
func statements(tmpl map[string]any) []statement {
	var out []statement
	resources, _ := dig(tmpl, "Resources").(map[string]any)
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		var walk func(v any, conds []string, inStatement bool)
		walk = func(v any, conds []string, inStatement bool) {
			switch v := v.(type) {
			case map[string]any:
				if args, ok := v["Fn::If"].([]any); ok && len(args) == 3 {
					cond, _ := args[0].(string)
					walk(args[1], append(slices.Clip(conds), cond), inStatement)
					walk(args[2], append(slices.Clip(conds), "!"+cond), inStatement)
					return
				}
				if inStatement {
					if v["Ref"] != "AWS::NoValue" {
						out = append(out, statement{id, v, conds})
					}
					return
				}
				for k, x := range v {
					walk(x, conds, k == "Statement")
				}
			case []any:
				for _, x := range v {
					walk(x, conds, inStatement)
				}
			}
		}
		walk(resources[id], nil, false)
	}
	return out
}

// strs is a string or a list of strings as a list; other values as "?".
func strs(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				s = fmt.Sprint(x)
			}
			out = append(out, s)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// checkPolicies returns every statement that grants more than it names: a
// "*" resource for any action AWS scopes, a wildcard action, Not* elements,
// a "*" principal, KMS outside the KmsKeyArn condition; and every function
// or role through which SAM or a managed policy would add permissions this
// template does not show.
func checkPolicies(tmpl map[string]any) []string {
	var problems []string
	for _, s := range statements(tmpl) {
		for _, key := range []string{"NotAction", "NotResource", "NotPrincipal"} {
			if _, ok := s.body[key]; ok {
				problems = append(problems, fmt.Sprintf("%s: uses %s", s.where(), key))
			}
		}
		if p := s.body["Principal"]; p == "*" || dig(p, "AWS") == "*" {
			problems = append(problems, fmt.Sprintf("%s: Principal \"*\"", s.where()))
		}
		actions := strs(s.body["Action"])
		for _, a := range actions {
			if strings.Contains(a, "*") {
				problems = append(problems, fmt.Sprintf("%s: wildcard action %s", s.where(), a))
			}
			if strings.HasPrefix(a, "kms:") && !slices.Contains(s.conds, "HasKmsKey") {
				problems = append(problems, fmt.Sprintf("%s: %s outside HasKmsKey", s.where(), a))
			}
			if cond := wildcardActions[a]; cond != "" && !slices.Contains(s.conds, cond) {
				problems = append(problems, fmt.Sprintf("%s: %s outside %s", s.where(), a, cond))
			}
		}
		if _, ok := s.body["Resource"]; !ok && s.body["Principal"] == nil {
			problems = append(problems, fmt.Sprintf("%s: no Resource", s.where()))
		}
		if slices.Contains(strs(s.body["Resource"]), "*") {
			for _, a := range actions {
				if _, ok := wildcardActions[a]; !ok {
					problems = append(problems, fmt.Sprintf("%s: Resource \"*\" for %s", s.where(), a))
				}
			}
		}
	}

	resources, _ := dig(tmpl, "Resources").(map[string]any)
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		res := resources[id]
		switch dig(res, "Type") {
		case "AWS::Serverless::Function":
			if dig(res, "Properties", "Policies") != nil {
				problems = append(problems, id+": Policies (SAM would add a role with managed policies; set Role)")
			}
			role := queueArnRef(dig(res, "Properties", "Role"))
			if dig(resources, role, "Type") != "AWS::IAM::Role" {
				problems = append(problems, id+": Role is not !GetAtt <role in this template>.Arn")
			}
		case "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group":
			if dig(res, "Properties", "ManagedPolicyArns") != nil {
				problems = append(problems, id+": ManagedPolicyArns (permissions this template does not show)")
			}
		}
	}
	return problems
}

// permissions is what each function's role may do, and nothing more; the
// KMS and EC2 actions only in their conditions (checked by checkPolicies).
var permissions = map[string][]string{
	"RotateFunctionRole": {
		"logs:CreateLogStream", "logs:PutLogEvents",
		"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
		"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
		"secretsmanager:GetRandomPassword", "sqs:SendMessage",
		"kms:Decrypt", "kms:GenerateDataKey",
		"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
		"ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
	},
	"BulkFunctionRole": {
		"logs:CreateLogStream", "logs:PutLogEvents",
		"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
		"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
		"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
		"secretsmanager:GetRandomPassword", "sqs:SendMessage",
		"kms:Decrypt", "kms:GenerateDataKey",
		"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
		"ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
	},
}

const (
	bulkSecrets     = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${CredentialSecretPrefix}*"
	rotationLambda  = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-rotate"
	allowRotationBy = "secretsmanager:resource/AllowRotationLambdaArn"
)

// checkPermissions returns what the two roles may do beyond their job: an
// action not listed in permissions, a secret written outside the scope of
// SAM's rotation policy template (rotation) or outside the prefix (bulk),
// the token secret written, SQS actions on another queue.
func checkPermissions(tmpl map[string]any) []string {
	var problems []string
	granted := map[string]map[string]bool{}
	for _, s := range statements(tmpl) {
		if _, ok := permissions[s.resource]; !ok || s.body["Principal"] != nil {
			continue
		}
		if granted[s.resource] == nil {
			granted[s.resource] = map[string]bool{}
		}
		resource := s.body["Resource"]
		for _, a := range strs(s.body["Action"]) {
			granted[s.resource][a] = true
			switch a {
			case "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage":
				if dig(resource, "Ref") == "ApinizerTokenSecretArn" {
					problems = append(problems, fmt.Sprintf("%s: writes the token secret (%s)", s.where(), a))
				} else if s.resource == "BulkFunctionRole" && dig(resource, "Fn::Sub") != bulkSecrets {
					problems = append(problems, fmt.Sprintf(
						"%s: %s on %v, want only the secrets under CredentialSecretPrefix", s.where(), a, resource))
				} else if s.resource == "RotateFunctionRole" &&
					dig(s.body, "Condition", "StringEquals", allowRotationBy, "Fn::Sub") != rotationLambda {
					problems = append(problems, fmt.Sprintf(
						"%s: %s without the %s condition naming this function", s.where(), a, allowRotationBy))
				}
			case "sqs:SendMessage":
				if queueArnRef(resource) != "DeadLetterQueue" {
					problems = append(problems,
						fmt.Sprintf("%s: %s on %v, want DeadLetterQueue", s.where(), a, resource))
				}
			case "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes":
				if queueArnRef(resource) != "BulkJobQueue" {
					problems = append(problems, fmt.Sprintf("%s: %s on %v, want BulkJobQueue", s.where(), a, resource))
				}
			}
		}
	}
	for _, role := range slices.Sorted(maps.Keys(permissions)) {
		want := permissions[role]
		for _, a := range slices.Sorted(maps.Keys(granted[role])) {
			if !slices.Contains(want, a) {
				problems = append(problems, fmt.Sprintf("%s may also %s", role, a))
			}
		}
		for _, a := range want {
			if !granted[role][a] {
				problems = append(problems, fmt.Sprintf("%s lacks %s", role, a))
			}
		}
	}
	got := dig(tmpl, "Resources", "RotateFunction", "Properties", "FunctionName", "Fn::Sub")
	if got != "${AWS::StackName}-rotate" {
		problems = append(problems, fmt.Sprintf("RotateFunction: FunctionName is %v, "+
			"but RotateFunctionRole's condition names ${AWS::StackName}-rotate", got))
	}
	return problems
}

func TestTemplateGrantsNoWildcardResourceAWSDoesNotRequire(t *testing.T) {
	if problems := checkPolicies(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

func TestTemplateGrantsEachFunctionItsJobAndNothingMore(t *testing.T) {
	if problems := checkPermissions(loadTemplate(t)); len(problems) > 0 {
		t.Errorf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
}

// insertedStatement is a statement slipped into BulkFunctionRole, before
// ReceiveJobs.
func insertedStatement(body string) (old, new string) {
	const anchor = "              - Sid: ReceiveJobs\n"
	return anchor, "              - Sid: Inserted\n                Effect: Allow\n" + body + anchor
}

func TestCheckPoliciesCatchesEachMistake(t *testing.T) {
	type edit struct{ old, new string }
	insert := func(body string) edit {
		old, new := insertedStatement(body)
		return edit{old, new}
	}
	cases := []struct {
		name string
		edit edit
		want string
	}{
		{
			name: "logs on every log group",
			edit: edit{"Resource: !GetAtt RotateFunctionLogGroup.Arn", "Resource: '*'"},
			want: `RotateFunctionRole WriteLogs: Resource "*" for logs:PutLogEvents`,
		},
		{
			name: "bulk rotation of every secret",
			edit: edit{"Resource: !Sub " + bulkSecrets, "Resource: '*'"},
			want: `BulkFunctionRole RotateCredentialSecrets: Resource "*" for secretsmanager:PutSecretValue`,
		},
		{
			name: "every SQS action",
			edit: edit{"Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes]", "Action: 'sqs:*'"},
			want: "wildcard action sqs:*",
		},
		{
			name: "KMS without a key given",
			edit: insert("                Action: kms:Decrypt\n                Resource: !Ref KmsKeyArn\n"),
			want: "BulkFunctionRole Inserted: kms:Decrypt outside HasKmsKey",
		},
		{
			name: "network interfaces outside a VPC",
			edit: insert("                Action: ec2:CreateNetworkInterface\n                Resource: '*'\n"),
			want: "ec2:CreateNetworkInterface outside InVpc",
		},
		{
			name: "NotResource",
			edit: insert("                Action: sqs:SendMessage\n                NotResource: !GetAtt BulkJobQueue.Arn\n"),
			want: "uses NotResource",
		},
		{
			name: "anyone may publish to the alarm topic",
			edit: edit{"Principal: {Service: events.amazonaws.com}", "Principal: '*'"},
			want: `AlarmTopicPolicy RotationFailedEvents: Principal "*"`,
		},
		{
			name: "SAM policies on a function",
			edit: edit{"      Role: !GetAtt BulkFunctionRole.Arn\n",
				"      Role: !GetAtt BulkFunctionRole.Arn\n      Policies: [AWSLambdaBasicExecutionRole]\n"},
			want: "BulkFunction: Policies",
		},
		{
			name: "a managed policy on a role",
			edit: edit{"      Description: Bulk rotation function for Apinizer credential secrets.\n",
				"      Description: Bulk rotation function for Apinizer credential secrets.\n" +
					"      ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]\n"},
			want: "BulkFunctionRole: ManagedPolicyArns",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := strings.Join(checkPolicies(spoiled(t, tc.edit.old, tc.edit.new)), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("expected a problem containing %q, got %q", tc.want, problems)
			}
		})
	}
}

func TestCheckPermissionsCatchesEachMistake(t *testing.T) {
	type edit struct{ old, new string }
	insert := func(body string) edit {
		old, new := insertedStatement(body)
		return edit{old, new}
	}
	cases := []struct {
		name string
		edit edit
		n    int // times edit.old occurs; 0 for once
		want string
	}{
		{
			name: "the bulk function may delete secrets",
			edit: edit{"                  - secretsmanager:UpdateSecretVersionStage\n                Resource: !Sub " + bulkSecrets,
				"                  - secretsmanager:UpdateSecretVersionStage\n                  - secretsmanager:DeleteSecret\n" +
					"                Resource: !Sub " + bulkSecrets},
			want: "BulkFunctionRole may also secretsmanager:DeleteSecret",
		},
		{
			name: "the bulk function may write the token secret",
			edit: insert("                Action: secretsmanager:PutSecretValue\n                Resource: !Ref ApinizerTokenSecretArn\n"),
			want: "BulkFunctionRole Inserted: writes the token secret",
		},
		{
			name: "the bulk function may rotate secrets outside the prefix",
			edit: insert("                Action: secretsmanager:UpdateSecretVersionStage\n" +
				"                Resource: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*\n"),
			want: "want only the secrets under CredentialSecretPrefix",
		},
		{
			name: "the rotation function may rotate secrets of any rotation function",
			edit: edit{"secretsmanager:resource/AllowRotationLambdaArn", "secretsmanager:resource/AllowRotationLambda"},
			want: "RotateFunctionRole RotateSecretsOfThisFunction: secretsmanager:PutSecretValue without the",
		},
		{
			name: "the function renamed away from its role's condition",
			edit: edit{"FunctionName: !Sub ${AWS::StackName}-rotate", "FunctionName: !Sub ${AWS::StackName}-rotation"},
			want: "RotateFunction: FunctionName is ${AWS::StackName}-rotation",
		},
		{
			name: "the bulk function may send to its own job queue",
			edit: insert("                Action: sqs:SendMessage\n                Resource: !GetAtt BulkJobQueue.Arn\n"),
			want: "BulkFunctionRole Inserted: sqs:SendMessage on",
		},
		{
			name: "generating passwords swapped for listing secrets",
			edit: edit{"Action: secretsmanager:GetRandomPassword", "Action: secretsmanager:ListSecrets"},
			n:    2,
			want: "RotateFunctionRole may also secretsmanager:ListSecrets",
		},
		{
			name: "generating passwords swapped for listing secrets, seen as missing",
			edit: edit{"Action: secretsmanager:GetRandomPassword", "Action: secretsmanager:ListSecrets"},
			n:    2,
			want: "BulkFunctionRole lacks secretsmanager:GetRandomPassword",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := strings.Join(checkPermissions(spoiledN(t, max(tc.n, 1), tc.edit.old, tc.edit.new)), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("expected a problem containing %q, got %q", tc.want, problems)
			}
		})
	}
}
