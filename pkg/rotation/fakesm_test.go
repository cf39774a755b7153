package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// fakeSM is an in-memory Secrets Manager for one secret with AWS's rules,
// including the ones moto does not enforce: a PutSecretValue that reuses a
// version id with a different value is refused. It counts calls.
type fakeSM struct {
	mu      sync.Mutex
	enabled bool
	values  map[string]*string  // version id -> value (nil: placeholder)
	stages  map[string][]string // version id -> labels
	calls   map[string]int
	fail    map[string]error // operation -> error to return
	puts    []*secretsmanager.PutSecretValueInput
	gets    []*secretsmanager.GetSecretValueInput
	updates []*secretsmanager.UpdateSecretVersionStageInput
	passSeq int
}

func newFakeSM(current string) *fakeSM {
	f := &fakeSM{enabled: true, values: map[string]*string{}, stages: map[string][]string{},
		calls: map[string]int{}, fail: map[string]error{}}
	if current != "" {
		f.values["v-current"] = aws.String(current)
		f.stages["v-current"] = []string{stageCurrent}
	}
	return f
}

// startRotation does what Secrets Manager does before createSecret: a
// version labelled AWSPENDING with no value.
func (f *fakeSM) startRotation(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeLabel(stagePending)
	f.values[token] = nil
	f.stages[token] = []string{stagePending}
}

func (f *fakeSM) removeLabel(label string) {
	for id, ls := range f.stages {
		f.stages[id] = slices.DeleteFunc(ls, func(s string) bool { return s == label })
	}
}

func (f *fakeSM) holder(label string) string {
	for id, ls := range f.stages {
		if slices.Contains(ls, label) {
			return id
		}
	}
	return ""
}

func (f *fakeSM) count(op string) error {
	f.calls[op]++
	return f.fail[op]
}

func notFound(msg string) error { return &types.ResourceNotFoundException{Message: aws.String(msg)} }

func (f *fakeSM) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.count("DescribeSecret"); err != nil {
		return nil, err
	}
	out := &secretsmanager.DescribeSecretOutput{Name: in.SecretId, VersionIdsToStages: map[string][]string{},
		ARN:             aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:" + aws.ToString(in.SecretId)),
		RotationEnabled: aws.Bool(f.enabled)}
	for id, ls := range f.stages {
		if len(ls) > 0 {
			out.VersionIdsToStages[id] = slices.Clone(ls)
		}
	}
	return out, nil
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.count("GetSecretValue"); err != nil {
		return nil, err
	}
	f.gets = append(f.gets, in)
	id := aws.ToString(in.VersionId)
	if id == "" {
		stage := aws.ToString(in.VersionStage)
		if stage == "" {
			stage = stageCurrent
		}
		id = f.holder(stage)
	}
	v, ok := f.values[id]
	if !ok || v == nil {
		return nil, notFound("no value")
	}
	if st := aws.ToString(in.VersionStage); st != "" && !slices.Contains(f.stages[id], st) {
		return nil, notFound("version does not carry stage " + st)
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: v, VersionId: aws.String(id)}, nil
}

func (f *fakeSM) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.count("PutSecretValue"); err != nil {
		return nil, err
	}
	f.puts = append(f.puts, in)
	id := aws.ToString(in.ClientRequestToken)
	if id == "" {
		return nil, errors.New("test fake: PutSecretValue without ClientRequestToken")
	}
	if old, ok := f.values[id]; ok && old != nil && *old != aws.ToString(in.SecretString) {
		return nil, &types.ResourceExistsException{Message: aws.String("version exists with another value")}
	}
	f.values[id] = in.SecretString
	for _, label := range in.VersionStages {
		f.removeLabel(label)
		f.stages[id] = append(f.stages[id], label)
	}
	return &secretsmanager.PutSecretValueOutput{VersionId: aws.String(id)}, nil
}

func (f *fakeSM) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.count("UpdateSecretVersionStage"); err != nil {
		return nil, err
	}
	f.updates = append(f.updates, in)
	label := aws.ToString(in.VersionStage)
	if in.RemoveFromVersionId != nil && aws.ToString(in.RemoveFromVersionId) == "" {
		return nil, errors.New("test fake: empty RemoveFromVersionId")
	}
	holder := f.holder(label)
	if holder != "" && holder != aws.ToString(in.RemoveFromVersionId) {
		return nil, &types.InvalidParameterException{Message: aws.String(
			fmt.Sprintf("%s is on %s, not on RemoveFromVersionId", label, holder))}
	}
	if label == stageCurrent && holder != "" {
		f.removeLabel("AWSPREVIOUS")
		f.stages[holder] = append(f.stages[holder], "AWSPREVIOUS")
	}
	f.removeLabel(label)
	to := aws.ToString(in.MoveToVersionId)
	f.stages[to] = append(f.stages[to], label)
	return &secretsmanager.UpdateSecretVersionStageOutput{}, nil
}

func (f *fakeSM) GetRandomPassword(_ context.Context, in *secretsmanager.GetRandomPasswordInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.count("GetRandomPassword"); err != nil {
		return nil, err
	}
	f.passSeq++
	return &secretsmanager.GetRandomPasswordOutput{
		RandomPassword: aws.String(fmt.Sprintf("Generated-Pass-%04d-xyzXYZ", f.passSeq)),
	}, nil
}

func (f *fakeSM) valueOf(label string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.values[f.holder(label)]
	if v == nil {
		return ""
	}
	return *v
}

// fakeApinizer records the passwords it was sent and answers with err.
type fakeApinizer struct {
	mu     sync.Mutex
	sent   []string
	err    error
	stored string
}

func (a *fakeApinizer) ChangePassword(_ context.Context, project, user string,
	p sensitive.String) (*apinizer.Deployment, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, project+"/"+user+":"+p.Reveal())
	var de *apinizer.DeploymentError
	if a.err == nil || errors.As(a.err, &de) {
		a.stored = p.Reveal()
	}
	if a.err != nil {
		return nil, a.err
	}
	ok := true
	return &apinizer.Deployment{Reported: true, Success: &ok,
		Environments: []apinizer.EnvironmentResult{{Name: "production", Success: true}}}, nil
}

func newSecret(s string) sensitive.String { return sensitive.New(s) }
