//go:build linux

package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Action is what a filter does with a system call: the SECCOMP_RET_* value
// the filter returns to the kernel. The zero Action is not a valid action;
// it stands for "not set" so that a forgotten field is an error rather than
// SECCOMP_RET_KILL_THREAD, which has the value zero and which this package
// never produces (it would kill one thread of a multi-threaded program, such
// as any Go program, and leave the rest running).
type Action uint32

// The actions a policy can take. Errno builds the remaining one.
const (
	// Allow lets the system call run.
	Allow Action = unix.SECCOMP_RET_ALLOW
	// KillProcess kills the whole process with SIGSYS, as if by an
	// uncatchable signal; it dumps core when core dumps are enabled. It
	// needs Linux 4.14.
	KillProcess Action = unix.SECCOMP_RET_KILL_PROCESS
	// Trap sends the thread a SIGSYS that it may catch, and skips the call.
	Trap Action = unix.SECCOMP_RET_TRAP
	// Log lets the system call run and records it in the audit log. It needs
	// Linux 4.14.
	Log Action = unix.SECCOMP_RET_LOG
)

// maxErrno is the largest error number the kernel passes back from a
// filter (MAX_ERRNO); larger values are clamped by the kernel.
const maxErrno = 4095

// Errno returns the action that skips the system call and makes it fail
// with err, for example Errno(unix.EPERM). err must be between 1 and 4095.
func Errno(err unix.Errno) Action {
	return Action(unix.SECCOMP_RET_ERRNO | uint32(err))
}

// kind returns the action part of a, without its data.
func (a Action) kind() uint32 { return uint32(a) & unix.SECCOMP_RET_ACTION_FULL }

// errno returns the error number of an Errno action.
func (a Action) errno() unix.Errno { return unix.Errno(uint32(a) & unix.SECCOMP_RET_DATA) }

// validate reports whether a is an action that policies may use.
func (a Action) validate() error {
	switch {
	case a == 0:
		return fmt.Errorf("action not set")
	case a == Allow, a == KillProcess, a == Trap, a == Log:
		return nil
	case a.kind() == unix.SECCOMP_RET_ERRNO:
		if e := a.errno(); e == 0 || e > maxErrno {
			return fmt.Errorf("errno action with error number %d: must be between 1 and %d", e, maxErrno)
		}
		return nil
	}
	return fmt.Errorf("action %#x is not supported", uint32(a))
}

// precedence orders actions from the most to the least restrictive, the
// way the kernel orders the results of stacked filters: kill, trap, errno,
// log, allow. When several rules match one system call, the most
// restrictive action wins.
func (a Action) precedence() int {
	switch a.kind() {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return 0
	case unix.SECCOMP_RET_TRAP:
		return 1
	case unix.SECCOMP_RET_ERRNO:
		return 2
	case unix.SECCOMP_RET_LOG:
		return 3
	}
	return 4
}

// String returns the action's name: "allow", "kill-process", "trap", "log",
// or "errno(EPERM)" with the error number's name.
func (a Action) String() string {
	switch {
	case a == Allow:
		return "allow"
	case a == KillProcess:
		return "kill-process"
	case a == Trap:
		return "trap"
	case a == Log:
		return "log"
	case a.kind() == unix.SECCOMP_RET_ERRNO:
		if name := unix.ErrnoName(a.errno()); name != "" {
			return "errno(" + name + ")"
		}
		return fmt.Sprintf("errno(%d)", a.errno())
	case a == 0:
		return "unset"
	}
	return fmt.Sprintf("action(%#x)", uint32(a))
}
