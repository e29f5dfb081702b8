//go:build linux

package seccomp

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// maxInstructions is the longest program the kernel accepts (BPF_MAXINSNS).
const maxInstructions = 4096

// Offsets into struct seccomp_data, the input of every seccomp program.
const (
	offNr   = 0  // int nr
	offArch = 4  // __u32 arch
	offArgs = 16 // __u64 args[6]
)

// argLo and argHi return the offsets of the low and high 32-bit words of
// argument i. Both supported architectures are little-endian.
func argLo(i uint8) uint32 { return offArgs + 8*uint32(i) }
func argHi(i uint8) uint32 { return offArgs + 8*uint32(i) + 4 }

// Compile validates p and translates it into a seccomp BPF program for
// p.Arch. Compiling the default policy takes tens of microseconds and
// allocates; do it once and keep the Filter, which is immutable and safe
// for concurrent use.
//
// The program checks the audit architecture first and kills the process on
// any other ABI, then finds the system call number with a binary search
// over ranges of numbers that share an action, so that a call costs about
// ten instructions whatever the size of the policy. Only system calls with
// argument conditions run further code.
func Compile(p *Policy) (*Filter, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	arch, err := archFor(p.Arch)
	if err != nil {
		return nil, err
	}

	// Gather the rules of each system call number on this architecture.
	byNr := make(map[uint32][]*Rule, len(arch.table))
	for i := range p.Rules {
		r := &p.Rules[i]
		for _, name := range r.Names {
			nr, ok := arch.number(name)
			if !ok {
				continue // a call of another architecture
			}
			if !slices.Contains(byNr[nr], r) {
				byNr[nr] = append(byNr[nr], r)
			}
		}
	}

	// Partition the number space into segments, each with either a fixed
	// action or the rules of one system call.
	nrs := make([]uint32, 0, len(byNr))
	for nr := range byNr {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	limit := uint64(math.MaxUint32) + 1
	if arch.rejectAbove != 0 {
		limit = uint64(arch.rejectAbove)
	}
	var segs []segment
	add := func(s segment) {
		if n := len(segs); n > 0 && s.rules == nil && segs[n-1].rules == nil && segs[n-1].action == s.action {
			segs[n-1].end = s.end
			return
		}
		segs = append(segs, s)
	}
	next := uint64(0)
	for _, nr := range nrs {
		if uint64(nr) >= limit {
			continue // numbers in the rejected range are killed anyway
		}
		if uint64(nr) > next {
			add(segment{start: next, end: uint64(nr), action: p.DefaultAction})
		}
		action, rules := resolve(byNr[nr], p.DefaultAction)
		add(segment{start: uint64(nr), end: uint64(nr) + 1, action: action, rules: rules})
		next = uint64(nr) + 1
	}
	if next < limit {
		add(segment{start: next, end: limit, action: p.DefaultAction})
	}
	if limit <= math.MaxUint32 {
		// Numbers of another ABI kill, except -1: the kernel and tracers use
		// it for a skipped call, and it gets the default action as libseccomp
		// gives it.
		add(segment{start: limit, end: math.MaxUint32, action: KillProcess})
		add(segment{start: math.MaxUint32, end: math.MaxUint32 + 1, action: p.DefaultAction})
	}

	tree, err := compactTree(segs)
	if err == errTooFar {
		tree, err = searchTree(segs, p.DefaultAction)
	}
	if err != nil {
		return nil, err
	}
	prog := make([]bpf.Instruction, 0, 4+len(tree))
	prog = append(prog,
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: arch.auditArch, SkipTrue: 1},
		bpf.RetConstant{Val: uint32(KillProcess)},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	)
	prog = append(prog, tree...)
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("seccomp: compiled program has %d instructions, more than the kernel's limit of %d", len(prog), maxInstructions)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	f := &Filter{auditArch: arch.auditArch, prog: make([]unix.SockFilter, len(raw))}
	for i, r := range raw {
		f.prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	f.init()
	return f, nil
}

// segment is a range [start, end) of system call numbers. When rules is
// nil every call in the range gets action; otherwise the range holds one
// system call whose rules decide, with action as the fall-through.
type segment struct {
	start, end uint64
	action     Action
	rules      []*Rule
}

// resolve orders the rules of one system call from the most to the least
// restrictive action and drops those that can never decide: rules after
// one without conditions, and trailing rules whose action is the default
// anyway. It returns a fixed action when no conditions remain to check.
func resolve(rules []*Rule, def Action) (Action, []*Rule) {
	rules = slices.Clone(rules)
	slices.SortStableFunc(rules, func(a, b *Rule) int {
		return cmp.Compare(a.Action.precedence(), b.Action.precedence())
	})
	for i, r := range rules {
		if len(r.Args) == 0 {
			rules = rules[:i+1]
			break
		}
	}
	for len(rules) > 0 && rules[len(rules)-1].Action == def {
		rules = rules[:len(rules)-1]
	}
	switch {
	case len(rules) == 0:
		return def, nil
	case len(rules[0].Args) == 0:
		return rules[0].Action, nil
	case len(rules[len(rules)-1].Args) == 0:
		// The last rule always matches: it becomes the fall-through.
		return rules[len(rules)-1].Action, rules[:len(rules)-1]
	}
	return def, rules
}

// errTooFar reports that compactTree cannot lay out a policy because a jump
// would have to skip more than 255 instructions.
var errTooFar = errors.New("seccomp: jump too far")

// compactTree returns a binary search over segs in which a segment with a
// fixed action costs no instruction of its own: the search jumps straight
// to one return instruction per action, shared by all segments and placed
// after the search. The program of Docker's profile is about a third
// shorter this way, and the kernel's cost of loading a filter grows with
// its length. The layout needs every jump to reach its return, so it fails
// with errTooFar for large policies, which searchTree handles.
func compactTree(segs []segment) ([]bpf.Instruction, error) {
	// ref is the target of a jump: the start of a subtree in code, or a
	// shared return.
	type ref struct {
		shared bool
		action Action
		pos    int
	}
	type node struct {
		ins    bpf.Instruction // nil for a search node
		split  uint32
		jt, jf ref
	}
	var code []node
	var emit func(segs []segment) (ref, error)
	emit = func(segs []segment) (ref, error) {
		if len(segs) == 1 && segs[0].rules == nil {
			return ref{shared: true, action: segs[0].action}, nil
		}
		pos := len(code)
		if len(segs) == 1 {
			l, err := leaf(segs[0])
			if err != nil {
				return ref{}, err
			}
			for _, in := range l {
				code = append(code, node{ins: in})
			}
			return ref{pos: pos}, nil
		}
		mid := len(segs) / 2
		code = append(code, node{split: uint32(segs[mid].start)})
		left, err := emit(segs[:mid])
		if err != nil {
			return ref{}, err
		}
		right, err := emit(segs[mid:])
		if err != nil {
			return ref{}, err
		}
		code[pos].jt, code[pos].jf = right, left
		return ref{pos: pos}, nil
	}
	root, err := emit(segs)
	if err != nil {
		return nil, err
	}
	if root.shared {
		return []bpf.Instruction{bpf.RetConstant{Val: uint32(root.action)}}, nil
	}

	// The shared returns, in the order of first use.
	var pool []Action
	for _, n := range code {
		for _, r := range []ref{n.jt, n.jf} {
			if n.ins == nil && r.shared && !slices.Contains(pool, r.action) {
				pool = append(pool, r.action)
			}
		}
	}
	out := make([]bpf.Instruction, 0, len(code)+len(pool))
	for i, n := range code {
		if n.ins != nil {
			out = append(out, n.ins)
			continue
		}
		skip := func(r ref) (uint8, error) {
			target := r.pos
			if r.shared {
				target = len(code) + slices.Index(pool, r.action)
			}
			d := target - i - 1
			if d < 0 || d > math.MaxUint8 {
				return 0, errTooFar
			}
			return uint8(d), nil
		}
		jt, err := skip(n.jt)
		if err != nil {
			return nil, err
		}
		jf, err := skip(n.jf)
		if err != nil {
			return nil, err
		}
		out = append(out, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: n.split, SkipTrue: jt, SkipFalse: jf})
	}
	for _, a := range pool {
		out = append(out, bpf.RetConstant{Val: uint32(a)})
	}
	return out, nil
}

