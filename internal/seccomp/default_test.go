//go:build linux

package seccomp

import (
	"math"
	"testing"

	"golang.org/x/sys/unix"
)

func compileDefault(tb testing.TB, opts ProfileOptions) (*Policy, *Filter) {
	tb.Helper()
	p, err := DefaultPolicy(opts)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := Compile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return p, f
}

// defaultCases are expectations of the default policy without
// capabilities on every supported architecture.
var defaultCases = []struct {
	call call
	want Action
}{
	{call{name: "read"}, Allow},
	{call{name: "write"}, Allow},
	{call{name: "futex"}, Allow},
	{call{name: "execve"}, Allow},
	{call{name: "exit_group"}, Allow},
	{call{name: "mmap"}, Allow},
	{call{name: "rt_sigreturn"}, Allow},
	{call{name: "openat"}, Allow},
	{call{name: "getpid"}, Allow},
	{call{name: "sched_yield"}, Allow},
	{call{name: "clone", args: [6]uint64{threadFlags}}, Allow},
	{call{name: "clone", args: [6]uint64{forkFlags}}, Allow},
	{call{name: "clone", args: [6]uint64{vforkFlags}}, Allow},
	{call{name: "clone", args: [6]uint64{unix.CLONE_NEWUSER | forkFlags}}, eperm},
	{call{name: "clone", args: [6]uint64{unix.CLONE_NEWNS}}, eperm},
	{call{name: "clone", args: [6]uint64{unix.CLONE_NEWPID | threadFlags}}, eperm},
	{call{name: "clone", args: [6]uint64{unix.CLONE_NEWNET}}, eperm},
	{call{name: "clone", args: [6]uint64{unix.CLONE_NEWCGROUP | high}}, eperm},
	{call{name: "clone3"}, enosys},
	{call{name: "unshare", args: [6]uint64{unix.CLONE_NEWUSER}}, eperm},
	{call{name: "setns"}, eperm},
	{call{name: "mount"}, eperm},
	{call{name: "umount2"}, eperm},
	{call{name: "pivot_root"}, eperm},
	{call{name: "fsopen"}, eperm},
	{call{name: "fsmount"}, eperm},
	{call{name: "move_mount"}, eperm},
	{call{name: "open_tree"}, eperm},
	{call{name: "mount_setattr"}, eperm},
	{call{name: "keyctl"}, eperm},
	{call{name: "add_key"}, eperm},
	{call{name: "request_key"}, eperm},
	{call{name: "bpf"}, eperm},
	{call{name: "perf_event_open"}, eperm},
	{call{name: "userfaultfd"}, eperm},
	{call{name: "io_uring_setup"}, eperm},
	{call{name: "io_uring_enter"}, eperm},
	{call{name: "io_uring_register"}, eperm},
	{call{name: "kexec_load"}, eperm},
	{call{name: "kexec_file_load"}, eperm},
	{call{name: "ptrace"}, eperm},
	{call{name: "process_vm_readv"}, eperm},
	{call{name: "init_module"}, eperm},
	{call{name: "reboot"}, eperm},
	{call{name: "socket", args: [6]uint64{unix.AF_UNIX, unix.SOCK_STREAM}}, Allow},
	{call{name: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_DGRAM}}, Allow},
	{call{name: "socket", args: [6]uint64{unix.AF_INET6}}, Allow},
	{call{name: "socket", args: [6]uint64{unix.AF_NETLINK}}, Allow},
	{call{name: "socket", args: [6]uint64{unix.AF_VSOCK, unix.SOCK_STREAM}}, eperm},
	{call{name: "socket", args: [6]uint64{unix.AF_VSOCK | high}}, eperm},
	{call{name: "socket", args: [6]uint64{unix.AF_INET | high}}, eperm},
	{call{name: "socket", args: [6]uint64{unix.AF_ALG}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TCGETS}}, Allow},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCGWINSZ}}, Allow},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCSTI}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCSTI | high}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCSTI | 0xdead<<32}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCLINUX}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCSETD}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCSETD | high}}, eperm},
	{call{name: "ioctl", args: [6]uint64{1, unix.TCSETS}}, eperm},
	{call{name: "ioctl", args: [6]uint64{1, unix.TCSETSF2}}, eperm},
	{call{name: "ioctl", args: [6]uint64{2, unix.TIOCSWINSZ}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCSCTTY}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCEXCL}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TCXONC}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCVHANGUP}}, eperm},
	{call{name: "ioctl", args: [6]uint64{0, unix.TIOCGPGRP}}, Allow},
	{call{name: "ioctl", args: [6]uint64{0, unix.TCFLSH}}, Allow},
	{call{name: "ioctl", args: [6]uint64{0, unix.TCSBRK}}, Allow},
	{call{name: "ioctl", args: [6]uint64{3, unix.TIOCINQ}}, Allow},
	{call{name: "personality", args: [6]uint64{0}}, Allow},
	{call{name: "personality", args: [6]uint64{0xffffffff}}, Allow},
	{call{name: "personality", args: [6]uint64{0x20008}}, Allow},
	{call{name: "personality", args: [6]uint64{0x0040000}}, eperm},
	{call{name: "personality", args: [6]uint64{high}}, eperm},
}

