package jobqueue

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/bulk"
)

// maxLine bounds one line of an id list; a secret id is at most 2048
// characters.
const maxLine = 64 << 10

// ReadIDs reads secret ids one per line. Surrounding white space is
// trimmed; blank lines and lines starting with '#' are skipped. A line
// holding anything else is returned as it is, to be judged as a job later.
func ReadIDs(r io.Reader) ([]string, error) {
	var ids []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF") // a byte order mark
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ids = append(ids, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading secret ids: line %d: %w", n+1, err)
	}
	return ids, nil
}

// Dedupe returns ids without repeats, in the order each first appears,
// and how many repeats it dropped. Ids naming the same secret, by name or
// by ARN (bulk.SameSecret), are repeats; the form seen first is kept.
func Dedupe(ids []string) (unique []string, duplicates int) {
	seen := make(map[string]bool, len(ids))
	unique = make([]string, 0, len(ids))
	for _, id := range ids {
		name := bulk.SecretName(id)
		if seen[name] {
			duplicates++
			continue
		}
		seen[name] = true
		unique = append(unique, id)
	}
	return unique, duplicates
}

// RunJobID returns the job id of one enqueue run started at t:
// "enqueue-" and the UTC time to the second. Every job of the run carries
// it, so that a secret listed twice, or sent twice after a retry, is
// rotated once.
func RunJobID(t time.Time) string {
	return "enqueue-" + t.UTC().Format("20060102T150405Z")
}
