// Package sysplan compiles the start of a sandbox into a program of raw
// system calls and runs it in a child that shares no Go runtime state.
//
// A Program is built once, in Go, with every argument prepared: strings,
// structures and pointer arrays live in one block of memory (the arena),
// and each step is a system call number with six arguments. Starting a
// sandbox copies the arena into memory of its own, fills in the values that
// differ per start (descriptors, mostly), and clones a child with
// CLONE_VM that runs the steps one after the other with a small
// interpreter written in assembly. The interpreter touches nothing but its
// registers and that copy: it allocates nothing, calls no Go code and takes
// no signal. Its last step is execve; a step that fails writes the step's
// stage and errno to a close-on-exec pipe and exits, so that end of file
// on the pipe without a record means the exec happened.
//
// A step may save its result (a descriptor, say) into a cell of the arena,
// and a later step may load an argument from a cell. A step may also jump
// elsewhere when it fails with a given errno, which gives the few
// conditionals a start needs ("mask this path only if it exists"), and may
// require an exact result ("read one byte").
//
// The child shares the caller's memory only until its execve: the hard rule
// of the process model is that nothing the sandboxed command can reach
// shares memory with the owner.
package sysplan

import (
	"encoding/binary"
	"fmt"
)

// Ref is the offset of something in a Program's arena.
type Ref struct{ off int }

// Nil is the Ref of nothing: as an argument it is a null pointer.
var Nil = Ref{-1}

// IsNil reports whether r refers to nothing.
func (r Ref) IsNil() bool { return r.off < 0 }

// Field returns the Ref of the byte at offset off inside r.
func (r Ref) Field(off int) Ref { return Ref{r.off + off} }

// Arg is one argument of a step: a number, the address of something in
// the arena, or the number held in a cell of the arena at start time.
type Arg struct {
	kind argKind
	val  uint64
	ref  Ref
}

type argKind uint8

const (
	argImm argKind = iota
	argPtr
	argLoad
)

// Imm is the number v.
func Imm[T ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64 | ~uintptr](v T) Arg {
	return Arg{kind: argImm, val: uint64(v)}
}

// Ptr is the address of r in the running copy of the arena; Nil gives a
// null pointer.
func Ptr(r Ref) Arg {
	if r.IsNil() {
		return Imm(0)
	}
	return Arg{kind: argPtr, ref: r}
}

// Load is the 64-bit number that the cell r holds when the step runs.
func Load(r Ref) Arg { return Arg{kind: argLoad, ref: r} }

// Label names a step to jump to.
type Label struct{ id int }

// AnyErrno, given to Step.OnErr, matches every errno.
const AnyErrno = ^uint64(0)

// Step is one system call of a Program, being built.
type Step struct {
	nr     uint64
	args   [6]Arg
	save   Ref
	onErr  [2]errJump
	expect uint64 // the wanted result plus one; zero: any success
	// otherwise, when set, is where a successful result other than the
	// expected one goes on, instead of failing.
	otherwise    Label
	hasOtherwise bool
	stage        int
	label        Label // the jump target, for jumps
	jump         bool
}

type errJump struct {
	errno uint64
	to    Label
	set   bool
}

// Save stores the step's result, successful or not (a failure as the
// negative errno), in the cell r.
func (s *Step) Save(r Ref) *Step { s.save = r; return s }

// OnErr makes a failure with errno (or AnyErrno) go on at to instead of
// failing the program. A step has room for two such jumps.
func (s *Step) OnErr(errno uint64, to Label) *Step {
	for i := range s.onErr {
		if !s.onErr[i].set {
			s.onErr[i] = errJump{errno, to, true}
			return s
		}
	}
	panic("sysplan: a step takes two OnErr jumps at most")
}

// Expect makes any successful result other than v a failure with EPROTO.
func (s *Step) Expect(v uint64) *Step { s.expect = v + 1; return s }

