//go:build linux

package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData is the input of a seccomp program (struct seccomp_data).
type seccompData struct {
	nr   uint32
	arch uint32
	args [6]uint64
}

// words returns the 32-bit word the kernel loads at each offset of d on a
// little-endian machine.
func (d seccompData) word(off uint32) uint32 {
	switch {
	case off == offNr:
		return d.nr
	case off == offArch:
		return d.arch
	case off >= offArgs && off < offArgs+48:
		a := d.args[(off-offArgs)/8]
		if (off-offArgs)%8 == 0 {
			return uint32(a)
		}
		return uint32(a >> 32)
	}
	return 0 // the instruction pointer, which no program of ours reads
}

// vmInput lays d out for golang.org/x/net/bpf's VM, which loads words in
// network byte order: each word is stored big-endian so that the VM reads
// the value the kernel would.
func (d seccompData) vmInput() []byte {
	b := make([]byte, 64)
	for off := uint32(0); off < 64; off += 4 {
		binary.BigEndian.PutUint32(b[off:], d.word(off))
	}
	return b
}

func (d seccompData) String() string {
	return fmt.Sprintf("{arch %#x nr %d args %#x}", d.arch, d.nr, d.args)
}

// instructions disassembles the exact bytes a Filter hands the kernel.
func (f *Filter) instructions() []bpf.Instruction {
	out := make([]bpf.Instruction, len(f.prog))
	for i, in := range f.prog {
		out[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
	}
	return out
}

// evaluator runs a Filter in golang.org/x/net/bpf's VM and, independently,
// in a small stepping interpreter of the instructions seccomp allows, which
// also counts the instructions executed. Every evaluation checks that the
// two agree.
type evaluator struct {
	f  *Filter
	vm *bpf.VM
}

func newEvaluator(tb testing.TB, f *Filter) *evaluator {
	tb.Helper()
	if err := checkSeccompProgram(f); err != nil {
		tb.Fatalf("program the kernel would refuse: %v", err)
	}
	vm, err := bpf.NewVM(f.instructions())
	if err != nil {
		tb.Fatalf("bpf.NewVM: %v", err)
	}
	return &evaluator{f: f, vm: vm}
}

func (e *evaluator) eval(tb testing.TB, d seccompData) Action {
	tb.Helper()
	got, err := e.vm.Run(d.vmInput())
	if err != nil {
		tb.Fatalf("VM on %v: %v", d, err)
	}
	mine, _ := step(e.f, d)
	if Action(got) != mine {
		tb.Fatalf("interpreters disagree on %v: x/net/bpf VM says %v, stepper says %v", d, Action(got), mine)
	}
	return mine
}

// step interprets f on d and returns its result and the number of
// instructions executed. It supports exactly the instructions that
// checkSeccompProgram admits.
func step(f *Filter, d seccompData) (Action, int) {
	var a uint32
	n := 0
	for pc := 0; pc < len(f.prog); pc++ {
		in := f.prog[pc]
		n++
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			a = d.word(in.K)
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var ok bool
			switch in.Code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				ok = a == in.K
			case unix.BPF_JGT:
				ok = a > in.K
			case unix.BPF_JGE:
				ok = a >= in.K
			case unix.BPF_JSET:
				ok = a&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return Action(in.K), n
		default:
			panic(fmt.Sprintf("instruction %d: code %#x", pc, in.Code))
		}
	}
	panic("ran off the end of the program")
}

// checkSeccompProgram applies the rules the kernel's seccomp_check_filter
// and bpf_check_classic apply, restricted to what this package emits:
// only aligned 32-bit loads within struct seccomp_data, jumps that stay
// inside the program, a return at the end, and at most BPF_MAXINSNS
// instructions.
func checkSeccompProgram(f *Filter) error {
	n := len(f.prog)
	if n == 0 || n > maxInstructions {
		return fmt.Errorf("length %d", n)
	}
	for pc, in := range f.prog {
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K >= 64 || in.K%4 != 0 {
				return fmt.Errorf("instruction %d: load at offset %d", pc, in.K)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_RET | unix.BPF_K:
		case unix.BPF_JMP | unix.BPF_JA:
			if pc+1+int(in.K) >= n {
				return fmt.Errorf("instruction %d: jump past the end", pc)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			if pc+1+int(in.Jt) >= n || pc+1+int(in.Jf) >= n {
				return fmt.Errorf("instruction %d: jump past the end", pc)
			}
		default:
			return fmt.Errorf("instruction %d: code %#x not expected in a seccomp program", pc, in.Code)
		}
	}
	if last := f.prog[n-1].Code; last != unix.BPF_RET|unix.BPF_K {
		return fmt.Errorf("last instruction is not a return")
	}
	return nil
}

// reference decides d under p the slow, obvious way, from the Policy
// itself rather than the program: the meaning Compile must preserve.
func reference(p *Policy, d seccompData) Action {
	arch, err := archFor(p.Arch)
	if err != nil {
		panic(err)
	}
	if d.arch != arch.auditArch {
		return KillProcess
	}
	if arch.rejectAbove != 0 && d.nr >= arch.rejectAbove && d.nr != ^uint32(0) {
		return KillProcess
	}
	var best *Rule
	for i := range p.Rules {
		r := &p.Rules[i]
		named := false
		for _, name := range r.Names {
			if nr, ok := arch.number(name); ok && nr == d.nr {
				named = true
			}
		}
		if !named || !holds(r.Args, d) {
			continue
		}
		if best == nil || r.Action.precedence() < best.Action.precedence() {
			best = r
		}
	}
	if best == nil {
		return p.DefaultAction
	}
	return best.Action
}

func holds(conds []Cond, d seccompData) bool {
	for _, c := range conds {
		a := d.args[c.Index]
		var ok bool
		switch c.Op {
		case OpEq:
			ok = a == c.Value
		case OpNe:
			ok = a != c.Value
		case OpLt:
			ok = a < c.Value
		case OpLe:
			ok = a <= c.Value
		case OpGt:
			ok = a > c.Value
		case OpGe:
			ok = a >= c.Value
		case OpMaskedEq:
			ok = a&c.Mask == c.Value
		}
		if !ok {
			return false
		}
	}
	return true
}
