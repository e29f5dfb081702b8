//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoNewPrivs is returned by Load when the calling thread has not set
// no_new_privs. Set it first with
// unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0): without it the kernel
// only lets a thread with CAP_SYS_ADMIN install a filter, and a sandbox
// must not rely on that.
var ErrNoNewPrivs = errors.New("seccomp: no_new_privs is not set on the calling thread")

// LoadFlags are flags of the seccomp(2) system call.
type LoadFlags uint

// The flags that Load accepts.
const (
	// FlagTSync installs the filter on every thread of the process, not
	// only the calling one, and fails if some thread cannot take it. The
	// sandbox's init stage uses it so that no Go runtime thread is left
	// unfiltered before execve. It needs Linux 3.17.
	FlagTSync LoadFlags = unix.SECCOMP_FILTER_FLAG_TSYNC
	// FlagLog records every action other than allow in the audit log. It
	// needs Linux 4.14.
	FlagLog LoadFlags = unix.SECCOMP_FILTER_FLAG_LOG
	// FlagPrivileged, which is not the kernel's, skips the check for
	// no_new_privs: the caller holds CAP_SYS_ADMIN in its user namespace,
	// which lets the kernel install the filter without it, and means to
	// leave no_new_privs unset (sandbox.Security.AllowNewPrivileges).
	FlagPrivileged LoadFlags = 1 << 31
)

// Load installs f on the calling thread with
// seccomp(SECCOMP_SET_MODE_FILTER, flags), or on every thread with
// FlagTSync. It is irreversible: filters can be added but never removed,
// and they are inherited across fork, clone and execve.
//
// Call it on a goroutine locked to its OS thread (runtime.LockOSThread)
// that has already set no_new_privs; otherwise Load returns ErrNoNewPrivs
// and installs nothing. Load makes two system calls and does not allocate
// on success, so it belongs at the very end of a start path; compile the
// filter beforehand. A filter compiled for another architecture is refused,
// since it would kill the process at its next system call.
//
// Load needs Linux 4.14 (for the kill-process action); see Supported.
func Load(f *Filter, flags LoadFlags) error {
	if f == nil || len(f.prog) == 0 {
		return errors.New("seccomp: load: empty filter")
	}
	if native, err := archFor(""); err != nil {
		return err
	} else if native.auditArch != f.auditArch {
		return fmt.Errorf("seccomp: load: filter is for audit architecture %#x, this process is %s (%#x)", f.auditArch, native.goarch, native.auditArch)
	}
	if flags&^(FlagTSync|FlagLog|FlagPrivileged) != 0 {
		return fmt.Errorf("seccomp: load: unsupported flags %#x", uint(flags&^(FlagTSync|FlagLog|FlagPrivileged)))
	}
	if flags&FlagPrivileged == 0 {
		nnp, _, errno := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_GET_NO_NEW_PRIVS, 0, 0)
		if errno != 0 {
			return fmt.Errorf("seccomp: load: prctl(PR_GET_NO_NEW_PRIVS): %w", errno)
		}
		if nnp != 1 {
			return ErrNoNewPrivs
		}
	}
	flags &^= FlagPrivileged
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&f.fprog)))
	runtime.KeepAlive(f)
	if errno != 0 {
		return fmt.Errorf("seccomp: load: seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	if r != 0 {
		// With TSYNC, a positive result is the id of a thread whose
		// filters have diverged and that could not be synchronised.
		return fmt.Errorf("seccomp: load: thread %d could not be synchronised", r)
	}
	return nil
}

// Supported reports whether this kernel can load the filters this package
// compiles. It returns nil, or an error wrapping errors.ErrUnsupported that
// names what is missing. The answer is probed once and cached.
func Supported() error { return supported() }

var supported = sync.OnceValue(func() error {
	if _, err := archFor(""); err != nil {
		return err
	}
	for _, a := range []Action{KillProcess, Errno(unix.EPERM), Allow} {
		action := uint32(a.kind())
		_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
		switch {
		case errno == unix.ENOSYS:
			return fmt.Errorf("seccomp: the seccomp system call (Linux 3.17): %w", errors.ErrUnsupported)
		case errno == unix.EINVAL, errno == unix.EOPNOTSUPP:
			return fmt.Errorf("seccomp: action %v (Linux 4.14): %w", a, errors.ErrUnsupported)
		case errno != 0:
			return fmt.Errorf("seccomp: probe action %v: %w", a, errno)
		}
	}
	return nil
})
