package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// fakeSecrets answers ListSecrets from pages, ignoring the filters (as a
// loose server filter might), and records the inputs.
type fakeSecrets struct {
	pages [][]smtypes.SecretListEntry
	ins   []*secretsmanager.ListSecretsInput
	err   error
}

func (f *fakeSecrets) ListSecrets(_ context.Context, in *secretsmanager.ListSecretsInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	cp := *in
	f.ins = append(f.ins, &cp)
	if f.err != nil {
		return nil, f.err
	}
	page := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &page)
	}
	out := &secretsmanager.ListSecretsOutput{SecretList: f.pages[page]}
	if page+1 < len(f.pages) {
		out.NextToken = aws.String(fmt.Sprint(page + 1))
	}
	return out, nil
}

func secret(name string, tags ...string) smtypes.SecretListEntry {
	s := smtypes.SecretListEntry{Name: aws.String(name)}
	for _, kv := range tags {
		k, v, _ := strings.Cut(kv, "=")
		s.Tags = append(s.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return s
}

func TestListSecretIDs(t *testing.T) {
	pages := [][]smtypes.SecretListEntry{
		{secret("apinizer/orders/a", "rotate=now"), secret("other/apinizer/orders/x", "rotate=now")},
		{},
		{secret("apinizer/orders/b", "rotate=later", "team=now"), secret("apinizer/ordersx/c"),
			secret("apinizer/orders/d", "rotate=now", "team=payments")},
	}
	tests := []struct {
		name    string
		filter  SecretFilter
		want    string
		filters string
	}{
		{"a prefix is checked exactly, every page read",
			SecretFilter{Prefix: "apinizer/orders/"},
			"[apinizer/orders/a apinizer/orders/b apinizer/orders/d]",
			"[{name [apinizer/orders/]}]"},
		{"a tag needs its key and value on one tag",
			SecretFilter{TagKey: "rotate", TagValue: "now"},
			"[apinizer/orders/a other/apinizer/orders/x apinizer/orders/d]",
			"[{tag-key [rotate]} {tag-value [now]}]"},
		{"prefix and tag select both",
			SecretFilter{Prefix: "apinizer/", TagKey: "rotate", TagValue: "now"},
			"[apinizer/orders/a apinizer/orders/d]",
			"[{name [apinizer/]} {tag-key [rotate]} {tag-value [now]}]"},
		{"an empty tag value matches an empty value only",
			SecretFilter{TagKey: "rotate"}, "[]", "[{tag-key [rotate]}]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSecrets{pages: pages}
			got, err := ListSecretIDs(t.Context(), f, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
			if len(f.ins) != 3 {
				t.Errorf("%d calls, want one per page (3)", len(f.ins))
			}
			var filters []string
			for _, fl := range f.ins[0].Filters {
				filters = append(filters, fmt.Sprintf("{%s %v}", fl.Key, fl.Values))
			}
			if fmt.Sprint(filters) != tt.filters {
				t.Errorf("filters = %v, want %s", filters, tt.filters)
			}
		})
	}
}

func TestListSecretIDsRefuses(t *testing.T) {
	for name, f := range map[string]SecretFilter{
		"no filter":               {},
		"a negated prefix":        {Prefix: "!apinizer/"},
		"a negated tag value":     {TagKey: "k", TagValue: "!v"},
		"a tag value with no key": {TagValue: "v"},
	} {
		t.Run(name, func(t *testing.T) {
			fake := &fakeSecrets{pages: [][]smtypes.SecretListEntry{{}}}
			if _, err := ListSecretIDs(t.Context(), fake, f); err == nil || len(fake.ins) != 0 {
				t.Errorf("err = %v after %d calls", err, len(fake.ins))
			}
		})
	}
	fake := &fakeSecrets{err: errors.New("AccessDeniedException")}
	if _, err := ListSecretIDs(t.Context(), fake, SecretFilter{Prefix: "a"}); err == nil ||
		!strings.Contains(err.Error(), "AccessDeniedException") {
		t.Errorf("err = %v", err)
	}
}

func TestParseTag(t *testing.T) {
	tests := []struct{ in, key, value string }{
		{"rotate=now", "rotate", "now"},
		{"a=b=c", "a", "b=c"},
		{"empty=", "empty", ""},
		{"novalue", "", ""},
		{"=v", "", ""},
	}
	for _, tt := range tests {
		k, v, err := ParseTag(tt.in)
		if k != tt.key || v != tt.value || (err == nil) != (tt.key != "") {
			t.Errorf("ParseTag(%q) = %q, %q, %v", tt.in, k, v, err)
		}
	}
}

type fakeCredentials map[string][]string

func (f fakeCredentials) ListCredentials(_ context.Context, project string) ([]string, error) {
	names, ok := f[project]
	if !ok {
		return nil, errors.New("project not found")
	}
	return names, nil
}

func TestProjectSecretIDs(t *testing.T) {
	creds := fakeCredentials{"Orders": {"orders-client", "billing"}}
	tests := []struct {
		name, project, tmpl string
		want                string
		err                 string
	}{
		{"the default template", "Orders", DefaultNameTemplate,
			"[apinizer/Orders/orders-client apinizer/Orders/billing]", ""},
		{"a template of the username only", "Orders", "creds/{username}",
			"[creds/orders-client creds/billing]", ""},
		{"a template without the username", "Orders", "apinizer/{project}", "",
			"has no {username}"},
		{"an unknown placeholder", "Orders", "{env}/{username}", "", "unknown placeholder {env}"},
		{"an unknown project", "Billing", DefaultNameTemplate, "", "project not found"},
		{"no project", "", DefaultNameTemplate, "", "no Apinizer project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ProjectSecretIDs(t.Context(), creds, tt.project, tt.tmpl)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Errorf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}
