package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// at is the fixed clock of these tests: 2026-12-03T10:00:00.123Z.
var at = time.Date(2026, 12, 3, 10, 0, 0, 123e6, time.UTC)

func newAt(w *bytes.Buffer, dims map[string]string) *Recorder {
	r := New(w, Namespace, dims)
	r.s.now = func() time.Time { return at }
	return r
}

func TestFlushWritesTheExactDocument(t *testing.T) {
	cases := []struct {
		name   string
		record func(r *Recorder)
		want   string
	}{
		{
			name:   "one count",
			record: func(r *Recorder) { r.Count(RotationsSucceeded, 1) },
			want: `{"_aws":{"Timestamp":1796292000123,"CloudWatchMetrics":[{"Namespace":"ApinizerRotation",` +
				`"Dimensions":[["Function"]],"Metrics":[{"Name":"RotationsSucceeded","Unit":"Count"}]}]},` +
				`"Function":"rotate","RotationsSucceeded":1}` + "\n",
		},
		{
			name: "counts add up, a zero is kept, durations become a list",
			record: func(r *Recorder) {
				r.Count(Retries, 2)
				r.Count(RotationsFailed, 0)
				r.Count(Retries, 1)
				r.Milliseconds(ApinizerLatency, 1500*time.Microsecond)
				r.Milliseconds(ApinizerLatency, 2*time.Second)
			},
			want: `{"_aws":{"Timestamp":1796292000123,"CloudWatchMetrics":[{"Namespace":"ApinizerRotation",` +
				`"Dimensions":[["Function"]],"Metrics":[{"Name":"ApinizerLatency","Unit":"Milliseconds"},` +
				`{"Name":"Retries","Unit":"Count"},{"Name":"RotationsFailed","Unit":"Count"}]}]},` +
				`"Function":"rotate","ApinizerLatency":[1.5,2000],"Retries":3,"RotationsFailed":0}` + "\n",
		},
		{
			name: "a reason is its own document, published per reason and in total",
			record: func(r *Recorder) {
				r.Count(RotationsFailed, 1)
				r.With(DimensionReason, "deployment_failed").Count(JobsDeadLettered, 2)
			},
			want: `{"_aws":{"Timestamp":1796292000123,"CloudWatchMetrics":[{"Namespace":"ApinizerRotation",` +
				`"Dimensions":[["Function"]],"Metrics":[{"Name":"RotationsFailed","Unit":"Count"}]}]},` +
				`"Function":"rotate","RotationsFailed":1}` + "\n" +
				`{"_aws":{"Timestamp":1796292000123,"CloudWatchMetrics":[{"Namespace":"ApinizerRotation",` +
				`"Dimensions":[["Function","Reason"],["Function"]],` +
				`"Metrics":[{"Name":"JobsDeadLettered","Unit":"Count"}]}]},` +
				`"Function":"rotate","Reason":"deployment_failed","JobsDeadLettered":2}` + "\n",
		},
		{
			name:   "nothing recorded writes nothing",
			record: func(*Recorder) {},
			want:   "",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := newAt(&out, map[string]string{DimensionFunction: "rotate"})
			tc.record(r)
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("expected\n%s\ngot\n%s", tc.want, got)
			}
			checkEMF(t, out.Bytes())
		})
	}
}

