package sandbox

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reason says how a sandbox's run ended.
type Reason int

// The reasons a run ends.
const (
	// Exited: the command exited on its own; ExitCode holds its status.
	Exited Reason = iota + 1
	// Signaled: the command was killed by Signal, which came from inside
	// the sandbox or from Kill.
	Signaled
	// Timeout: the run outlived Config.Timeout and was killed.
	Timeout
	// Cancelled: the context passed to Start or Run was done and the
	// sandbox was killed.
	Cancelled
	// Closed: a sandbox without a command of its own was ended by Close.
	Closed
)

var reasonNames = map[Reason]string{
	Exited:    "exited",
	Signaled:  "signaled",
	Timeout:   "timeout",
	Cancelled: "cancelled",
	Closed:    "closed",
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
	Reason Reason `json:"reason"`
	// ExitCode is the command's exit status when Reason is Exited, and -1
	// otherwise.
	ExitCode int `json:"exitCode"`
	// Signal is the signal that killed the command when Reason is Signaled,
	// and SIGKILL when the sandbox was killed for a Timeout or a
	// cancellation.
	Signal syscall.Signal `json:"signal,omitempty"`
	// Wall is the time from Start to the end of the sandbox.
	Wall time.Duration `json:"wall"`
	// UserTime and SystemTime are the CPU time of the sandbox's processes
	// that ended before the sandbox did.
	UserTime   time.Duration `json:"userTime"`
	SystemTime time.Duration `json:"systemTime"`
	// MaxRSS is the largest resident set size of any one of those
	// processes, in bytes.
	MaxRSS int64 `json:"maxRSS"`
}

// Success reports whether the command exited with status 0, or a sandbox
// without a command was closed.
func (r *Result) Success() bool {
	return r.Reason == Exited && r.ExitCode == 0 || r.Reason == Closed
}

// String describes the result in a few words: "exited with status 1",
// "killed by SIGSEGV", "timed out after 2s".
func (r *Result) String() string {
	switch r.Reason {
	case Exited:
		return fmt.Sprintf("exited with status %d", r.ExitCode)
	case Signaled:
		return "killed by " + unix.SignalName(r.Signal)
	case Timeout:
		return fmt.Sprintf("timed out after %v", r.Wall.Round(time.Millisecond))
	case Cancelled:
		return "cancelled"
	case Closed:
		return "closed"
	}
	return r.Reason.String()
}
