package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// SecretFilter selects secrets by name prefix, by tag, or both (a secret
// must then match both).
type SecretFilter struct {
	// Prefix selects the secrets whose name starts with it.
	Prefix string
	// TagKey, when not empty, selects the secrets carrying a tag with
	// exactly this key and exactly the value TagValue (which may be empty).
	TagKey   string
	TagValue string
}

// ParseTag reads "Key=Value" into a filter's tag. The value may be empty;
// the key may not.
func ParseTag(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("tag %q is not Key=Value", s)
	}
	return key, value, nil
}

// validate refuses a filter that selects nothing, or a value Secrets
// Manager would read as a negation ("!value").
func (f SecretFilter) validate() error {
	if f.Prefix == "" && f.TagKey == "" {
		return errors.New("a secret filter needs a name prefix or a tag")
	}
	for _, v := range []string{f.Prefix, f.TagKey, f.TagValue} {
		if strings.HasPrefix(v, "!") {
			return fmt.Errorf("%q starts with '!', which Secrets Manager reads as \"not\"", v)
		}
	}
	return nil
}

// ListSecretIDs returns the names of every secret the filter selects, in
// the order Secrets Manager lists them, reading every page.
//
// Secrets Manager's own filters are looser than the filter's meaning (a
// name filter also matches words inside a name, a tag filter matches
// prefixes, and a tag key and a tag value may match two different tags),
// so each listed secret is checked again here, exactly.
func ListSecretIDs(ctx context.Context, client ListSecretsAPI, f SecretFilter) ([]string, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	var filters []smtypes.Filter
	if f.Prefix != "" {
		filters = append(filters, smtypes.Filter{Key: smtypes.FilterNameStringTypeName,
			Values: []string{f.Prefix}})
	}
	if f.TagKey != "" {
		filters = append(filters, smtypes.Filter{Key: smtypes.FilterNameStringTypeTagKey,
			Values: []string{f.TagKey}})
		if f.TagValue != "" {
			filters = append(filters, smtypes.Filter{Key: smtypes.FilterNameStringTypeTagValue,
				Values: []string{f.TagValue}})
		}
	}

	var names []string
	in := &secretsmanager.ListSecretsInput{Filters: filters, MaxResults: aws.Int32(100)}
	for page := 1; ; page++ {
		out, err := client.ListSecrets(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing secrets (page %d): %w", page, err)
		}
		for _, s := range out.SecretList {
			if f.selects(s) {
				names = append(names, aws.ToString(s.Name))
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return names, nil
		}
		in.NextToken = out.NextToken
	}
}

// selects checks one listed secret against the filter exactly.
func (f SecretFilter) selects(s smtypes.SecretListEntry) bool {
	name := aws.ToString(s.Name)
	if name == "" || !strings.HasPrefix(name, f.Prefix) {
		return false
	}
	if f.TagKey == "" {
		return true
	}
	for _, t := range s.Tags {
		if aws.ToString(t.Key) == f.TagKey && aws.ToString(t.Value) == f.TagValue {
			return true
		}
	}
	return false
}
