package e2e

import (
	"encoding/base64"
	"net/url"
	"testing"
)

// The scan that TestMain runs over every log line and dead-letter record
// must find a planted secret in each form.
func TestTheLeakScanFindsAPlantedPassword(t *testing.T) {
	const planted = `Planted:Pass/word"1`
	cases := map[string]string{
		"plain":        `{"level":"INFO","msg":"x","password":"` + planted + `"}`,
		"JSON-escaped": `{"msg":"Planted:Pass/word\"1"}`,
		"URL-encoded":  "GET /x?p=" + url.QueryEscape(planted),
		"base64":       "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(planted)),
	}
	for name, text := range cases {
		if len(findLeaks([]string{planted}, map[string]string{name: text})) == 0 {
			t.Errorf("%s: the planted password was not found", name)
		}
	}
	if found := findLeaks([]string{planted}, map[string]string{"clean": `{"msg":"[REDACTED]"}`}); len(found) != 0 {
		t.Errorf("false alarm: %v", found)
	}
}
