package rotation

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// The files in events/ are the shapes Secrets Manager sends; they must be
// valid events of the step their name says, sharing one secret and token.
func TestTheSampleEventsAreValidSteps(t *testing.T) {
	files := map[string]string{
		"rotate-create.json": StepCreate, "rotate-set.json": StepSet,
		"rotate-test.json": StepTest, "rotate-finish.json": StepFinish,
	}
	var first *Event
	for name, step := range files {
		raw, err := os.ReadFile("../../events/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := ValidateEvent(ev); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if ev.Step != step || ev.RotationToken == "" {
			t.Errorf("%s: step %q, rotation token present: %v", name, ev.Step, ev.RotationToken != "")
		}

		// round trip: the keys are exactly AWS's
		var asMap, back map[string]any
		_ = json.Unmarshal(raw, &asMap)
		out, _ := json.Marshal(ev)
		_ = json.Unmarshal(out, &back)
		if !reflect.DeepEqual(asMap, back) {
			t.Errorf("%s does not round-trip: %v vs %v", name, asMap, back)
		}
		if first == nil {
			first = &ev
		} else if ev.SecretID != first.SecretID || ev.ClientRequestToken != first.ClientRequestToken {
			t.Errorf("%s: the four events must share SecretId and ClientRequestToken", name)
		}
	}
}