// ExpectElse makes a successful result other than v go on at l: with v
// zero, after a clone, the child goes on with the next step and the
// parent at l.
func (s *Step) ExpectElse(v uint64, l Label) *Step {
	s.expect, s.otherwise, s.hasOtherwise = v+1, l, true
	return s
}

// Builder builds a Program.
type Builder struct {
	arena  []byte
	relocs []int // arena offsets holding arena offsets to relocate
	steps  []*Step
	labels []int // step index of each label; -1 until placed
	stages []Stage
}

// Stage names a part of a start for failure reports: Op is the kind of
// step ("bind", "seccomp", ...) and Path what it worked on.
type Stage struct {
	Op, Path string
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{} }

// Alloc reserves n zeroed bytes, 8-byte aligned, and returns their Ref.
func (b *Builder) Alloc(n int) Ref {
	for len(b.arena)%8 != 0 {
		b.arena = append(b.arena, 0)
	}
	off := len(b.arena)
	b.arena = append(b.arena, make([]byte, n)...)
	return Ref{off}
}

// Cell reserves a 64-bit cell, zero until a step saves into it or a start
// sets it.
func (b *Builder) Cell() Ref { return b.Alloc(8) }

// Bytes copies p into the arena.
func (b *Builder) Bytes(p []byte) Ref {
	r := b.Alloc(len(p))
	copy(b.arena[r.off:], p)
	return r
}

// String copies s into the arena with a terminating NUL.
func (b *Builder) String(s string) Ref {
	r := b.Alloc(len(s) + 1)
	copy(b.arena[r.off:], s)
	return r
}

// PutU64 writes v at r.
func (b *Builder) PutU64(r Ref, v uint64) {
	binary.NativeEndian.PutUint64(b.arena[r.off:], v)
}

// PutU32 writes v at r.
func (b *Builder) PutU32(r Ref, v uint32) {
	binary.NativeEndian.PutUint32(b.arena[r.off:], v)
}

// PutPtr writes at r the address that target will have in a running copy
// of the arena (zero for Nil).
func (b *Builder) PutPtr(r Ref, target Ref) {
	if target.IsNil() {
		b.PutU64(r, 0)
		return
	}
	b.PutU64(r, uint64(target.off))
	b.relocs = append(b.relocs, r.off)
}

// Strings copies each of ss into the arena and returns a Ref to a
// null-terminated array of pointers to them, as execve takes.
func (b *Builder) Strings(ss []string) Ref {
	refs := make([]Ref, len(ss))
	for i, s := range ss {
		refs[i] = b.String(s)
	}
	arr := b.Alloc(8 * (len(ss) + 1))
	for i, r := range refs {
		b.PutPtr(arr.Field(8*i), r)
	}
	return arr
}

// NewLabel returns a label to be placed later with Place.
func (b *Builder) NewLabel() Label {
	b.labels = append(b.labels, -1)
	return Label{len(b.labels) - 1}
}

// Place makes l name the next step added.
func (b *Builder) Place(l Label) {
	if b.labels[l.id] >= 0 {
		panic("sysplan: label placed twice")
	}
	b.labels[l.id] = len(b.steps)
}

// Stage returns the number of a stage, for Syscall.
func (b *Builder) Stage(op, path string) int {
	b.stages = append(b.stages, Stage{op, path})
	return len(b.stages) - 1
}

// Syscall adds a step that makes system call nr with args, reported as
// stage when it fails.
func (b *Builder) Syscall(stage int, nr uintptr, args ...Arg) *Step {
	if len(args) > 6 {
		panic("sysplan: a system call takes six arguments at most")
	}
	s := &Step{nr: uint64(nr), save: Nil, stage: stage}
	copy(s.args[:], args)
	for i := len(args); i < 6; i++ {
		s.args[i] = Imm(0)
	}
	b.steps = append(b.steps, s)
	return s
}

