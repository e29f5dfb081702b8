package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// progress is the line the harness keeps up to date while it runs: on a
// terminal one line rewritten in place, elsewhere (a CI log) a line per
// step.
type progress struct {
	w           io.Writer
	tty         bool
	done, total int
	start       time.Time
	width       int // of the last line drawn on a terminal
}

func newProgress(f *os.File, total int) *progress {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return &progress{w: f, tty: err == nil, total: total, start: time.Now()}
}

// step says what the harness does next and counts it.
func (p *progress) step(format string, args ...any) {
	p.done++
	line := fmt.Sprintf("[%3d/%d %4.0fs] %s", p.done, p.total, time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := max(0, p.width-len(line))
	fmt.Fprintf(p.w, "\r%s%*s", line, pad, "")
	p.width = len(line)
}

// finish ends the progress line.
func (p *progress) finish() {
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
	}
}

// note prints a line of its own, above the progress line on a terminal.
func (p *progress) note(format string, args ...any) {
	if p.tty && p.width > 0 {
		fmt.Fprintf(p.w, "\r%*s\r", p.width, "")
		p.width = 0
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}
