package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// DefaultNameTemplate maps an Apinizer credential to the name of the
// secret holding its password.
const DefaultNameTemplate = "apinizer/{project}/{username}"

var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// CheckNameTemplate accepts a template made of text, {project} and
// {username}; {username} is required, since without it every credential
// would map to one secret.
func CheckNameTemplate(tmpl string) error {
	if !strings.Contains(tmpl, "{username}") {
		return fmt.Errorf("name template %q has no {username}", tmpl)
	}
	for _, p := range placeholder.FindAllString(tmpl, -1) {
		if p != "{project}" && p != "{username}" {
			return fmt.Errorf("name template %q: unknown placeholder %s "+
				"(only {project} and {username})", tmpl, p)
		}
	}
	return nil
}

// SecretName fills a name template.
func SecretName(tmpl, project, username string) string {
	return strings.NewReplacer("{project}", project, "{username}", username).Replace(tmpl)
}

// ProjectSecretIDs lists the credentials of an Apinizer project and maps
// each username to a secret name with the template. The project name
// fills {project} as given.
func ProjectSecretIDs(ctx context.Context, lister CredentialLister, project, tmpl string) (
	[]string, error) {
	if project == "" {
		return nil, errors.New("no Apinizer project given")
	}
	if err := CheckNameTemplate(tmpl); err != nil {
		return nil, err
	}
	usernames, err := lister.ListCredentials(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("listing the credentials of Apinizer project %q: %w", project, err)
	}
	ids := make([]string, 0, len(usernames))
	for _, u := range usernames {
		ids = append(ids, SecretName(tmpl, project, u))
	}
	return ids, nil
}