// searchTree returns a binary search over segs in which every segment has
// code of its own, so that no jump goes further than the next subtree. It expects the system call
// number in the accumulator, and every path through it ends in a return.
func searchTree(segs []segment, def Action) ([]bpf.Instruction, error) {
	if len(segs) == 1 {
		return leaf(segs[0])
	}
	mid := len(segs) / 2
	left, err := searchTree(segs[:mid], def)
	if err != nil {
		return nil, err
	}
	right, err := searchTree(segs[mid:], def)
	if err != nil {
		return nil, err
	}
	split := uint32(segs[mid].start)
	var out []bpf.Instruction
	if len(left) <= math.MaxUint8 {
		out = make([]bpf.Instruction, 0, 1+len(left)+len(right))
		out = append(out, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: split, SkipTrue: uint8(len(left))})
	} else {
		// A conditional jump reaches 255 instructions at most; hop over the
		// left half with an unconditional jump instead.
		out = make([]bpf.Instruction, 0, 2+len(left)+len(right))
		out = append(out,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: split, SkipFalse: 1},
			bpf.Jump{Skip: uint32(len(left))},
		)
	}
	out = append(out, left...)
	return append(out, right...), nil
}

// leaf returns the code of one segment: the rules in order, each of which
// either returns its action or goes on to the next, then the fall-through.
func leaf(s segment) ([]bpf.Instruction, error) {
	var out []bpf.Instruction
	for i := 0; i < len(s.rules); {
		// Consecutive rules that each test one word of the same argument
		// against one value, such as Docker's list of socket domains, share
		// their loads and their return.
		first, ok := simple(s.rules[i])
		n := 1
		for ok && i+n < len(s.rules) && n < maxGroup {
			t, ok2 := simple(s.rules[i+n])
			if !ok2 || !t.sameGroup(first) || s.rules[i+n].Action != s.rules[i].Action {
				break
			}
			n++
		}
		if ok {
			out = append(out, groupCode(s.rules[i:i+n])...)
			i += n
			continue
		}
		code, err := ruleCode(s.rules[i])
		if err != nil {
			return nil, fmt.Errorf("seccomp: rule for %v: %w", s.rules[i].Names, err)
		}
		out = append(out, code...)
		i++
	}
	return append(out, bpf.RetConstant{Val: uint32(s.action)}), nil
}

