package sandbox

import (
	"fmt"
	"syscall"
	"time"
)

// Reason says how a sandbox's run ended.
type Reason int

// The reasons a run ends; OOMKilled is read from the group's OOM counter.
const (
	Exited        Reason = iota + 1 // the command exited; see ExitCode
	Signaled                        // a signal killed it; see Signal
	Timeout                         // Config.Timeout passed
	Cancelled                       // the context was done
	OOMKilled                       // Limits.Memory was reached
	CPUTimeLimit                    // Limits.CPUTime was used up
	OutputLimit                     // Limits.Output was exceeded
	Closed                          // Close ended a sandbox without a command
	SeccompKilled                   // the seccomp filter killed it
)

var reasonNames = map[Reason]string{
	Exited:        "exited",
	Signaled:      "signaled",
	Timeout:       "timeout",
	Cancelled:     "cancelled",
	OOMKilled:     "oom-killed",
	CPUTimeLimit:  "cpu-time-limit",
	OutputLimit:   "output-limit",
	Closed:        "closed",
	SeccompKilled: "seccomp-killed",
}

func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// MarshalText writes the reason's name, so that a Result reads well as JSON.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Result is how a run ended and what it used.
type Result struct {
	Reason       Reason         `json:"reason"`
	ExitCode     int            `json:"exitCode"`         // -1 unless it exited
	Signal       syscall.Signal `json:"signal,omitempty"` // SIGKILL for a limit
	Wall         time.Duration  `json:"wall"`             // from Start
	UserTime     time.Duration  `json:"userTime"`         // times, MaxRSS: all processes with a cgroup, else those ended first
	SystemTime   time.Duration  `json:"systemTime"`
	MaxRSS       int64          `json:"maxRSS"`
	MemoryPeak   int64          `json:"memoryPeak,omitempty"` // peaks and counts need a cgroup
	PidsPeak     int64          `json:"pidsPeak,omitempty"`
	ForksRefused int64          `json:"forksRefused,omitempty"` // forks over Limits.Pids
	OOMKills     int64          `json:"oomKills,omitempty"`
	Notes        []string       `json:"notes,omitempty"` // what Limits.BestEffort did
}

// Success reports an exit with status 0, or a Close of a commandless sandbox.
func (r *Result) Success() bool {
	return r.Reason == Exited && r.ExitCode == 0 || r.Reason == Closed
}

// String describes the result in a few words: "exited with status 1".
func (r *Result) String() string {
	switch r.Reason {
	case Exited:
		return fmt.Sprintf("exited with status %d", r.ExitCode)
	case Signaled:
		return "killed by " + signalName(r.Signal)
	case Timeout:
		return fmt.Sprintf("timed out after %v", r.Wall.Round(time.Millisecond))
	case Cancelled:
		return "cancelled"
	case Closed:
		return "closed"
	case OOMKilled:
		return fmt.Sprintf("killed: out of memory (peak %.1f MiB)", float64(r.MemoryPeak)/(1<<20))
	case CPUTimeLimit:
		return fmt.Sprintf("killed: CPU time limit exceeded (%v of CPU)", (r.UserTime + r.SystemTime).Round(time.Millisecond))
	case OutputLimit:
		return "killed: output limit exceeded"
	case SeccompKilled:
		return "killed by the seccomp filter (SIGSYS)"
	}
	return r.Reason.String()
}