func TestDefaultPolicy(t *testing.T) {
	for _, a := range arches {
		t.Run(a.goarch, func(t *testing.T) {
			p, f := compileDefault(t, ProfileOptions{Arch: a.goarch})
			e := newEvaluator(t, f)
			for _, tc := range defaultCases {
				d := tc.call.data(t, &a)
				if got := e.eval(t, d); got != tc.want {
					t.Errorf("%s%#x = %v, want %v", tc.call.name, tc.call.args[:2], got, tc.want)
				}
				if ref := reference(p, d); ref != tc.want {
					t.Errorf("reference %s%#x = %v, want %v", tc.call.name, tc.call.args[:2], ref, tc.want)
				}
			}
		})
	}
}

func TestDefaultPolicyArchitectureChecks(t *testing.T) {
	amd64 := lookupArch("amd64")
	_, fx := compileDefault(t, ProfileOptions{Arch: "amd64"})
	_, fa := compileDefault(t, ProfileOptions{Arch: "arm64"})
	x86, arm := newEvaluator(t, fx), newEvaluator(t, fa)
	readAMD64, _ := amd64.number("read")
	for _, tc := range []struct {
		name string
		e    *evaluator
		d    seccompData
		want Action
	}{
		{"i386 read on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_I386, nr: 3}, KillProcess},
		{"i386 exit on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_I386, nr: 1}, KillProcess},
		{"x32 read on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: x32SyscallBit | readAMD64}, KillProcess},
		{"x32 mount on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: x32SyscallBit | 165}, KillProcess},
		{"x32 top on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: math.MaxUint32 - 1}, KillProcess},
		{"aarch64 on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_AARCH64, nr: 63}, KillProcess},
		{"nr -1 on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: math.MaxUint32}, eperm},
		{"unknown nr on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: 1000}, eperm},
		{"past the table on amd64", x86, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: x32SyscallBit - 1}, eperm},
		{"arm on arm64", arm, seccompData{arch: unix.AUDIT_ARCH_ARM, nr: 3}, KillProcess},
		{"x86_64 on arm64", arm, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: 0}, KillProcess},
		{"large nr on arm64", arm, seccompData{arch: unix.AUDIT_ARCH_AARCH64, nr: x32SyscallBit}, eperm},
		{"nr -1 on arm64", arm, seccompData{arch: unix.AUDIT_ARCH_AARCH64, nr: math.MaxUint32}, eperm},
	} {
		if got := tc.e.eval(t, tc.d); got != tc.want {
			t.Errorf("%s: %v = %v, want %v", tc.name, tc.d, got, tc.want)
		}
	}
}

func TestDefaultPolicyCapabilities(t *testing.T) {
	for _, tc := range []struct {
		caps []string
		call call
		want Action
	}{
		{[]string{"CAP_SYS_PTRACE"}, call{name: "ptrace"}, Allow},
		{[]string{"CAP_SYS_PTRACE"}, call{name: "process_vm_writev"}, Allow},
		{[]string{"CAP_SYS_PTRACE"}, call{name: "kcmp"}, Allow},
		{nil, call{name: "kcmp"}, eperm},
		{[]string{"CAP_SYS_CHROOT"}, call{name: "chroot"}, Allow},
		{nil, call{name: "chroot"}, eperm},
		{[]string{"CAP_SYS_TIME"}, call{name: "settimeofday"}, Allow},
		{[]string{"CAP_DAC_READ_SEARCH"}, call{name: "open_by_handle_at"}, Allow},
		{nil, call{name: "open_by_handle_at"}, eperm},
		// Stockade's denials hold whatever the sandbox keeps.
		{[]string{"CAP_SYS_ADMIN"}, call{name: "mount"}, eperm},
		{[]string{"CAP_SYS_ADMIN"}, call{name: "unshare"}, eperm},
		{[]string{"CAP_SYS_ADMIN"}, call{name: "setns"}, eperm},
		{[]string{"CAP_SYS_ADMIN"}, call{name: "clone3"}, enosys},
		{[]string{"CAP_SYS_ADMIN"}, call{name: "clone", args: [6]uint64{unix.CLONE_NEWUSER}}, eperm},
		{[]string{"CAP_SYS_ADMIN"}, call{name: "clone", args: [6]uint64{threadFlags}}, Allow},
		{[]string{"CAP_SYS_ADMIN"}, call{name: "sethostname"}, Allow},
		{[]string{"CAP_SYS_ADMIN", "CAP_BPF"}, call{name: "bpf"}, eperm},
		{[]string{"CAP_PERFMON"}, call{name: "perf_event_open"}, eperm},
	} {
		for _, a := range arches {
			p, f := compileDefault(t, ProfileOptions{Arch: a.goarch, Caps: tc.caps})
			d := tc.call.data(t, &a)
			if got := newEvaluator(t, f).eval(t, d); got != tc.want {
				t.Errorf("%s with %v: %s%#x = %v, want %v", a.goarch, tc.caps, tc.call.name, tc.call.args[:1], got, tc.want)
			}
			if ref := reference(p, d); ref != tc.want {
				t.Errorf("%s with %v: reference %s = %v, want %v", a.goarch, tc.caps, tc.call.name, ref, tc.want)
			}
		}
	}
}

// TestDefaultPolicyEveryNumber checks the compiled default policy against
// the reference evaluator for every system call number in the table and
// around it, with arguments that exercise the conditions.
func TestDefaultPolicyEveryNumber(t *testing.T) {
	argSets := [][6]uint64{
		{}, {threadFlags}, {unix.CLONE_NEWUSER}, {unix.AF_VSOCK, unix.TIOCSTI},
		{unix.AF_INET | high, unix.TIOCSTI | high}, {math.MaxUint64, math.MaxUint64},
		{unix.AF_NETLINK, unix.TCGETS}, {0x20008, 0}, {7, 45}, {44, 46},
	}
	for _, a := range arches {
		for _, caps := range [][]string{nil, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}} {
			p, f := compileDefault(t, ProfileOptions{Arch: a.goarch, Caps: caps})
			e := newEvaluator(t, f)
			for nr := uint32(0); nr < 1100; nr++ {
				for _, args := range argSets {
					d := seccompData{nr: nr, arch: a.auditArch, args: args}
					if got, want := e.eval(t, d), reference(p, d); got != want {
						t.Fatalf("%s caps %v: %v = %v, reference says %v", a.goarch, caps, d, got, want)
					}
				}
			}
		}
	}
}

// TestDefaultProgramSize keeps the default program short, since the
// kernel's cost of loading a filter grows with its length, and the path
// of a common system call short, since a filter that looks at arguments
// runs on every call. It logs the measures.
func TestDefaultProgramSize(t *testing.T) {
	for _, a := range arches {
		_, f := compileDefault(t, ProfileOptions{Arch: a.goarch})
		read, _ := a.number("read")
		_, readPath := step(f, seccompData{nr: read, arch: a.auditArch})
		longest, total, n := 0, 0, 0
		for _, e := range a.table {
			_, steps := step(f, seccompData{nr: e.nr, arch: a.auditArch})
			longest = max(longest, steps)
			total += steps
			n++
		}
		t.Logf("%s: %d instructions; read runs %d, the average call %.1f, the longest %d", a.goarch, f.Len(), readPath, float64(total)/float64(n), longest)
		if f.Len() > 200 {
			t.Errorf("%s: the default program has grown to %d instructions", a.goarch, f.Len())
		}
		if readPath > 14 {
			t.Errorf("%s: read runs %d instructions", a.goarch, readPath)
		}
	}
}