// maxGroup bounds the rules in one group so that its jumps stay within the
// 255 instructions a conditional jump can skip.
const maxGroup = 200

// simpleTest is a rule condition that one jump on the low word of an
// argument decides, after an optional equality check of the high word.
type simpleTest struct {
	index   uint8
	hiCheck bool
	hi      uint32
	test    bpf.JumpTest
	val     uint32
}

func (t simpleTest) sameGroup(u simpleTest) bool {
	return t.index == u.index && t.hiCheck == u.hiCheck && t.hi == u.hi
}

// simple reports whether r has a single condition of the simple kind: an
// equality, an equality of the low 32 bits, or a test of one bit.
func simple(r *Rule) (simpleTest, bool) {
	if len(r.Args) != 1 {
		return simpleTest{}, false
	}
	c := r.Args[0]
	lo := uint32(c.Value)
	switch {
	case c.Op == OpEq:
		return simpleTest{index: c.Index, hiCheck: true, hi: uint32(c.Value >> 32), test: bpf.JumpEqual, val: lo}, true
	case c.Op == OpMaskedEq && c.Mask == math.MaxUint32:
		return simpleTest{index: c.Index, test: bpf.JumpEqual, val: lo}, true
	case c.Op == OpMaskedEq && c.Mask>>32 == 0 && c.Mask == c.Value && c.Mask&(c.Mask-1) == 0 && c.Mask != 0:
		return simpleTest{index: c.Index, test: bpf.JumpBitsSet, val: lo}, true
	}
	return simpleTest{}, false
}

// groupCode returns the code of rules that are all simple, in one group,
// and share an action. It returns that action if any test holds and goes
// on after its end otherwise.
func groupCode(rules []*Rule) []bpf.Instruction {
	n := len(rules)
	first, _ := simple(rules[0])
	var out []bpf.Instruction
	if first.hiCheck {
		// Skip the low load, the n tests and the return.
		out = append(out,
			bpf.LoadAbsolute{Off: argHi(first.index), Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: first.hi, SkipFalse: uint8(n + 2)},
		)
	}
	out = append(out, bpf.LoadAbsolute{Off: argLo(first.index), Size: 4})
	for i, r := range rules {
		t, _ := simple(r)
		j := bpf.JumpIf{Cond: t.test, Val: t.val, SkipTrue: uint8(n - i - 1)}
		if i == n-1 {
			j.SkipFalse = 1 // over the return
		}
		out = append(out, j)
	}
	return append(out, bpf.RetConstant{Val: uint32(rules[0].Action)})
}

// Jump targets inside the code of one rule.
type target uint8

