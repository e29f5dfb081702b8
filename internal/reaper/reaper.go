//go:build linux

package reaper

import (
	"encoding/binary"
	"fmt"

	"github.com/stockade/stockade/internal/seccomp"
)

// textAddr is where the program is loaded: above any mmap_min_addr, and
// aligned for pages of up to 64 KiB.
const textAddr = 0x400000

// elfMachine is e_machine for each architecture of code.
var elfMachine = map[string]uint16{"amd64": 62, "arm64": 183}

// Program returns the reaper as a static ELF executable for goarch, or an
// error for an architecture it has no code for.
func Program(goarch string) ([]byte, error) {
	text, ok := code[goarch]
	if !ok {
		return nil, fmt.Errorf("reaper: no code for %s", goarch)
	}
	const ehsize, phsize, nph = 64, 56, 2
	hdr := ehsize + nph*phsize
	b := make([]byte, hdr+len(text))
	le := binary.LittleEndian
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // 64-bit, little-endian, version 1
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], elfMachine[goarch])
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], textAddr+uint64(hdr)) // entry
	le.PutUint64(b[32:], ehsize)               // program headers
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], nph)
	// PT_LOAD of the whole file, read and execute.
	ph := b[ehsize:]
	le.PutUint32(ph[0:], 1)
	le.PutUint32(ph[4:], 5)
	le.PutUint64(ph[16:], textAddr)
	le.PutUint64(ph[24:], textAddr)
	le.PutUint64(ph[32:], uint64(len(b)))
	le.PutUint64(ph[40:], uint64(len(b)))
	le.PutUint64(ph[48:], 0x10000)
	// PT_GNU_STACK: a stack that is not executable.
	ph = b[ehsize+phsize:]
	le.PutUint32(ph[0:], 0x6474e551)
	le.PutUint32(ph[4:], 6)
	le.PutUint64(ph[48:], 16)
	copy(b[hdr:], text)
	return b, nil
}

// ReportSize is the size of what the reaper writes when the command ends:
// its wait status (an int, then four bytes of padding) and its struct
// rusage.
const ReportSize = 8 + 144

// Calls are the system calls the reaper makes, and execveat, by which the
// first process becomes it.
var Calls = []string{
	"execveat", "rt_sigprocmask", "rt_sigaction", "wait4", "rt_sigsuspend",
	"write", "exit_group", "rt_sigreturn", "restart_syscall",
}

// Filter returns the reaper's seccomp filter for goarch: Calls, and
// nothing else.
func Filter(goarch string) (*seccomp.Filter, error) {
	return seccomp.Compile(&seccomp.Policy{
		DefaultAction: seccomp.KillProcess,
		Rules:         []seccomp.Rule{{Names: Calls, Action: seccomp.Allow}},
		Arch:          goarch,
	})
}
