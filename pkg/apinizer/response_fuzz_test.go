package apinizer

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzReadAnswer feeds the readers of response.go an answer as the client
// would have read it: a status, a body (stopped at the read limit or not)
// and a Location header, for a request that carried testPassword and
// testToken. Whatever the answer:
//   - nothing panics;
//   - a 2xx to a password change is deployed only if its deployment says
//     so, and is otherwise a *DeploymentError or a rejection;
//   - a non-2xx is an *Error of the class its status has;
//   - no error, and no deployment that may be dead-lettered, shows the
//     password or the token, plain, JSON-escaped or URL-encoded; and the
//     token endpoint's reader never quotes the access token it was sent.
//
// Plain `go test` runs the seeds: every answer of testdata/corpus/apinizer
// of at most 64 KiB.
func FuzzReadAnswer(f *testing.F) {
	placeholders := corpusPlaceholders("https://other.example")
	for _, c := range corpusLoad(f, "apinizer", 64<<10) {
		a, err := parseCorpusAnswer(c.Data, placeholders)
		if err != nil {
			f.Fatalf("%s: %v", c.Name, err)
		}
		f.Add(a.status, a.body, false, a.header.Get("Location"))
	}
	f.Add(200, []byte(`{"access_token":"Access-Token-0123456789","token_type":"Basic","expires_in":-1}`), false, "")
	f.Add(400, []byte("<p>"+testPassword+"</p>"), true, "")

	forms := corpusSecretForms(false)
	f.Fuzz(func(t *testing.T, status int, body []byte, tooLarge bool, location string) {
		// net/http hands over three-digit statuses only
		if status < 100 || status > 999 {
			status = 100 + (status%900+900)%900
		}
		a := &answer{status: status, header: http.Header{"Location": {location}}, body: body,
			tooLarge: tooLarge, red: newRedactor(testPassword, testToken)}
		const op = "change password of Orders/orders-client"
		texts := map[string]string{}

		if a.succeeded() {
			dep, err := readChange(op, a)
			var de *DeploymentError
			var e *Error
			switch {
			case dep == nil:
				t.Fatal("no deployment returned for a 2xx")
			case err == nil && !dep.Deployed():
				t.Fatalf("deployed without evidence: %+v", dep)
			case err != nil && !errors.As(err, &de) && !(errors.As(err, &e) && e.Class == ClassRejected):
				t.Fatalf("a 2xx gave %T %v", err, err)
			}
			if err != nil {
				texts["change error"] = err.Error()
			}
			b, _ := json.Marshal(dep)
			texts["deployment"] = string(b)

			if _, err := readUsernames("list credentials of project Orders", a); err != nil {
				texts["list error"] = err.Error()
			}
		} else {
			e := statusError(op, a)
			if e.Class != classifyStatus(status) || e.StatusCode != status {
				t.Fatalf("HTTP %d gave class %s", status, e.Class)
			}
			if len(e.Error()) > 1<<10 {
				t.Fatalf("an error of %d bytes", len(e.Error()))
			}
			texts["status error"] = e.Error()
		}

		// the token endpoint's reader, on the same answer
		if a.succeeded() {
			if _, _, err := readAccessToken("get access token for client c", a); err != nil {
				texts["token error"] = err.Error()
				var sent struct {
					AccessToken string `json:"access_token"`
				}
				if json.Unmarshal(body, &sent) == nil && len(sent.AccessToken) >= 8 &&
					strings.Contains(err.Error(), sent.AccessToken) {
					t.Fatalf("the token reader's error quotes the access token: %v", err)
				}
			}
		}

		for what, text := range texts {
			for _, form := range forms {
				if strings.Contains(text, form) {
					t.Fatalf("%s shows a secret (%q): %s", what, form, text)
				}
			}
		}
	})
}
