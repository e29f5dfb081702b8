//go:build linux

package seccomp_test

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/seccomp"
)

// The sandbox compiles its filter once, in the parent, and ships the bytes
// to every init stage, which loads them as its last step before execve.
func Example() {
	// In the parent, once per process (or once per distinct policy).
	filter, err := seccomp.DefaultFilter()
	if err != nil {
		panic(err)
	}
	wire, err := filter.MarshalBinary()
	if err != nil {
		panic(err)
	}

	// In the init stage, on the thread that will exec the command.
	var f seccomp.Filter
	if err := f.UnmarshalBinary(wire); err != nil {
		panic(err)
	}
	load := func() error {
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
		return seccomp.Load(&f, seccomp.FlagTSync)
		// ... then execve the command.
	}
	_ = load
	fmt.Println(f.Len() > 0)
	// Output: true
}

// A deny-list: everything runs except what is named.
func ExamplePolicy_denyList() {
	p := &seccomp.Policy{
		DefaultAction: seccomp.Allow,
		Rules: []seccomp.Rule{
			{Names: []string{"mount", "umount2", "pivot_root"}, Action: seccomp.Errno(unix.EPERM)},
			{Names: []string{"ptrace"}, Action: seccomp.KillProcess},
			// Only the low 32 bits of ioctl's request reach the kernel.
			{Names: []string{"ioctl"}, Action: seccomp.Errno(unix.EPERM), Args: []seccomp.Cond{seccomp.ArgEq32(1, unix.TIOCSTI)}},
		},
	}
	if _, err := seccomp.Compile(p); err != nil {
		panic(err)
	}
	fmt.Println("compiled")
	// Output: compiled
}

// An allow-list: nothing runs but what is named; the rest fails with
// EPERM.
func ExamplePolicy_allowList() {
	p := &seccomp.Policy{
		DefaultAction: seccomp.Errno(unix.EPERM),
		Rules: []seccomp.Rule{
			{Names: []string{"read", "write", "exit_group", "rt_sigreturn"}, Action: seccomp.Allow},
		},
	}
	_, err := seccomp.Compile(p)
	fmt.Println(err)

	p.Rules = append(p.Rules, seccomp.Rule{Names: []string{"reed"}, Action: seccomp.Allow})
	_, err = seccomp.Compile(p)
	fmt.Println(err)
	// Output:
	// <nil>
	// seccomp: Rules[1]: Names[0]: "reed": unknown system call
}

func ExampleParseDockerProfile() {
	profile := []byte(`{
		"defaultAction": "SCMP_ACT_ERRNO",
		"syscalls": [
			{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
			{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}}
		]
	}`)
	p, err := seccomp.ParseDockerProfile(profile, seccomp.ProfileOptions{Arch: "amd64"})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.DefaultAction, len(p.Rules), p.Rules[0].Action)
	// Output: errno(EPERM) 1 allow
}
