package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// forms returns the ways a secret could show up in text: as it is,
// JSON-escaped, URL-encoded and base64-encoded.
func forms(secret string) []string {
	j, _ := json.Marshal(secret)
	out := []string{
		secret,
		strings.Trim(string(j), `"`),
		url.QueryEscape(secret),
		url.PathEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.URLEncoding.EncodeToString([]byte(secret)),
		base64.RawStdEncoding.EncodeToString([]byte(secret)),
	}
	return out
}

// findLeaks returns a description of every secret found in any text.
func findLeaks(secrets []string, texts map[string]string) []string {
	var found []string
	for _, s := range secrets {
		if len(s) < 6 {
			continue // too short to tell from ordinary text
		}
		for _, f := range forms(s) {
			for name, text := range texts {
				if strings.Contains(text, f) {
					found = append(found, fmt.Sprintf("a secret of %d characters appears in %s", len(s), name))
				}
			}
		}
	}
	return found
}

// usedSecrets lists every password any version of any secret ever held,
// and the Apinizer token.
func usedSecrets(ctx context.Context) ([]string, error) {
	secrets := []string{stack.Token}
	pages := secretsmanager.NewListSecretsPaginator(stack.SecretsManager, &secretsmanager.ListSecretsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range page.SecretList {
			versions, err := stack.SecretsManager.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{
				SecretId: s.ARN, IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(100),
			})
			if err != nil {
				return nil, err
			}
			for _, v := range versions.Versions {
				out, err := stack.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
					SecretId: s.ARN, VersionId: v.VersionId,
				})
				if err != nil {
					continue // a placeholder version holds no value
				}
				var value struct {
					Password     string `json:"password"`
					ClientSecret string `json:"clientSecret"`
					Token        string `json:"token"`
				}
				if json.Unmarshal([]byte(aws.ToString(out.SecretString)), &value) == nil {
					for _, v := range []string{value.Password, value.ClientSecret, value.Token} {
						if v != "" {
							secrets = append(secrets, v)
						}
					}
				}
			}
		}
	}
	return secrets, nil
}
