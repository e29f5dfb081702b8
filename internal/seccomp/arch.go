//go:build linux

package seccomp

//go:generate go run gen_syscalls.go

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// sysEntry is one row of a generated system call table.
type sysEntry struct {
	name string
	nr   uint32
}

// x32SyscallBit is set in the system call number of every x32 call made
// on x86_64 (__X32_SYSCALL_BIT). Such calls share AUDIT_ARCH_X86_64 with
// native calls, so the filter must look at the number to tell them apart.
const x32SyscallBit = 0x40000000

// archInfo describes one architecture that filters can be compiled for.
type archInfo struct {
	index     int // in arches
	goarch    string
	auditArch uint32
	table     []sysEntry
	// rejectAbove, when not zero, is the first system call number that
	// belongs to another ABI sharing this audit architecture.
	rejectAbove uint32
}

// arches lists the architectures with a system call table. The numbers of
// both come from golang.org/x/sys (see zsyscalls.go).
var arches = [...]archInfo{
	{index: 0, goarch: "amd64", auditArch: unix.AUDIT_ARCH_X86_64, table: sysAMD64, rejectAbove: x32SyscallBit},
	{index: 1, goarch: "arm64", auditArch: unix.AUDIT_ARCH_AARCH64, table: sysARM64},
}

func lookupArch(goarch string) *archInfo {
	for i := range arches {
		if arches[i].goarch == goarch {
			return &arches[i]
		}
	}
	return nil
}

// archFor returns the architecture named by a Policy's Arch field.
func archFor(goarch string) (*archInfo, error) {
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	if a := lookupArch(goarch); a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("seccomp: architecture %q: %w", goarch, errors.ErrUnsupported)
}

// number returns the number of the named system call on a, and whether a
// has that call.
func (a *archInfo) number(name string) (uint32, bool) {
	nrs, ok := syscallIndex()[name]
	if !ok || nrs[a.index] < 0 {
		return 0, false
	}
	return uint32(nrs[a.index]), true
}

// KnownSyscall reports whether any Linux architecture has a system call
// of that name, such as "openat".
func KnownSyscall(name string) bool { return knownSyscall(name) }

func knownSyscall(name string) bool {
	_, ok := syscallIndex()[name]
	return ok
}

// syscallIndex maps every known system call name to its number on each
// supported architecture (indexed like arches), or -1 where the
// architecture lacks it. It is built on first use rather than at program
// start, and costs tens of microseconds once.
var syscallIndex = sync.OnceValue(func() map[string][len(arches)]int32 {
	idx := make(map[string][len(arches)]int32, len(sysNamesAnyArch)+len(armPrivateSyscalls))
	absent := [len(arches)]int32{}
	for i := range absent {
		absent[i] = -1
	}
	for _, name := range sysNamesAnyArch {
		idx[name] = absent
	}
	for _, name := range armPrivateSyscalls {
		idx[name] = absent
	}
	for i, a := range arches {
		for _, e := range a.table {
			nrs := idx[e.name]
			nrs[i] = int32(e.nr)
			idx[e.name] = nrs
		}
	}
	return idx
})

// armPrivateSyscalls are the 32-bit ARM private calls (__ARM_NR_*) that
// Docker profiles name but that golang.org/x/sys does not list. They are
// known names without a number on any architecture the compiler supports.
var armPrivateSyscalls = []string{"breakpoint", "set_tls"}