const (
	toNext target = iota // the next instruction
	toPass               // the end of this condition: it holds
	toFail               // the end of this rule: try the next one
)

// op is an instruction of a rule before its jumps are resolved. A jump
// has a non-nil test.
type op struct {
	ins  bpf.Instruction
	test *bpf.JumpTest
	val  uint32
	t, f target
}

func ld(off uint32) op   { return op{ins: bpf.LoadAbsolute{Off: off, Size: 4}} }
func and(mask uint32) op { return op{ins: bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask}} }
func jump(test bpf.JumpTest, val uint32, t, f target) op {
	return op{test: &test, val: val, t: t, f: f}
}

// condCode returns the code that falls through to its end when c holds and
// jumps to toFail when it does not. Each 64-bit comparison is made on the
// high word first and on the low word only when the high words are equal.
func condCode(c Cond) []op {
	hi, lo := uint32(c.Value>>32), uint32(c.Value)
	eq, gt, ge := bpf.JumpEqual, bpf.JumpGreaterThan, bpf.JumpGreaterOrEqual
	switch c.Op {
	case OpEq:
		return []op{ld(argHi(c.Index)), jump(eq, hi, toNext, toFail), ld(argLo(c.Index)), jump(eq, lo, toNext, toFail)}
	case OpNe:
		return []op{ld(argHi(c.Index)), jump(eq, hi, toNext, toPass), ld(argLo(c.Index)), jump(eq, lo, toFail, toNext)}
	case OpGt:
		return []op{ld(argHi(c.Index)), jump(gt, hi, toPass, toNext), jump(eq, hi, toNext, toFail), ld(argLo(c.Index)), jump(gt, lo, toNext, toFail)}
	case OpGe:
		return []op{ld(argHi(c.Index)), jump(gt, hi, toPass, toNext), jump(eq, hi, toNext, toFail), ld(argLo(c.Index)), jump(ge, lo, toNext, toFail)}
	case OpLt, OpLe:
		last := jump(ge, lo, toFail, toNext)
		if c.Op == OpLe {
			last = jump(gt, lo, toFail, toNext)
		}
		if hi == 0 {
			// No high word is below zero: only an equal one can pass.
			return []op{ld(argHi(c.Index)), jump(eq, 0, toNext, toFail), ld(argLo(c.Index)), last}
		}
		return []op{ld(argHi(c.Index)), jump(ge, hi, toNext, toPass), jump(eq, hi, toNext, toFail), ld(argLo(c.Index)), last}
	case OpMaskedEq:
		var out []op
		mhi, mlo := uint32(c.Mask>>32), uint32(c.Mask)
		for _, w := range []struct{ off, mask, val uint32 }{{argHi(c.Index), mhi, hi}, {argLo(c.Index), mlo, lo}} {
			if w.mask == 0 {
				continue // no bits of this word are compared
			}
			out = append(out, ld(w.off))
			if w.mask != math.MaxUint32 {
				out = append(out, and(w.mask))
			}
			out = append(out, jump(eq, w.val, toNext, toFail))
		}
		return out
	}
	panic("seccomp: condition not validated: " + c.String())
}

// ruleCode returns the code of one rule: its conditions, then a return of
// its action. When a condition fails, control goes to the instruction after
// the return.
func ruleCode(r *Rule) ([]bpf.Instruction, error) {
	var ops []op
	var ends []int // ends[i] is the end of the condition holding ops[i]
	for _, c := range r.Args {
		code := condCode(c)
		end := len(ops) + len(code)
		for range code {
			ends = append(ends, end)
		}
		ops = append(ops, code...)
	}
	total := len(ops) + 1 // with the return
	out := make([]bpf.Instruction, 0, total)
	for i, o := range ops {
		if o.test == nil {
			out = append(out, o.ins)
			continue
		}
		skip := func(t target) (uint8, error) {
			n := 0
			switch t {
			case toPass:
				n = ends[i] - i - 1
			case toFail:
				n = total - i - 1
			}
			if n > math.MaxUint8 {
				return 0, fmt.Errorf("%d conditions are too many for one rule", len(r.Args))
			}
			return uint8(n), nil
		}
		st, err := skip(o.t)
		if err != nil {
			return nil, err
		}
		sf, err := skip(o.f)
		if err != nil {
			return nil, err
		}
		out = append(out, bpf.JumpIf{Cond: *o.test, Val: o.val, SkipTrue: st, SkipFalse: sf})
	}
	return append(out, bpf.RetConstant{Val: uint32(r.Action)}), nil
}
