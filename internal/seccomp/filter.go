//go:build linux

package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Filter is a compiled seccomp program for one architecture, ready for
// Load. It is immutable and safe for concurrent use; compile a policy once
// and keep its Filter. The zero Filter is empty and cannot be loaded.
type Filter struct {
	auditArch uint32
	prog      []unix.SockFilter
	// fprog points at prog so that Load passes it to the kernel as it is.
	fprog unix.SockFprog
}

func (f *Filter) init() {
	f.fprog = unix.SockFprog{Len: uint16(len(f.prog)), Filter: unsafe.SliceData(f.prog)}
}

// Len returns the number of BPF instructions in the program.
func (f *Filter) Len() int { return len(f.prog) }

// The binary form of a Filter: a header of 8 bytes (the magic "SF", a
// format version, a zero byte, and the audit architecture as a
// little-endian uint32), then each instruction as the kernel's struct
// sock_filter in little-endian order (code uint16, jt uint8, jf uint8, k
// uint32).
const (
	binMagic0, binMagic1 = 'S', 'F'
	binVersion           = 1
	binHeader            = 8
	binInsn              = 8
)

// MarshalBinary encodes the filter so that another process can load it
// without compiling: the sandbox compiles once in the parent and sends the
// bytes to each init stage. The format is private to this package and only
// meant for a process running the same version of it.
func (f *Filter) MarshalBinary() ([]byte, error) {
	if len(f.prog) == 0 {
		return nil, errors.New("seccomp: marshal: empty filter")
	}
	b := make([]byte, binHeader, binHeader+binInsn*len(f.prog))
	b[0], b[1], b[2] = binMagic0, binMagic1, binVersion
	binary.LittleEndian.PutUint32(b[4:], f.auditArch)
	for _, in := range f.prog {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return b, nil
}

// UnmarshalBinary decodes a filter encoded by MarshalBinary. It checks the
// framing and the length; the kernel checks the program itself when it is
// loaded.
func (f *Filter) UnmarshalBinary(b []byte) error {
	if len(b) < binHeader || b[0] != binMagic0 || b[1] != binMagic1 {
		return errors.New("seccomp: unmarshal: not an encoded filter")
	}
	if b[2] != binVersion {
		return fmt.Errorf("seccomp: unmarshal: format version %d, want %d", b[2], binVersion)
	}
	body := b[binHeader:]
	n := len(body) / binInsn
	if len(body)%binInsn != 0 || n == 0 || n > maxInstructions {
		return fmt.Errorf("seccomp: unmarshal: %d bytes of instructions: want a positive multiple of %d, at most %d instructions", len(body), binInsn, maxInstructions)
	}
	prog := make([]unix.SockFilter, n)
	for i := range prog {
		in := body[i*binInsn:]
		prog[i] = unix.SockFilter{
			Code: binary.LittleEndian.Uint16(in),
			Jt:   in[2],
			Jf:   in[3],
			K:    binary.LittleEndian.Uint32(in[4:]),
		}
	}
	f.auditArch = binary.LittleEndian.Uint32(b[4:])
	f.prog = prog
	f.init()
	return nil
}

// Instructions returns the filter's BPF program, for a loader that passes
// it to the kernel itself. The slice must not be changed.
func (f *Filter) Instructions() []unix.SockFilter { return f.prog }
