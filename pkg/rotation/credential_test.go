package rotation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A credential printed, logged or encoded by mistake shows who it is for,
// never its password nor its other keys.
func TestACredentialNeverPrintsItsSecrets(t *testing.T) {
	c, err := ParseCredential(`{"projectName":"Orders","username":"orders-client",` +
		`"password":"Pw-Secret-91","apiKey":"Key-Secret-17"}`)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "credential", c, "ptr", &c)
	encoded, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprintf("%s", c), "pointer %+v": fmt.Sprintf("%+v", &c), "error": fmt.Errorf("e: %v", c).Error(),
		"slog": logs.String(), "json": string(encoded),
	}
	for how, out := range outputs {
		if strings.Contains(out, "Pw-Secret-91") || strings.Contains(out, "Key-Secret-17") {
			t.Errorf("%s shows a secret: %s", how, out)
		}
		if !strings.Contains(out, "orders-client") {
			t.Errorf("%s does not say whose credential it is: %s", how, out)
		}
	}
}
