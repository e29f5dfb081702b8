//go:build linux

package seccomp

import (
	"slices"
	"sync"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

// DefaultPolicy returns the policy a sandbox gets unless it asks for
// another: Docker's default profile, evaluated for opts.Arch and the
// capabilities in opts.Caps, with stockade's own denials on top.
//
// Docker's profile is an allow-list (about 300 of the 385 system calls of
// amd64, some only with given arguments); everything else fails with EPERM, and calls made through another ABI (i386 or x32 on
// amd64, 32-bit ARM on arm64) kill the process. The denials below hold
// whatever capabilities the sandbox keeps, since rules that deny win over
// rules that allow:
//
//   - keyctl, add_key and request_key: the kernel keyrings are not
//     namespaced, so keys are a channel between sandboxes;
//   - socket(AF_VSOCK, ...): vsock reaches the host and its other guests
//     across network namespaces;
//   - io_uring_setup, io_uring_enter and io_uring_register: a large kernel
//     surface that bypasses this very filter for the operations it queues;
//   - ioctl(fd, TIOCSTI) and ioctl(fd, TIOCLINUX): typing into a terminal
//     the sandbox shares with its parent (CVE-2017-5226, CVE-2023-28100);
//   - the ioctls that change a terminal for whoever else uses it, and
//     outlive the sandbox (see terminalDenials): its line discipline,
//     termios, window size, controlling session, exclusive mode, flow,
//     modem lines and serial settings;
//   - userfaultfd, bpf, perf_event_open, kexec_load and kexec_file_load:
//     kernel surface a sandbox has no use for;
//   - the mount family (mount, umount2, fsopen, fsconfig, fsmount, fspick,
//     move_mount, open_tree, open_tree_attr, mount_setattr, pivot_root),
//     unshare, setns, and clone with any namespace flag: no nested
//     namespaces or mounts inside a sandbox;
//   - clone3, which fails with ENOSYS rather than EPERM: its flags sit
//     behind a pointer that a filter cannot read, and ENOSYS makes glibc
//     and Go fall back to clone, whose flags the filter checks.
//
// ptrace, process_vm_readv and process_vm_writev, which Docker allows, are
// also denied unless opts.Caps keeps CAP_SYS_PTRACE. A caller who needs
// anything denied here writes its own policy.
//
// DefaultPolicy returns a new Policy each time; compile it once (or use
// DefaultFilter). Its error reports a bad option.
func DefaultPolicy(opts ProfileOptions) (*Policy, error) {
	p, err := fromDocker(mobyseccomp.DefaultProfile(), opts)
	if err != nil {
		return nil, err
	}
	p.Rules = append(p.Rules, stockadeDenials(opts.OwnTerminal)...)
	if !slices.Contains(opts.Caps, "CAP_SYS_PTRACE") {
		p.Rules = append(p.Rules, Rule{
			Names:  []string{"ptrace", "process_vm_readv", "process_vm_writev"},
			Action: Errno(unix.EPERM),
		})
	}
	return p, nil
}

// namespaceFlags are the clone flags that create namespaces. CLONE_NEWTIME
// is missing on purpose: clone(2) reads that bit as part of the exit signal
// and only clone3 and unshare, both denied, can ask for a time namespace.
var namespaceFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP,
}

