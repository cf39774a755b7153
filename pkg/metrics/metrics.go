// Package metrics records the functions' CloudWatch metrics in the embedded
// metric format (EMF): a JSON line on standard output that CloudWatch Logs
// turns into metrics, with no API call and no agent.
//
// A Recorder is made per invocation, collects counts and durations, and
// writes them with Flush before the handler returns (a function that times
// out before Flush loses that invocation's metrics). Only numbers are
// recorded: a metric can never carry a password, a token or a secret value.
// Dimension values must come from a small fixed set (the function's name, a
// dead-letter reason), never from a secret id: every distinct value is a new
// metric, billed as one.
//
// With LoggingConfig.LogFormat JSON, Lambda passes a line that is already a
// JSON object through as it is, so CloudWatch Logs still finds the EMF
// document in it. The line has no "level" key, so Lambda files it as INFO: an
// ApplicationLogLevel of WARN or ERROR drops it, and the metrics with it.
package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric of this project.
const Namespace = "ApinizerRotation"

// Dimension names. DimensionFunction's value is the Lambda function's name
// (lambdacontext.FunctionName), so that two stacks in one account keep apart.
const (
	DimensionFunction = "Function"
	DimensionReason   = "Reason"
)

// Metric names. JobsDeadLettered is counted through With(DimensionReason,
// reason), which publishes it per reason and in total.
const (
	RotationsSucceeded = "RotationsSucceeded" // rotations (or bulk jobs) that promoted their version
	RotationsFailed    = "RotationsFailed"    // rotation steps or bulk jobs that failed
	DeploymentsFailed  = "DeploymentsFailed"  // Apinizer saved the password, a gateway did not get it
	JobsDeadLettered   = "JobsDeadLettered"   // dead-letter records sent
	TokenProblems      = "TokenProblems"      // invocations the Apinizer token failed in (401, unreadable)
	ApinizerLatency    = "ApinizerLatency"    // one value per Apinizer call, in milliseconds
	Retries            = "Retries"            // Apinizer calls repeated after a transient failure
)

// EMF limits: metrics in one directive, values of one metric in one document.
const (
	maxMetricsPerLine = 100
	maxValuesPerLine  = 100
)

const (
	unitCount        = "Count"
	unitMilliseconds = "Milliseconds"
)

// Recorder collects metrics and writes them as EMF lines. It is safe for
// concurrent use; the Recorders that With returns share their parent's lines.
type Recorder struct {
	s     *state
	extra []dimension // With's dimensions, on top of New's
	bad   string      // why With's dimension was refused: nothing is recorded
}

type dimension struct{ name, value string }

type state struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	dims      []dimension // sorted by name
	now       func() time.Time
	groups    []*group
	problems  []string
}

// group is the metrics of one dimension combination: one EMF document.
type group struct {
	extra   []dimension
	metrics map[string]*metric
}

type metric struct {
	unit   string
	count  int64
	values []float64
}

// New returns a Recorder that writes to w (os.Stdout in Lambda) under
// namespace, with dims on every metric.
func New(w io.Writer, namespace string, dims map[string]string) *Recorder {
	s := &state{w: w, namespace: namespace, now: time.Now}
	if namespace == "" || len(namespace) > 255 {
		s.problems = append(s.problems, fmt.Sprintf("namespace %q must have 1 to 255 characters", namespace))
	}
	for name, value := range dims {
		if problem := checkDimension(name, value); problem != "" {
			s.problems = append(s.problems, problem)
			continue
		}
		s.dims = append(s.dims, dimension{name, value})
	}
	slices.SortFunc(s.dims, func(a, b dimension) int { return strings.Compare(a.name, b.name) })
	return &Recorder{s: s}
}

// With returns a Recorder whose metrics carry one more dimension. They are
// published twice: with it, and with New's dimensions alone (the total).
// A refused dimension (empty, too long, or already present) makes the
// returned Recorder record nothing, and Flush report it.
func (r *Recorder) With(name, value string) *Recorder {
	if r == nil {
		return nil
	}
	bad := r.bad
	if bad == "" {
		bad = checkDimension(name, value)
	}
	if bad == "" && r.s.isDimension(r.extra, name) {
		bad = fmt.Sprintf("dimension %s is set twice", name)
	}
	return &Recorder{s: r.s, extra: append(slices.Clip(r.extra), dimension{name, value}), bad: bad}
}

