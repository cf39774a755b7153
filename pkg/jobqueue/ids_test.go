package jobqueue

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestReadIDs(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"one per line", "a\nb\nc\n", []string{"a", "b", "c"}},
		{"no newline at the end", "a\nb", []string{"a", "b"}},
		{"blank lines and comments are skipped", "# leaked on 3 Dec\n\na\n   \n  # indented\nb\n",
			[]string{"a", "b"}},
		{"white space and CRLF are trimmed", "  a  \r\n\tb\r\n", []string{"a", "b"}},
		{"a byte order mark is dropped", "\uFEFFa\nb\n", []string{"a", "b"}},
		{"a '#' inside an id is kept", "a#1\n", []string{"a#1"}},
		{"repeats are kept for the dedupe to count", "a\na\n", []string{"a", "a"}},
		{"an ARN is an id", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf\n",
			[]string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadIDs(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("ReadIDs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadIDsRefusesAHugeLine(t *testing.T) {
	_, err := ReadIDs(strings.NewReader("a\n" + strings.Repeat("x", maxLine+1) + "\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error = %v, want one naming line 2", err)
	}
}

func TestDedupe(t *testing.T) {
	got, dups := Dedupe([]string{"b", "a", "b", "c", "a", "b"})
	if fmt.Sprint(got) != "[b a c]" || dups != 3 {
		t.Errorf("Dedupe = %v, %d", got, dups)
	}
}

func TestDedupeCountsASecretOnceByNameOrARN(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	got, dups := Dedupe([]string{
		"apinizer/o/a", arn + "apinizer/o/a-AbCdEf", // the name first: kept
		arn + "apinizer/o/b-AbCdEf", "apinizer/o/b", arn + "apinizer/o/b-XyZ123", // the ARN first
		arn + "apinizer/o/c-d.e_fg", "apinizer/o/c", // a partial ARN of another secret
	})
	want := []string{"apinizer/o/a", arn + "apinizer/o/b-AbCdEf", arn + "apinizer/o/c-d.e_fg",
		"apinizer/o/c"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) || dups != 3 {
		t.Errorf("Dedupe = %q, %d; want %q, 3", got, dups, want)
	}
}

func TestRunJobIDIsAValidJobID(t *testing.T) {
	id := RunJobID(time.Date(2026, 12, 3, 14, 5, 9, 0, time.FixedZone("x", 3*3600)))
	if id != "enqueue-20261203T110509Z" {
		t.Errorf("RunJobID = %q", id)
	}
	if err := CheckJobID(id); err != nil {
		t.Error(err)
	}
}