func TestFlushStartsAfresh(t *testing.T) {
	var out bytes.Buffer
	r := newAt(&out, map[string]string{DimensionFunction: "bulk"})
	r.Count(RotationsSucceeded, 4)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := r.Flush(); err != nil || out.Len() > 0 {
		t.Errorf("second flush wrote %q (err %v), expected nothing", out.String(), err)
	}
	r.Count(RotationsSucceeded, 1)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"RotationsSucceeded":1}`) {
		t.Errorf("expected a fresh count of 1, got %s", out.String())
	}
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	var out bytes.Buffer
	r := newAt(&out, map[string]string{DimensionFunction: "bulk"})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			r.Count(RotationsSucceeded, 1)
			r.Milliseconds(ApinizerLatency, time.Duration(i)*time.Millisecond)
			r.With(DimensionReason, "rejected").Count(JobsDeadLettered, 1)
		})
	}
	wg.Wait()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	docs := checkEMF(t, out.Bytes())
	if len(docs) != 2 {
		t.Fatalf("expected 2 documents, got %d:\n%s", len(docs), out.String())
	}
	if got := docs[0][RotationsSucceeded]; got != 50.0 {
		t.Errorf("expected RotationsSucceeded 50, got %v", got)
	}
	if got, _ := docs[0][ApinizerLatency].([]any); len(got) != 50 {
		t.Errorf("expected 50 latencies, got %d", len(got))
	}
	if got := docs[1][JobsDeadLettered]; got != 50.0 {
		t.Errorf("expected JobsDeadLettered 50, got %v", got)
	}
}

func TestFlushKeepsEachLineWithinTheEMFLimits(t *testing.T) {
	var out bytes.Buffer
	r := newAt(&out, map[string]string{DimensionFunction: "bulk"})
	for i := range 150 {
		r.Count(fmt.Sprintf("Metric%03d", i), i)
	}
	for i := range 250 {
		r.Milliseconds(ApinizerLatency, time.Duration(i)*time.Millisecond)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	docs := checkEMF(t, out.Bytes())

	// 151 names in the first chunk (100 + 51), then latencies 100-199 and
	// 200-249 alone
	if len(docs) != 4 {
		t.Fatalf("expected 4 documents, got %d", len(docs))
	}
	counts, latencies := 0, 0
	for _, doc := range docs {
		for key, v := range doc {
			switch {
			case strings.HasPrefix(key, "Metric"):
				counts++
			case key == ApinizerLatency:
				latencies += len(v.([]any))
			}
		}
	}
	if counts != 150 || latencies != 250 {
		t.Errorf("expected 150 counts and 250 latencies across lines, got %d and %d", counts, latencies)
	}
}

func TestFlushRefusesWhatIsNotAMetricAndWritesTheRest(t *testing.T) {
	cases := []struct {
		name   string
		dims   map[string]string
		record func(r *Recorder)
		want   string
	}{
		{"a negative count", nil, func(r *Recorder) { r.Count(Retries, -1) }, "negative count"},
		{"one name in two units", nil, func(r *Recorder) {
			r.Count(ApinizerLatency, 1)
			r.Milliseconds(ApinizerLatency, time.Second)
		}, "ApinizerLatency is recorded in Count"},
		{"a metric named like a dimension", map[string]string{DimensionFunction: "rotate"},
			func(r *Recorder) { r.Count(DimensionFunction, 1) }, `metric name "Function"`},
		{"the reserved key", nil, func(r *Recorder) { r.Count("_aws", 1) }, `metric name "_aws"`},
		{"an empty dimension value", map[string]string{DimensionFunction: " "},
			func(*Recorder) {}, "dimension Function needs a value"},
		{"a dimension set twice", map[string]string{DimensionFunction: "rotate"},
			func(r *Recorder) { r.With(DimensionFunction, "bulk").Count(Retries, 1) }, "set twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := newAt(&out, tc.dims)
			tc.record(r)
			r.Count(RotationsSucceeded, 1)
			err := r.Flush()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("expected an error containing %q, got %v", tc.want, err)
			}
			docs := checkEMF(t, out.Bytes())
			if len(docs) == 0 || docs[0][RotationsSucceeded] != 1.0 {
				t.Errorf("expected the valid count to be written anyway, got %s", out.String())
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestFlushReportsAWriteError(t *testing.T) {
	r := New(failingWriter{}, Namespace, nil)
	r.Count(RotationsSucceeded, 1)
	if err := r.Flush(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("expected os.ErrClosed, got %v", err)
	}
}

// emfUnits are the units CloudWatch accepts.
var emfUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true,
	"Gigabytes/Second": true, "Terabytes/Second": true, "Bits/Second": true,
	"Kilobits/Second": true, "Megabits/Second": true, "Gigabits/Second": true,
	"Terabits/Second": true, "Count/Second": true, "None": true,
}

// checkEMF parses every line of out as an EMF document and checks it
// against the specification: the _aws metadata with a millisecond
// timestamp, at most 100 metrics per directive, every dimension a string at
// the top level, every metric a number or a list of at most 100 numbers
// there, and no key at the top level that is neither.
func checkEMF(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for i, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var doc map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&doc); err != nil || dec.More() {
			t.Fatalf("line %d is not one JSON object: %v\n%s", i+1, err, line)
		}
		docs = append(docs, doc)
		where := fmt.Sprintf("line %d", i+1)

		aws, ok := doc["_aws"].(map[string]any)
		if !ok {
			t.Errorf("%s: no _aws object", where)
			continue
		}
		if ts, ok := aws["Timestamp"].(float64); !ok || ts != float64(int64(ts)) || ts < 1e12 {
			t.Errorf("%s: Timestamp %v is not epoch milliseconds", where, aws["Timestamp"])
		}
		directives, _ := aws["CloudWatchMetrics"].([]any)
		if len(directives) == 0 {
			t.Errorf("%s: CloudWatchMetrics is empty", where)
		}
		used := map[string]bool{"_aws": true}
		for _, d := range directives {
			d, _ := d.(map[string]any)
			if ns, _ := d["Namespace"].(string); ns == "" {
				t.Errorf("%s: directive without Namespace", where)
			}
			sets, _ := d["Dimensions"].([]any)
			if len(sets) == 0 {
				t.Errorf("%s: directive without Dimensions", where)
			}
			for _, set := range sets {
				set, _ := set.([]any)
				if len(set) > 30 {
					t.Errorf("%s: a dimension set has %d keys, more than 30", where, len(set))
				}
				for _, key := range set {
					key, _ := key.(string)
					if v, ok := doc[key].(string); !ok || v == "" {
						t.Errorf("%s: dimension %q has no string value at the top level", where, key)
					}
					used[key] = true
				}
			}
			metrics, _ := d["Metrics"].([]any)
			if len(metrics) == 0 || len(metrics) > 100 {
				t.Errorf("%s: %d metrics in a directive, want 1 to 100", where, len(metrics))
			}
			for _, m := range metrics {
				m, _ := m.(map[string]any)
				name, _ := m["Name"].(string)
				if unit, _ := m["Unit"].(string); !emfUnits[unit] {
					t.Errorf("%s: metric %q has unit %q", where, name, unit)
				}
				switch v := doc[name].(type) {
				case float64:
				case []any:
					if len(v) == 0 || len(v) > 100 {
						t.Errorf("%s: metric %q has %d values, want 1 to 100", where, name, len(v))
					}
					for _, x := range v {
						if _, ok := x.(float64); !ok {
							t.Errorf("%s: metric %q has a value that is not a number: %v", where, name, x)
						}
					}
				default:
					t.Errorf("%s: metric %q has no number at the top level (%v)", where, name, doc[name])
				}
				used[name] = true
			}
		}
		for key := range doc {
			if !used[key] {
				t.Errorf("%s: top-level key %q is neither a dimension nor a metric", where, key)
			}
		}
	}
	return docs
}

func ExampleRecorder() {
	var out bytes.Buffer // os.Stdout in Lambda
	r := New(&out, Namespace, map[string]string{DimensionFunction: "apinizer-rotation-rotate"})
	r.s.now = func() time.Time { return at }

	r.Count(RotationsSucceeded, 1)
	r.Milliseconds(ApinizerLatency, 840*time.Millisecond)
	r.With(DimensionReason, "rejected").Count(JobsDeadLettered, 1)
	if err := r.Flush(); err != nil {
		fmt.Println(err)
	}
	fmt.Print(out.String())
	// Output:
	// {"_aws":{"Timestamp":1796292000123,"CloudWatchMetrics":[{"Namespace":"ApinizerRotation","Dimensions":[["Function"]],"Metrics":[{"Name":"ApinizerLatency","Unit":"Milliseconds"},{"Name":"RotationsSucceeded","Unit":"Count"}]}]},"Function":"apinizer-rotation-rotate","ApinizerLatency":840,"RotationsSucceeded":1}
	// {"_aws":{"Timestamp":1796292000123,"CloudWatchMetrics":[{"Namespace":"ApinizerRotation","Dimensions":[["Function","Reason"],["Function"]],"Metrics":[{"Name":"JobsDeadLettered","Unit":"Count"}]}]},"Function":"apinizer-rotation-rotate","Reason":"rejected","JobsDeadLettered":1}
}

func TestANilRecorderFromAPlainContextRecordsNothing(t *testing.T) {
	r := FromContext(context.Background())
	r.Count(RotationsSucceeded, 1)
	r.Milliseconds(ApinizerLatency, time.Second)
	r.With(DimensionReason, "x").Count(JobsDeadLettered, 1)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rec := New(&buf, Namespace, map[string]string{DimensionFunction: "f"})
	FromContext(NewContext(context.Background(), rec)).Count(RotationsSucceeded, 2)
	if err := rec.Flush(); err != nil || !strings.Contains(buf.String(), `"RotationsSucceeded":2`) {
		t.Errorf("the context's recorder did not record: %v %s", err, buf.String())
	}
}
