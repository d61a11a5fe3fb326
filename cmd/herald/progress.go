package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar on a terminal, at most ten times a
// second; on anything else it draws nothing. With a unit (counting) it
// also shows how many items are done and how many a second.
type progress struct {
	w     io.Writer
	on    bool
	label string
	last  time.Time
	drawn bool
	// unit names what items counts; "" shows no count.
	unit  string
	items int64
	start time.Time
}

func newProgress(w io.Writer, terminal bool, label string) *progress {
	return &progress{w: w, on: terminal, label: label, start: time.Now()}
}

// counting makes the bar show a count of unit and its rate too.
func (p *progress) counting(unit string) *progress {
	p.unit = unit
	return p
}

// add counts n more items done.
func (p *progress) add(n int) { p.items += int64(n) }

func (p *progress) update(done, total int64) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.draw(done, total)
}

func (p *progress) draw(done, total int64) {
	p.last = time.Now()
	p.drawn = true
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	fill := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%%", p.label, strings.Repeat("#", fill), strings.Repeat("-", width-fill), frac*100)
	if p.unit != "" {
		rate := float64(p.items) / max(time.Since(p.start).Seconds(), 1e-3)
		fmt.Fprintf(p.w, "  %d %s, %.0f/s ", p.items, p.unit, rate)
	}
}

// clear removes the bar so a message can take the line.
func (p *progress) clear() {
	if p.on && p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", len(p.label)+40+len(p.unit)+40))
		p.drawn = false
	}
}

func (p *progress) done(done, total int64) {
	if !p.on {
		return
	}
	p.draw(done, total)
	fmt.Fprintln(p.w)
}
