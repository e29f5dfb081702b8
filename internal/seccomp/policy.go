//go:build linux

package seccomp

import (
	"errors"
	"fmt"
)

// ErrUnknownSyscall is wrapped by the error that Validate, Compile and the
// profile parsers return for a system call name that no Linux architecture
// has.
var ErrUnknownSyscall = errors.New("unknown system call")

// Policy says what a filter does with each system call. It is plain data:
// build one as a literal, from DefaultPolicy, or from a Docker profile with
// ParseDockerProfile, then Compile it once and keep the Filter.
//
// An allow-list is a policy whose DefaultAction denies (Errno(unix.EPERM) or
// KillProcess) and whose rules allow; a deny-list is the reverse.
type Policy struct {
	// DefaultAction is what happens to a system call that no rule matches.
	// It must be set.
	DefaultAction Action

	// Rules are the exceptions to DefaultAction. A system call may appear in
	// several rules; when more than one matches a call, the most restrictive
	// action wins (kill-process, then trap, then errno, then log, then
	// allow), whatever the order of the rules. A rule for a call that the
	// target architecture does not have is ignored.
	Rules []Rule

	// Arch is the architecture the filter is for, by GOARCH name: "amd64"
	// or "arm64". The empty string means the running program's. The filter
	// kills the process on any system call made through another
	// architecture's ABI, including i386 (int 0x80) and x32 calls on amd64
	// and 32-bit ARM calls on arm64.
	Arch string
}

// Rule applies Action to the system calls in Names whose arguments satisfy
// every condition in Args.
type Rule struct {
	// Names are system call names as the kernel spells them ("openat",
	// "clone3"). A name that no architecture has is an error.
	Names []string
	// Action is what the filter does with a matching call. It must be set.
	Action Action
	// Args are conditions on the call's arguments, all of which must hold.
	// No conditions means the rule matches every call in Names.
	Args []Cond
}

// Op is a comparison of a system call argument with a value. All
// comparisons are unsigned and 64 bits wide.
type Op uint8

// The comparisons a condition can make, as in libseccomp.
const (
	opInvalid Op = iota
	// OpEq holds when the argument equals Value.
	OpEq
	// OpNe holds when the argument differs from Value.
	OpNe
	// OpLt holds when the argument is less than Value.
	OpLt
	// OpLe holds when the argument is less than or equal to Value.
	OpLe
	// OpGt holds when the argument is greater than Value.
	OpGt
	// OpGe holds when the argument is greater than or equal to Value.
	OpGe
	// OpMaskedEq holds when the argument ANDed with Mask equals Value.
	OpMaskedEq
)

var opNames = [...]string{"invalid", "==", "!=", "<", "<=", ">", ">=", "masked=="}

// String returns the comparison as an operator, such as "==".
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Cond is a condition on one argument of a system call.
//
// The kernel hands a filter every argument as 64 bits, but many system
// calls only look at the low 32 bits of an int argument (ioctl's request,
// socket's domain, clone's flags on some paths). A condition that denies a
// value of such an argument must therefore use OpMaskedEq with a Mask of
// 0xffffffff, or a caller could set the high bits to slip past it (as in
// CVE-2019-10063). ArgEq32 builds that condition.
type Cond struct {
	// Index is the argument's position, from 0 to 5.
	Index uint8
	// Op is the comparison. It must be set.
	Op Op
	// Value is the value the argument is compared with.
	Value uint64
	// Mask is ANDed with the argument before OpMaskedEq compares it with
	// Value. Other comparisons ignore it.
	Mask uint64
}

// ArgEq returns the condition that argument index equals value.
func ArgEq(index uint8, value uint64) Cond { return Cond{Index: index, Op: OpEq, Value: value} }

// ArgEq32 returns the condition that the low 32 bits of argument index
// equal value, whatever its high bits are.
func ArgEq32(index uint8, value uint32) Cond {
	return Cond{Index: index, Op: OpMaskedEq, Mask: 0xffffffff, Value: uint64(value)}
}

// ArgMaskedEq returns the condition that argument index ANDed with mask
// equals value.
func ArgMaskedEq(index uint8, mask, value uint64) Cond {
	return Cond{Index: index, Op: OpMaskedEq, Mask: mask, Value: value}
}

// String returns the condition in the form "arg1 & 0xffffffff == 0x5412".
func (c Cond) String() string {
	if c.Op == OpMaskedEq {
		return fmt.Sprintf("arg%d & %#x == %#x", c.Index, c.Mask, c.Value)
	}
	return fmt.Sprintf("arg%d %v %#x", c.Index, c.Op, c.Value)
}

func (c Cond) validate() error {
	if c.Index > 5 {
		return fmt.Errorf("argument index %d: must be between 0 and 5", c.Index)
	}
	if c.Op == opInvalid || int(c.Op) >= len(opNames) {
		return fmt.Errorf("argument %d: comparison %v is not supported", c.Index, c.Op)
	}
	if c.Op == OpMaskedEq && c.Value&^c.Mask != 0 {
		return fmt.Errorf("argument %d: value %#x has bits outside mask %#x and can never match", c.Index, c.Value, c.Mask)
	}
	return nil
}

// Validate checks the policy without compiling it: every action is set and
// valid, every system call name is known, and every condition is well
// formed. Its errors name the rule and the field, and wrap
// ErrUnknownSyscall for an unknown name.
func (p *Policy) Validate() error {
	if _, err := archFor(p.Arch); err != nil {
		return err
	}
	if err := p.DefaultAction.validate(); err != nil {
		return fmt.Errorf("seccomp: DefaultAction: %w", err)
	}
	for i, r := range p.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("seccomp: Rules[%d]: %w", i, err)
		}
	}
	return nil
}

func (r *Rule) validate() error {
	if len(r.Names) == 0 {
		return errors.New("Names: no system call named")
	}
	for j, name := range r.Names {
		if !knownSyscall(name) {
			return fmt.Errorf("Names[%d]: %q: %w", j, name, ErrUnknownSyscall)
		}
	}
	if err := r.Action.validate(); err != nil {
		return fmt.Errorf("Action: %w", err)
	}
	for k, c := range r.Args {
		if err := c.validate(); err != nil {
			return fmt.Errorf("Args[%d]: %w", k, err)
		}
	}
	return nil
}
