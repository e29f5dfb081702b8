//go:build linux

// Package landlock restricts the file system and TCP access of the threads
// that a sandbox's processes are forked from, with the Landlock LSM
// (Linux 5.13). It is split the way go-landlock splits it: what to ask of
// a given kernel is decided by a pure function (Ruleset.ForABI), tested with
// tables, and a thin layer of system calls (Apply) enforces the result on
// the calling thread only.
//
// The calls are made directly through golang.org/x/sys/unix rather than
// through go-landlock: its syscall package imports libcap's psx, which in a
// cgo build wraps pthread_create and installs a signal handler in every
// program that links the sandbox, and its high-level API restricts every
// thread of the process, which the init stage must not do (its other
// threads reap and signal the sandbox's processes).
//
// A Landlock domain is inherited by every child and across execve, and can
// never be lifted. Apply it only on a locked thread that is about to fork
// the sandboxed processes.
package landlock

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// File system access rights, as the kernel numbers them. Each needs the
// ABI version given in the comment.
const (
	Execute    = unix.LANDLOCK_ACCESS_FS_EXECUTE     // 1
	WriteFile  = unix.LANDLOCK_ACCESS_FS_WRITE_FILE  // 1
	ReadFile   = unix.LANDLOCK_ACCESS_FS_READ_FILE   // 1
	ReadDir    = unix.LANDLOCK_ACCESS_FS_READ_DIR    // 1
	RemoveDir  = unix.LANDLOCK_ACCESS_FS_REMOVE_DIR  // 1
	RemoveFile = unix.LANDLOCK_ACCESS_FS_REMOVE_FILE // 1
	MakeChar   = unix.LANDLOCK_ACCESS_FS_MAKE_CHAR   // 1
	MakeDir    = unix.LANDLOCK_ACCESS_FS_MAKE_DIR    // 1
	MakeReg    = unix.LANDLOCK_ACCESS_FS_MAKE_REG    // 1
	MakeSock   = unix.LANDLOCK_ACCESS_FS_MAKE_SOCK   // 1
	MakeFifo   = unix.LANDLOCK_ACCESS_FS_MAKE_FIFO   // 1
	MakeBlock  = unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK  // 1
	MakeSym    = unix.LANDLOCK_ACCESS_FS_MAKE_SYM    // 1
	Refer      = unix.LANDLOCK_ACCESS_FS_REFER       // 2
	Truncate   = unix.LANDLOCK_ACCESS_FS_TRUNCATE    // 3
	IoctlDev   = unix.LANDLOCK_ACCESS_FS_IOCTL_DEV   // 5
)

// TCP access rights (ABI 4).
const (
	BindTCP    = unix.LANDLOCK_ACCESS_NET_BIND_TCP
	ConnectTCP = unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
)

// Scopes (ABI 6): what a process in the domain may not reach outside it.
const (
	ScopeAbstractUnix = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
	ScopeSignal       = unix.LANDLOCK_SCOPE_SIGNAL
)

// Groups of file system rights that the sandbox hands out.
const (
	// Read is what a read-only mount allows: reading files and
	// directories, and executing files.
	Read = Execute | ReadFile | ReadDir
	// Write is what a writable mount allows on top of Read.
	Write = WriteFile | RemoveDir | RemoveFile | MakeChar | MakeDir | MakeReg |
		MakeSock | MakeFifo | MakeBlock | MakeSym | Refer | Truncate
	// FileRights are the rights that apply to a file rather than a
	// directory: a rule on a file may hold only these.
	FileRights = Execute | WriteFile | ReadFile | Truncate | IoctlDev
	// AllFS is every file system right this package knows.
	AllFS = Read | Write | IoctlDev
)

// PathRule allows Access beneath Path, a path inside the sandbox's root.
type PathRule struct {
	Path   string
	Access uint64
}

// PortRule allows Access (BindTCP, ConnectTCP) on a TCP port.
type PortRule struct {
	Port   int
	Access uint64
}

// Ruleset is a whole Landlock domain: the rights it handles (everything
// handled and not allowed by a rule is denied), the rules, and the scopes.
type Ruleset struct {
	HandledFS  uint64
	HandledNet uint64
	Scoped     uint64
	Paths      []PathRule
	Ports      []PortRule
}

// fsRights returns the file system rights that ABI abi knows.
func fsRights(abi int) uint64 {
	r := uint64(Read | WriteFile | RemoveDir | RemoveFile | MakeChar | MakeDir |
		MakeReg | MakeSock | MakeFifo | MakeBlock | MakeSym)
	if abi >= 2 {
		r |= Refer
	}
	if abi >= 3 {
		r |= Truncate
	}
	if abi >= 5 {
		r |= IoctlDev
	}
	return r
}

// ForABI returns the part of r that a kernel with Landlock ABI abi can
// enforce, and a note for each part it cannot; ok is false when nothing of
// r can be enforced. Rights that the kernel does not know are dropped from
// what is handled, which leaves them allowed, as go-landlock's best-effort
// mode does. One case drops the file system rules altogether: a ruleset
// whose rules allow Refer on a kernel before ABI 2, where renaming or
// linking a file into another directory would always be denied.
func (r Ruleset) ForABI(abi int) (out Ruleset, notes []string, ok bool) {
	if abi <= 0 {
		return Ruleset{}, []string{"landlock: this kernel has no Landlock (Linux 5.13 with landlock in the lsm= list)"}, false
	}
	out.HandledFS = r.HandledFS & fsRights(abi)
	if dropped := r.HandledFS &^ out.HandledFS; dropped != 0 {
		notes = append(notes, fmt.Sprintf("landlock: ABI %d does not handle file system rights %#x", abi, dropped))
	}
	needRefer := false
	for _, p := range r.Paths {
		needRefer = needRefer || p.Access&Refer != 0
	}
	if needRefer && abi < 2 {
		notes = append(notes, "landlock: file system rules need ABI 2 (moving files between directories); not applied")
		out.HandledFS = 0
	}
	if out.HandledFS != 0 {
		for _, p := range r.Paths {
			if a := p.Access & out.HandledFS; a != 0 {
				out.Paths = append(out.Paths, PathRule{Path: p.Path, Access: a})
			}
		}
	}
	if r.HandledNet != 0 {
		if abi >= 4 {
			out.HandledNet = r.HandledNet
			out.Ports = append(out.Ports, r.Ports...)
		} else {
			notes = append(notes, "landlock: TCP rules need ABI 4 (Linux 6.7); not applied")
		}
	}
	if r.Scoped != 0 {
		if abi >= 6 {
			out.Scoped = r.Scoped
		} else {
			notes = append(notes, "landlock: scopes (abstract unix sockets, signals) need ABI 6 (Linux 6.12); not applied")
		}
	}
	ok = out.HandledFS != 0 || out.HandledNet != 0 || out.Scoped != 0
	return out, notes, ok
}
