package sandbox

import (
	"fmt"
	"syscall"
	"time"
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
	// OOMKilled: the sandbox reached Limits.Memory and the kernel's OOM
	// killer killed the command (or the init stage, which ends the
	// sandbox). It is decided from the control group's OOM counter, never
	// from the SIGKILL alone.
	OOMKilled
	// CPUTimeLimit: the sandbox used up Limits.CPUTime and was killed, or
	// its command ended after using more.
	CPUTimeLimit
	// OutputLimit: the command wrote more than Limits.Output bytes and the
	// sandbox was killed.
	OutputLimit
	// Closed: a sandbox without a command of its own was ended by Close.
	Closed
	// SeccompKilled: the seccomp filter killed the command for a system
	// call its policy kills (SeccompKill, or any call through another ABI,
	// such as int 0x80 on amd64). It is decided from the SIGSYS that ended
	// the command; a command that sends itself SIGSYS with kill reads the
	// same, since nothing in the wait status tells them apart.
	SeccompKilled
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
	Reason Reason `json:"reason"`
	// ExitCode is the command's exit status when it exited on its own
	// (Reason Exited, or a limit's Reason for a command that ended just as
	// it exceeded the limit), and -1 otherwise.
	ExitCode int `json:"exitCode"`
	// Signal is the signal that killed the command when Reason is Signaled,
	// and SIGKILL when the sandbox was killed for a Timeout, a
	// cancellation or a limit.
	Signal syscall.Signal `json:"signal,omitempty"`
	// Wall is the time from Start to the end of the sandbox.
	Wall time.Duration `json:"wall"`
	// UserTime and SystemTime are the CPU time of the sandbox's processes.
	// With a control group (see Limits) they come from it and cover every
	// process, the init stage's start-up included; without one, they cover
	// the processes that ended before the sandbox did.
	UserTime   time.Duration `json:"userTime"`
	SystemTime time.Duration `json:"systemTime"`
	// MaxRSS is the largest resident set size of any one of those
	// processes, in bytes.
	MaxRSS int64 `json:"maxRSS"`

	// The figures below come from the sandbox's control group, and are
	// zero for a sandbox without one (see Limits).

	// MemoryPeak is the most memory the sandbox used at once, in bytes
	// (memory.peak on cgroup v2 from Linux 5.19, memory.max_usage_in_bytes
	// on v1; on older v2 kernels a lower bound).
	MemoryPeak int64 `json:"memoryPeak,omitempty"`
	// PidsPeak is the most tasks the sandbox held at once (pids.peak, Linux
	// 6.1; on older kernels a lower bound).
	PidsPeak int64 `json:"pidsPeak,omitempty"`
	// ForksRefused counts the forks and clones in the sandbox that failed
	// because it held Limits.Pids tasks.
	ForksRefused int64 `json:"forksRefused,omitempty"`
	// OOMKills counts the processes of the sandbox that the OOM killer
	// killed; one that was not the command leaves the Reason alone.
	OOMKills int64 `json:"oomKills,omitempty"`

	// Notes say what best effort applied instead of limits this host would
	// not let the caller apply (see Limits.BestEffort).
	Notes []string `json:"notes,omitempty"`
}

// Success reports whether the command exited with status 0, or a sandbox
// without a command was closed.
func (r *Result) Success() bool {
	return r.Reason == Exited && r.ExitCode == 0 || r.Reason == Closed
}

// String describes the result in a few words: "exited with status 1",
// "killed by SIGSEGV", "timed out after 2s", "killed: out of memory (peak
// 64.0 MiB)".
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
