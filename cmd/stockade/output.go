package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stockade/stockade/sandbox"
)

// jsonResult is what --json prints: the sandbox's Result with its own
// field names (durations in nanoseconds, sizes in bytes), the signal's name,
// the CPU time, and stockade's exit status; or the error of a sandbox that
// did not start.
type jsonResult struct {
	*sandbox.Result
	SignalName string        `json:"signalName,omitempty"`
	CPUTime    time.Duration `json:"cpuTime,omitempty"`
	ExitStatus int           `json:"exitStatus"`
	Error      string        `json:"error,omitempty"`
}

// jsonOut is where --json writes: what openJSON opened, else stderr.
func (o *runOptions) jsonOut(std stdio) io.Writer {
	if o.jsonW != nil {
		return o.jsonW
	}
	return std.err
}

func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
		return
	}
	w.Write(append(b, '\n'))
}

// report tells how the command ended: as JSON with --json (on stderr or
// where --json=FILE|fd:N says), as a summary on stderr with -v, and
// otherwise on stderr in one line only when the sandbox ended it (a time or
// resource limit), since the exit status alone would not say why.
func (o *runOptions) report(io stdio, res *sandbox.Result, status int) {
	switch {
	case o.json:
		r := jsonResult{Result: res, CPUTime: res.UserTime + res.SystemTime, ExitStatus: status}
		if res.Signal != 0 {
			r.SignalName = signalName(res.Signal)
		}
		writeJSON(o.jsonOut(io), r)
	case o.verbose:
		fmt.Fprint(io.err, summary(res, status))
	case res.Reason != sandbox.Exited && res.Reason != sandbox.Signaled:
		fmt.Fprintf(io.err, "stockade: %s\n", res)
	}
}

// summary is the -v report: the verdict and what the sandbox used.
func summary(res *sandbox.Result, status int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stockade: %s", res)
	if res.Reason != sandbox.Exited {
		fmt.Fprintf(&b, " (exit status %d)", status)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  wall %v, cpu %v (user %v, system %v), max rss %s",
		round(res.Wall), round(res.UserTime+res.SystemTime), round(res.UserTime), round(res.SystemTime), mib(res.MaxRSS))
	if res.MemoryPeak > 0 {
		fmt.Fprintf(&b, ", memory peak %s", mib(res.MemoryPeak))
	}
	if res.PidsPeak > 0 {
		fmt.Fprintf(&b, ", tasks peak %d", res.PidsPeak)
	}
	if res.ForksRefused > 0 {
		fmt.Fprintf(&b, ", forks refused %d", res.ForksRefused)
	}
	if res.OOMKills > 0 {
		fmt.Fprintf(&b, ", oom kills %d", res.OOMKills)
	}
	b.WriteString("\n")
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