// stockadeDenials returns the rules DefaultPolicy adds to Docker's profile.
// It is a function rather than a variable so that programs that import this
// package pay nothing for it at start-up.
func stockadeDenials(ownTerminal bool) []Rule {
	eperm := Errno(unix.EPERM)
	rules := []Rule{
		{Names: []string{"keyctl", "add_key", "request_key"}, Action: eperm},
		{Names: []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}, Action: eperm},
		{Names: []string{"userfaultfd", "bpf", "perf_event_open", "kexec_load", "kexec_file_load"}, Action: eperm},
		{Names: []string{
			"mount", "umount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick",
			"move_mount", "open_tree", "open_tree_attr", "mount_setattr", "pivot_root",
		}, Action: eperm},
		{Names: []string{"unshare", "setns"}, Action: eperm},
		{Names: []string{"clone3"}, Action: Errno(unix.ENOSYS)},
		// Only the low 32 bits of these arguments reach the kernel, so the
		// comparisons ignore the high ones.
		{Names: []string{"socket"}, Action: eperm, Args: []Cond{ArgEq32(0, unix.AF_VSOCK)}},
		{Names: []string{"ioctl"}, Action: eperm, Args: []Cond{ArgEq32(1, unix.TIOCSTI)}},
		{Names: []string{"ioctl"}, Action: eperm, Args: []Cond{ArgEq32(1, unix.TIOCLINUX)}},
	}
	if !ownTerminal {
		for _, req := range terminalDenials() {
			rules = append(rules, Rule{Names: []string{"ioctl"}, Action: eperm, Args: []Cond{ArgEq32(1, req)}})
		}
	}
	// clone's flags are the first argument on amd64 and arm64 (not on
	// s390, which this package does not support).
	for _, flag := range namespaceFlags {
		rules = append(rules, Rule{Names: []string{"clone"}, Action: eperm, Args: []Cond{ArgMaskedEq(0, flag, flag)}})
	}
	return rules
}

// terminalDenials returns the ioctl requests that change a terminal beyond
// the process that makes them. A sandbox's standard streams are often the
// caller's own terminal, and what a request sets there stays after the
// sandbox has ended: TIOCSETD to N_NULL, say, leaves the caller's terminal
// discarding all its input and output. A filter cannot tell an inherited
// descriptor from one the sandbox opened (any descriptor can be dup2'd to
// any number), so these are denied on every terminal; a sandbox that gets
// a pseudo-terminal of its own, whose settings hurt no one else, is the
// place to allow them again (job control shells and full-screen programs
// need TCSETS and TIOCSPGRP there).
//
// Reading a terminal's state stays open (TCGETS, which isatty uses,
// TIOCGWINSZ, TIOCGPGRP), as do TCFLSH and TCSBRK (tcflush, tcdrain),
// whose effect ends with the call. The virtual console ioctls (KDSETMODE,
// VT_ACTIVATE …) are refused by the kernel to a process whose controlling
// terminal it is not, which TIOCSCTTY being denied keeps so.
//
// The values are those of amd64 and arm64, which share the generic ioctl
// numbers.
func terminalDenials() []uint32 {
	return []uint32{
		unix.TIOCSETD,                           // the line discipline: N_NULL discards all I/O
		unix.TCSETS, unix.TCSETSW, unix.TCSETSF, // termios
		unix.TCSETA, unix.TCSETAW, unix.TCSETAF, // termio, the old form
		unix.TCSETS2, unix.TCSETSW2, unix.TCSETSF2, // termios2
		unix.TCSETX, unix.TCSETXF, unix.TCSETXW, // termiox
		unix.TIOCSSOFTCAR,   // CLOCAL of termios
		unix.TIOCSLCKTRMIOS, // the locked termios
		unix.TIOCSWINSZ,     // the window size, and SIGWINCH to its group
		unix.TIOCSCTTY, unix.TIOCSPGRP, unix.TIOCCONS, unix.TIOCVHANGUP,
		unix.TIOCEXCL, // refuses every later open of the terminal
		unix.TCXONC,   // TCOOFF stops its output until a TCOON
		unix.TIOCSBRK, unix.TIOCCBRK,
		unix.TIOCMSET, unix.TIOCMBIS, unix.TIOCMBIC,
		unix.TIOCSSERIAL, unix.TIOCSRS485, unix.TIOCSISO7816,
	}
}

// DefaultFilter returns DefaultPolicy(ProfileOptions{}) compiled for the
// running program: the filter of a sandbox that keeps no capabilities. It
// is compiled on the first call only; every call returns the same Filter.
func DefaultFilter() (*Filter, error) { return defaultFilter() }

var defaultFilter = sync.OnceValues(func() (*Filter, error) {
	p, err := DefaultPolicy(ProfileOptions{})
	if err != nil {
		return nil, err
	}
	return Compile(p)
})
