package apinizer

import (
	"bytes"
	"cmp"
	"encoding/json"
)

// wireResult is a deploymentResult, or one entry of its lists, in every
// shape Apinizer documents:
//
//	{"success", "message", "environmentResults": [{"environmentName", "success", "message"}]}
//	{"success", "responseTime", "detailList": [{"envName", "podName", "podIp", "success",
//	  "detail", "responseTime", "detailList": [...]}], "firstFromApiResultList": {...}}
type wireResult struct {
	Success                *bool        `json:"success"`
	Message                string       `json:"message"`
	Detail                 string       `json:"detail"`
	EnvironmentName        string       `json:"environmentName"`
	EnvName                string       `json:"envName"`
	PodName                string       `json:"podName"`
	EnvironmentResults     []wireResult `json:"environmentResults"`
	DetailList             []wireResult `json:"detailList"`
	FirstFromAPIResultList *wireResult  `json:"firstFromApiResultList"`
}

// children are the entries below w. firstFromApiResultList repeats the
// first entry of a list, so it counts only when no list is there.
func (w *wireResult) children() []wireResult {
	kids := append(append([]wireResult(nil), w.EnvironmentResults...), w.DetailList...)
	if len(kids) == 0 && w.FirstFromAPIResultList != nil {
		kids = append(kids, *w.FirstFromAPIResultList)
	}
	return kids
}

func (w *wireResult) name() string { return cmp.Or(w.EnvironmentName, w.EnvName) }

func (w *wireResult) message() string { return cmp.Or(w.Message, w.Detail) }

// deployment reads a deploymentResult. A missing or null one, or one that
// does not fit the shapes above, gives Reported false, with the reason when
// it could not be read. resultMessage of the envelope stands in for a
// missing deploymentResult.message.
func (r redactor) deployment(raw json.RawMessage, resultMessage string) (Deployment, string) {
	d := Deployment{Message: r.clean(resultMessage, maxMessageBytes)}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return d, ""
	}
	var w wireResult
	if err := json.Unmarshal(raw, &w); err != nil {
		return d, "unreadable deploymentResult"
	}

	d.Reported = true
	d.Success = w.Success
	if m := w.message(); m != "" {
		d.Message = r.clean(m, maxMessageBytes)
	}
	if len(w.children()) == 0 {
		// a result that is itself one environment or pod
		if w.name() != "" || w.PodName != "" {
			d.Environments = append(d.Environments, r.entry(&w, ""))
		}
		return d, ""
	}
	d.Environments = r.appendChildren(nil, &w, w.name())
	return d, ""
}

// appendChildren flattens the entries below w into out. An entry with its
// own entries is replaced by them (they inherit its environment name), and
// is kept itself only when it failed while none below it did, so that no
// reported failure is lost.
func (r redactor) appendChildren(out []EnvironmentResult, w *wireResult,
	env string) []EnvironmentResult {
	for _, kid := range w.children() {
		name := cmp.Or(kid.name(), env)
		if len(kid.children()) == 0 {
			out = append(out, r.entry(&kid, name))
			continue
		}
		before := len(out)
		out = r.appendChildren(out, &kid, name)
		below := Deployment{Environments: out[before:]}
		if kid.Success != nil && !*kid.Success && len(below.Failed()) == 0 {
			out = append(out, r.entry(&kid, name))
		}
	}
	return out
}

// entry is one flattened result. A missing success counts as failed.
func (r redactor) entry(w *wireResult, env string) EnvironmentResult {
	return EnvironmentResult{
		Name:    r.clean(cmp.Or(w.name(), env), maxNameBytes),
		Pod:     r.clean(w.PodName, maxNameBytes),
		Success: w.Success != nil && *w.Success,
		Message: r.clean(w.message(), maxMessageBytes),
	}
}
