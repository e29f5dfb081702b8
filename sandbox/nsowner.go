//go:build linux

package sandbox

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// The kernel charges what the processes of a user namespace hold (the
// counts it keeps per user: processes for RLIMIT_NPROC, queued signals
// for RLIMIT_SIGPENDING, message queue bytes, locked memory, inotify
// instances and watches, namespaces) to their user in that namespace,
// and then up the chain, to the namespace's owner in the parent
// namespace, against the parent's limits: the effective uid of the
// process that created it. A sandbox of host root's whose namespace host
// root created would count against host root's own limits, and could use
// them up (all of root's 128 inotify instances, all of root's pending
// signals, so that root's timer_create fails). So the namespace is
// created by a thread whose effective uid is the sandbox's own owner id,
// a host id no one else has (see idlease.go).

// asNamespaceOwner runs f, which clones the sandbox's user namespace, on
// the calling thread (locked, a spawner's) with its effective uid set to
// owner, so that the namespace belongs to owner; zero runs f as it is. Only
// the effective uid changes: the real and saved uids stay root's, the
// file system uid goes back to root's (the child opens its own /proc
// files before it takes its ids), the capabilities are raised again, and
// RLIMIT_NPROC of the new namespace stays unenforced, as the kernel does
// for a namespace that host root makes. The thread's credentials are put
// back afterwards; a *taintedThread error says that they could not be,
// and the thread must end. The change of credentials clears the dumpable
// flag of the process, which sharing gives back.
func asNamespaceOwner(owner int, f func() error) error {
	if owner == 0 {
		return f()
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		return setupErr("id-owner", "", err)
	}
	sharing.begin()
	defer sharing.end()
	if err := setresuid(-1, owner, -1); err != nil {
		return setupErr("id-owner", "", err)
	}
	restore := func() error {
		if err := setresuid(-1, 0, -1); err != nil {
			return err
		}
		return unix.Capset(&hdr, &caps[0])
	}
	// Back to the file system uid of root, and its capabilities.
	unix.Setfsuid(0)
	if fs, _ := unix.SetfsuidRetUid(-1); fs != 0 {
		err := fmt.Errorf("the file system uid is %d, not 0", fs)
		if rerr := restore(); rerr != nil {
			return &taintedThread{setupErr("id-owner", "", rerr)}
		}
		return setupErr("id-owner", "", err)
	}
	if err := unix.Capset(&hdr, &caps[0]); err != nil {
		if rerr := restore(); rerr != nil {
			return &taintedThread{setupErr("id-owner", "", rerr)}
		}
		return setupErr("id-owner", "", err)
	}
	err := f()
	if rerr := restore(); rerr != nil {
		return &taintedThread{setupErr("id-owner", "", rerr)}
	}
	return err
}

// setresuid sets the calling thread's ids alone (the syscall package's
// Setresuid sets every thread's); -1 leaves an id as it is.
func setresuid(r, e, s int) error {
	_, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(r), uintptr(e), uintptr(s))
	if errno != 0 {
		return errno
	}
	return nil
}

// sharing counts the raw children that share the owner's memory, to give
// the owner back its dumpable flag once none does. A child's change of
// credentials, and its own PR_SET_DUMPABLE, clear the flag of the memory
// it shares, the owner's; restored while another child still runs its
// setup, it would make that child, and through it the owner, open to a
// ptrace by a process of the same ids.
var sharing shareCount

type shareCount struct {
	mu       sync.Mutex
	n        int
	dumpable bool // the owner's flag before the first of the n
}

func (c *shareCount) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		c.dumpable = d == 1
	}
	c.n++
}

// end is called once a child has left the owner's memory (exec'd or
// died).
func (c *shareCount) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n == 0 && c.dumpable {
		unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0)
	}
}
