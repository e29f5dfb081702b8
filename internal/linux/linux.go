//go:build linux

// Package linux holds the small Linux primitives the init stage needs that
// golang.org/x/sys/unix does not offer as one call: dropping capabilities,
// bringing up the loopback interface, time namespace offsets and descriptor
// hygiene. Functions that act on "the calling thread" must run on a thread
// locked with runtime.LockOSThread.
package linux

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// LastCap returns the highest capability number this kernel knows. It asks
// the kernel with PR_CAPBSET_READ, which fails for an unknown capability,
// rather than through /proc, which the init stage may not have.
var LastCap = sync.OnceValue(func() int {
	last := -1
	for c := 0; c < 64; c++ {
		if _, _, errno := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_READ, uintptr(c), 0); errno != 0 {
			break
		}
		last = c
	}
	if last < 0 {
		return unix.CAP_LAST_CAP
	}
	return last
})

// DropBoundingSet removes every capability not in keep from the calling
// thread's bounding set, so that no later execve can gain them. It needs
// CAP_SETPCAP.
func DropBoundingSet(keep []int) error {
	// Raw system calls: these are quick, and a plain syscall would let the
	// runtime hand the locked thread's processor around 41 times. The loop
	// ends at the first capability the kernel does not know (EINVAL; every
	// kernel this package supports knows CAP_AUDIT_READ) rather than asking
	// LastCap, whose probe would cost a fresh init process as many system
	// calls again.
	for c := 0; c < 64; c++ {
		if slices.Contains(keep, c) {
			continue
		}
		_, _, errno := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0)
		if errno == unix.EINVAL && c > unix.CAP_AUDIT_READ {
			return nil
		}
		if errno != 0 {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, errno)
		}
	}
	return nil
}

// SetInheritable sets the calling thread's inheritable set to keep, leaving
// the effective and permitted sets alone, and clears its ambient set.
func SetInheritable(keep []int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	for _, c := range keep {
		data[c/32].Inheritable |= 1 << (uint(c) % 32)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	return nil
}

// SetNoNewPrivs sets no_new_privs on the calling thread; its children
// inherit it and no execve can then grant privileges.
func SetNoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// SetDumpable sets whether the process may be dumped or ptraced by
// processes without CAP_SYS_PTRACE, and who owns its /proc files.
func SetDumpable(dumpable bool) error {
	v := uintptr(0)
	if dumpable {
		v = 1
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, v, 0, 0, 0); err != nil {
		return fmt.Errorf("set dumpable: %w", err)
	}
	return nil
}

// LoopbackUp brings up the loopback interface of the calling thread's
// network namespace.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: set flags: %w", err)
	}
	return nil
}

// NewTimeNamespace unshares a time namespace for the calling thread's future
// children and moves its monotonic and boot-time clocks back so that, inside,
// they start about a second after zero. It needs CAP_SYS_TIME and Linux 5.6.
//
// It must run on the main thread: the offsets file belongs to the process,
// and acts on the namespace its thread-group leader unshared.
func NewTimeNamespace() error {
	if unix.Gettid() != unix.Getpid() {
		return errors.New("time namespace: must be created on the main thread")
	}
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	offsets, err := TimeNamespaceOffsets()
	if err != nil {
		return err
	}
	f, err := os.OpenFile("/proc/self/timens_offsets", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("time namespace offsets: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(offsets); err != nil {
		return fmt.Errorf("time namespace offsets: %w", err)
	}
	return nil
}

// TimeNamespaceOffsets returns what a new time namespace's
// timens_offsets take to start its monotonic and boot-time clocks near
// zero: whole seconds only (the file takes seconds and nanoseconds), with
// one second of margin that keeps both clocks positive.
func TimeNamespaceOffsets() (string, error) {
	var mono, boot unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return "", err
	}
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		return "", err
	}
	return fmt.Sprintf("monotonic %d 0\nboottime %d 0\n", -(mono.Sec - 1), -(boot.Sec - 1)), nil
}

// CloseOnExecFrom marks every descriptor from fd up close-on-exec.
func CloseOnExecFrom(fd int) error {
	if err := unix.CloseRange(uint(fd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	return nil
}