// Jump adds a step that goes on at l.
func (b *Builder) Jump(l Label) {
	b.steps = append(b.steps, &Step{jump: true, label: l, save: Nil})
}

// The layout the interpreters read. A header, then the steps, each
// stepWords 64-bit words:
//
//	header: errfd, fail stage, fail errno, number of steps, address of step 0
//	step:   nr, a0..a5, load mask, save address, errno A, jump A,
//	        errno B, jump B, expect+1, stage, otherwise+1
const (
	hdrErrFD   = 0
	hdrStage   = 8
	hdrErrno   = 16
	hdrNSteps  = 24
	hdrSteps   = 32
	headerSize = 40

	stepWords = 16
	stepSize  = stepWords * 8

	nrJump = ^uint64(0)
)

// Program is a compiled start: the steps and the arena, ready to be copied
// and run. It is immutable and safe for concurrent starts.
type Program struct {
	image  []byte // header, steps, then the arena, as offsets from 0
	relocs []int  // offsets in image holding offsets to relocate
	arena  int    // where the arena starts in image
	stages []Stage
	nsteps int
}

// Build lays the program out. The Builder must not be used afterwards.
func (b *Builder) Build() (*Program, error) {
	for i, at := range b.labels {
		if at < 0 {
			return nil, fmt.Errorf("sysplan: label %d never placed", i)
		}
	}
	n := len(b.steps)
	arenaOff := headerSize + n*stepSize
	p := &Program{
		image:  make([]byte, arenaOff+len(b.arena)),
		arena:  arenaOff,
		stages: b.stages,
		nsteps: n,
	}
	copy(p.image[arenaOff:], b.arena)
	put := func(off int, v uint64) { binary.NativeEndian.PutUint64(p.image[off:], v) }
	ptr := func(off int, r Ref) {
		put(off, uint64(arenaOff+r.off))
		p.relocs = append(p.relocs, off)
	}
	put(hdrNSteps, uint64(n))
	put(hdrSteps, headerSize)
	p.relocs = append(p.relocs, hdrSteps)
	for _, r := range b.relocs {
		put(arenaOff+r, binary.NativeEndian.Uint64(b.arena[r:])+uint64(arenaOff))
		p.relocs = append(p.relocs, arenaOff+r)
	}
	for i, s := range b.steps {
		w := headerSize + i*stepSize
		if s.jump {
			put(w, nrJump)
			put(w+10*8, uint64(b.labels[s.label.id]))
			continue
		}
		put(w, s.nr)
		var mask uint64
		for j, a := range s.args {
			off := w + (1+j)*8
			switch a.kind {
			case argImm:
				put(off, a.val)
			case argPtr:
				ptr(off, a.ref)
			case argLoad:
				ptr(off, a.ref)
				mask |= 1 << j
			}
		}
		put(w+7*8, mask)
		if !s.save.IsNil() {
			ptr(w+8*8, s.save)
		}
		for k, j := range s.onErr {
			if j.set {
				put(w+(9+2*k)*8, j.errno)
				put(w+(10+2*k)*8, uint64(b.labels[j.to.id]))
			}
		}
		put(w+13*8, s.expect)
		put(w+14*8, uint64(s.stage))
		if s.hasOtherwise {
			put(w+15*8, uint64(b.labels[s.otherwise.id])+1)
		}
	}
	return p, nil
}

// Steps returns the number of steps.
func (p *Program) Steps() int { return p.nsteps }

// Size returns the size in bytes of a running copy.
func (p *Program) Size() int { return len(p.image) }

// StageOf returns what stage number n names.
func (p *Program) StageOf(n int) Stage {
	if n < 0 || n >= len(p.stages) {
		return Stage{Op: "start"}
	}
	return p.stages[n]
}

// BytesAt returns the n bytes at r, to be filled in before Build.
func (b *Builder) BytesAt(r Ref, n int) []byte { return b.arena[r.off : r.off+n] }