// Count adds n (0 or more) to the count name. A nil Recorder records
// nothing, as do its other methods. Counting 0 still publishes
// the metric, so that an alarm sees a zero rather than no data.
func (r *Recorder) Count(name string, n int) {
	if r == nil {
		return
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if n < 0 {
		r.s.problems = append(r.s.problems, fmt.Sprintf("%s: negative count %d", name, n))
		return
	}
	if m := r.metric(name, unitCount); m != nil {
		m.count += int64(n)
	}
}

// Milliseconds records one duration of name, in milliseconds.
func (r *Recorder) Milliseconds(name string, d time.Duration) {
	if r == nil {
		return
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if m := r.metric(name, unitMilliseconds); m != nil {
		m.values = append(m.values, float64(d)/float64(time.Millisecond))
	}
}

// Flush writes what was recorded since the last Flush: one JSON line per
// dimension combination (more only past EMF's limit of 100 metrics, or 100
// values of one metric, per line), and nothing when nothing was recorded.
// The error names every call that was refused; the rest is written anyway.
func (r *Recorder) Flush() error {
	if r == nil {
		return nil
	}
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	timestamp := s.now().UnixMilli()
	var lines [][]byte
	for _, g := range s.groups {
		lines = append(lines, s.encode(timestamp, g)...)
	}
	problems := s.problems
	s.groups, s.problems = nil, nil

	var errs []error
	for _, line := range lines {
		if _, err := s.w.Write(line); err != nil {
			errs = append(errs, fmt.Errorf("writing metrics: %w", err))
			break
		}
	}
	if len(problems) > 0 {
		errs = append(errs, errors.New("metrics not recorded: "+strings.Join(problems, "; ")))
	}
	return errors.Join(errs...)
}

// checkDimension says what is wrong with a dimension, or "".
func checkDimension(name, value string) string {
	switch {
	case name == "" || len(name) > 250 || name == "_aws":
		return fmt.Sprintf("dimension name %q is not allowed", name)
	case strings.TrimSpace(value) == "" || len(value) > 1024:
		return fmt.Sprintf("dimension %s needs a value of 1 to 1024 characters", name)
	}
	return ""
}

// metric finds or adds name in r's group; nil when it cannot be recorded.
// The caller holds the lock.
func (r *Recorder) metric(name, unit string) *metric {
	s, extra := r.s, r.extra
	switch {
	case r.bad != "":
		s.problems = append(s.problems, fmt.Sprintf("%s: %s", name, r.bad))
		return nil
	case name == "" || len(name) > 255 || name == "_aws" || s.isDimension(extra, name):
		s.problems = append(s.problems, fmt.Sprintf("metric name %q is not allowed", name))
		return nil
	}
	var g *group
	for _, c := range s.groups {
		if slices.Equal(c.extra, extra) {
			g = c
			break
		}
	}
	if g == nil {
		g = &group{extra: slices.Clone(extra), metrics: map[string]*metric{}}
		s.groups = append(s.groups, g)
	}
	m := g.metrics[name]
	if m == nil {
		m = &metric{unit: unit}
		g.metrics[name] = m
	} else if m.unit != unit {
		s.problems = append(s.problems, fmt.Sprintf("%s is recorded in %s, not %s", name, m.unit, unit))
		return nil
	}
	return m
}

func (s *state) isDimension(extra []dimension, name string) bool {
	is := func(d dimension) bool { return d.name == name }
	return slices.ContainsFunc(s.dims, is) || slices.ContainsFunc(extra, is)
}

// encode turns one group into its EMF lines.
func (s *state) encode(timestamp int64, g *group) [][]byte {
	dims := append(slices.Clone(s.dims), g.extra...)
	slices.SortStableFunc(dims, func(a, b dimension) int { return strings.Compare(a.name, b.name) })
	sets := [][]string{names(s.dims)}
	if len(g.extra) > 0 {
		sets = [][]string{append(names(s.dims), names(g.extra)...), names(s.dims)}
	}
	metricNames := make([]string, 0, len(g.metrics))
	for name := range g.metrics {
		metricNames = append(metricNames, name)
	}
	slices.Sort(metricNames)

	// a count goes in the first line; values go maxValuesPerLine at a time
	var lines [][]byte
	for chunk := 0; ; chunk++ {
		var batch []string
		values := map[string]string{}
		for _, name := range metricNames {
			m := g.metrics[name]
			if m.unit == unitCount {
				if chunk == 0 {
					batch = append(batch, name)
					values[name] = strconv.FormatInt(m.count, 10)
				}
				continue
			}
			lo := chunk * maxValuesPerLine
			if lo >= len(m.values) {
				continue
			}
			batch = append(batch, name)
			values[name] = numbers(m.values[lo:min(lo+maxValuesPerLine, len(m.values))])
		}
		if len(batch) == 0 {
			return lines
		}
		for part := range slices.Chunk(batch, maxMetricsPerLine) {
			lines = append(lines, s.document(timestamp, dims, sets, part, g, values))
		}
	}
}

// document writes one EMF document: the _aws metadata first, then the
// dimension values, then the metric values, each in name order.
func (s *state) document(timestamp int64, dims []dimension, sets [][]string, metricNames []string,
	g *group, values map[string]string) []byte {
	type definition struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	type directive struct {
		Namespace  string       `json:"Namespace"`
		Dimensions [][]string   `json:"Dimensions"`
		Metrics    []definition `json:"Metrics"`
	}
	type metadata struct {
		Timestamp         int64       `json:"Timestamp"`
		CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
	}
	d := directive{Namespace: s.namespace, Dimensions: sets}
	for _, name := range metricNames {
		d.Metrics = append(d.Metrics, definition{name, g.metrics[name].unit})
	}
	var b strings.Builder
	b.WriteString(`{"_aws":`)
	b.Write(mustJSON(metadata{timestamp, []directive{d}}))
	for _, dim := range dims {
		b.WriteByte(',')
		b.Write(mustJSON(dim.name))
		b.WriteByte(':')
		b.Write(mustJSON(dim.value))
	}
	for _, name := range metricNames {
		b.WriteByte(',')
		b.Write(mustJSON(name))
		b.WriteByte(':')
		b.WriteString(values[name])
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

func names(dims []dimension) []string {
	out := make([]string, 0, len(dims))
	for _, d := range dims {
		out = append(out, d.name)
	}
	return out
}

// numbers is one value as a JSON number, or several as an array.
func numbers(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatFloat(v, 'f', -1, 64)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// mustJSON encodes strings and the fixed metadata types, which cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("metrics: encoding %T: %v", v, err))
	}
	return b
}
