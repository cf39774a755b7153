package jobqueue

import (
	"fmt"
	"io"
	"time"
)

// DefaultProgressInterval is the least time between two progress lines.
const DefaultProgressInterval = time.Second

// progress writes a line of counts to w at most once per interval, and a
// last one at the end. A nil *progress writes nothing.
type progress struct {
	w        io.Writer
	interval time.Duration
	now      func() time.Time
	last     time.Time
	lastLine string
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		return nil
	}
	p := &progress{w: w, interval: DefaultProgressInterval, now: time.Now}
	p.last = p.now()
	return p
}

// update writes the line that line returns, when the interval has passed.
func (p *progress) update(line func() string) {
	if p == nil {
		return
	}
	if now := p.now(); now.Sub(p.last) >= p.interval {
		p.last, p.lastLine = now, line()
		_, _ = fmt.Fprintln(p.w, p.lastLine)
	}
}

// done writes the last line, unless update just wrote the same.
func (p *progress) done(line string) {
	if p != nil && line != p.lastLine {
		_, _ = fmt.Fprintln(p.w, line)
	}
}
