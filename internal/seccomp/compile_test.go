//go:build linux

package seccomp

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// call describes one system call for the table tests, by name so that the
// same table serves every architecture.
type call struct {
	name string
	args [6]uint64
}

func (c call) data(tb testing.TB, arch *archInfo) seccompData {
	tb.Helper()
	nr, ok := arch.number(c.name)
	if !ok {
		tb.Fatalf("%s has no system call %q", arch.goarch, c.name)
	}
	return seccompData{nr: nr, arch: arch.auditArch, args: c.args}
}

const (
	threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_SYSVSEM | unix.CLONE_THREAD | unix.CLONE_SETTLS |
		unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
	forkFlags  = uint64(unix.SIGCHLD)
	vforkFlags = unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD)
	high       = uint64(1) << 32 // garbage in the high word of a 32-bit argument
)

var (
	eperm  = Errno(unix.EPERM)
	enosys = Errno(unix.ENOSYS)
)

// TestCompileMatchesReference compiles random policies over a small set
// of system calls and values chosen to collide, and checks the program
// against the reference evaluator on random inputs. It covers every
// comparison, rule ordering, precedence between actions, and grouping.
func TestCompileMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"read", "write", "ioctl", "socket", "clone", "personality", "mount", "getpid"}
	values := []uint64{0, 1, 2, 7, 0x5412, 0xffffffff, 1 << 32, 1<<32 | 7, 0x8000_0000_0000_0000, math.MaxUint64}
	actions := []Action{Allow, eperm, enosys, KillProcess, Trap, Log, Errno(unix.EACCES)}
	pick := func(s []uint64) uint64 { return s[rng.IntN(len(s))] }
	for iter := range 300 {
		p := &Policy{Arch: arches[iter%len(arches)].goarch, DefaultAction: actions[rng.IntN(len(actions))]}
		for range rng.IntN(12) {
			r := Rule{Action: actions[rng.IntN(len(actions))]}
			for range 1 + rng.IntN(2) {
				r.Names = append(r.Names, names[rng.IntN(len(names))])
			}
			for range rng.IntN(3) {
				c := Cond{Index: uint8(rng.IntN(3)), Op: Op(1 + rng.IntN(int(OpMaskedEq))), Value: pick(values)}
				if c.Op == OpMaskedEq {
					c.Mask = pick(values)
					c.Value &= c.Mask
					if rng.IntN(2) == 0 {
						c.Mask, c.Value = 0xffffffff, c.Value&0xffffffff
					}
				}
				r.Args = append(r.Args, c)
			}
			p.Rules = append(p.Rules, r)
		}
		f, err := Compile(p)
		if err != nil {
			t.Fatalf("policy %d: %v", iter, err)
		}
		e := newEvaluator(t, f)
		arch, _ := archFor(p.Arch)
		for range 200 {
			nr, _ := arch.number(names[rng.IntN(len(names))])
			d := seccompData{nr: nr, arch: arch.auditArch}
			for i := range 3 {
				d.args[i] = pick(values) + uint64(rng.IntN(3)) - 1
			}
			if got, want := e.eval(t, d), reference(p, d); got != want {
				t.Fatalf("policy %d %+v:\n%v = %v, reference says %v", iter, p, d, got, want)
			}
		}
	}
}

func TestCompileLongJumps(t *testing.T) {
	// Many conditional calls make the left half of the search tree longer
	// than a conditional jump can skip.
	amd64 := lookupArch("amd64")
	p := &Policy{DefaultAction: eperm, Arch: "amd64"}
	for _, e := range amd64.table {
		p.Rules = append(p.Rules, Rule{Names: []string{e.name}, Action: Allow, Args: []Cond{ArgEq(0, uint64(e.nr))}})
	}
	f, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvaluator(t, f)
	hasJA := slices.ContainsFunc(f.prog, func(in unix.SockFilter) bool { return in.Code == unix.BPF_JMP|unix.BPF_JA })
	if !hasJA {
		t.Errorf("expected an unconditional jump in a %d-instruction program", f.Len())
	}
	for _, e := range amd64.table {
		for _, arg := range []uint64{uint64(e.nr), uint64(e.nr) + 1} {
			d := seccompData{nr: e.nr, arch: amd64.auditArch, args: [6]uint64{arg}}
			if got, want := ev.eval(t, d), reference(p, d); got != want {
				t.Fatalf("%s(%d) = %v, want %v", e.name, arg, got, want)
			}
		}
	}
}

func TestCompileTooLong(t *testing.T) {
	amd64 := lookupArch("amd64")
	p := &Policy{DefaultAction: eperm, Arch: "amd64"}
	for _, e := range amd64.table {
		for v := range 3 {
			p.Rules = append(p.Rules, Rule{Names: []string{e.name}, Action: Allow,
				Args: []Cond{{Index: 0, Op: OpGt, Value: uint64(v)}, {Index: 1, Op: OpLt, Value: uint64(v)}}})
		}
	}
	if _, err := Compile(p); err == nil {
		t.Fatal("compiled a program longer than the kernel allows")
	}
}

func TestCompileCustomPolicies(t *testing.T) {
	amd64 := lookupArch("amd64")
	for _, tc := range []struct {
		name  string
		p     Policy
		calls []call
		want  []Action
	}{{
		name:  "allow-list with errno",
		p:     Policy{DefaultAction: Errno(unix.EACCES), Rules: []Rule{{Names: []string{"read", "write", "exit_group"}, Action: Allow}}},
		calls: []call{{name: "read"}, {name: "exit_group"}, {name: "openat"}, {name: "mount"}},
		want:  []Action{Allow, Allow, Errno(unix.EACCES), Errno(unix.EACCES)},
	}, {
		name:  "allow-list with kill",
		p:     Policy{DefaultAction: KillProcess, Rules: []Rule{{Names: []string{"read", "write"}, Action: Allow}}},
		calls: []call{{name: "read"}, {name: "getpid"}},
		want:  []Action{Allow, KillProcess},
	}, {
		name:  "deny-list",
		p:     Policy{DefaultAction: Allow, Rules: []Rule{{Names: []string{"mount", "keyctl"}, Action: eperm}, {Names: []string{"bpf"}, Action: KillProcess}}},
		calls: []call{{name: "read"}, {name: "mount"}, {name: "keyctl"}, {name: "bpf"}},
		want:  []Action{Allow, eperm, eperm, KillProcess},
	}, {
		name: "deny wins whatever the order",
		p: Policy{DefaultAction: Allow, Rules: []Rule{
			{Names: []string{"ioctl"}, Action: Allow},
			{Names: []string{"ioctl"}, Action: eperm, Args: []Cond{ArgEq32(1, unix.TIOCSTI)}},
		}},
		calls: []call{{name: "ioctl", args: [6]uint64{0, unix.TCGETS}}, {name: "ioctl", args: [6]uint64{0, unix.TIOCSTI | high}}},
		want:  []Action{Allow, eperm},
	}, {
		name:  "calls of other architectures are ignored",
		p:     Policy{DefaultAction: Allow, Rules: []Rule{{Names: []string{"socketcall", "umount", "mount"}, Action: eperm}}},
		calls: []call{{name: "mount"}, {name: "read"}},
		want:  []Action{eperm, Allow},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Arch = "amd64"
			f, err := Compile(&tc.p)
			if err != nil {
				t.Fatal(err)
			}
			e := newEvaluator(t, f)
			for i, c := range tc.calls {
				if got := e.eval(t, c.data(t, amd64)); got != tc.want[i] {
					t.Errorf("%s%#x = %v, want %v", c.name, c.args[:2], got, tc.want[i])
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Rule{Names: []string{"read"}, Action: Allow}
	for _, tc := range []struct {
		p       Policy
		wantErr string
		is      error
	}{
		{Policy{DefaultAction: Allow, Rules: []Rule{ok}}, "", nil},
		{Policy{Rules: []Rule{ok}}, "seccomp: DefaultAction: action not set", nil},
		{Policy{DefaultAction: Action(unix.SECCOMP_RET_KILL_THREAD)}, "seccomp: DefaultAction: action not set", nil},
		{Policy{DefaultAction: Action(unix.SECCOMP_RET_TRACE)}, "seccomp: DefaultAction: action 0x7ff00000 is not supported", nil},
		{Policy{DefaultAction: Errno(0)}, "seccomp: DefaultAction: errno action with error number 0: must be between 1 and 4095", nil},
		{Policy{DefaultAction: Errno(5000)}, "seccomp: DefaultAction: errno action with error number 5000: must be between 1 and 4095", nil},
		{Policy{DefaultAction: Allow, Arch: "s390x"}, `seccomp: architecture "s390x": unsupported operation`, errors.ErrUnsupported},
		{Policy{DefaultAction: Allow, Rules: []Rule{ok, {Names: []string{"read", "frobnicate"}, Action: Allow}}},
			`seccomp: Rules[1]: Names[1]: "frobnicate": unknown system call`, ErrUnknownSyscall},
		{Policy{DefaultAction: Allow, Rules: []Rule{{Action: Allow}}}, "seccomp: Rules[0]: Names: no system call named", nil},
		{Policy{DefaultAction: Allow, Rules: []Rule{{Names: []string{"read"}}}}, "seccomp: Rules[0]: Action: action not set", nil},
		{Policy{DefaultAction: Allow, Rules: []Rule{{Names: []string{"read"}, Action: eperm, Args: []Cond{{Index: 6, Op: OpEq}}}}},
			"seccomp: Rules[0]: Args[0]: argument index 6: must be between 0 and 5", nil},
		{Policy{DefaultAction: Allow, Rules: []Rule{{Names: []string{"read"}, Action: eperm, Args: []Cond{{Index: 1}}}}},
			"seccomp: Rules[0]: Args[0]: argument 1: comparison invalid is not supported", nil},
		{Policy{DefaultAction: Allow, Rules: []Rule{{Names: []string{"read"}, Action: eperm, Args: []Cond{ArgMaskedEq(0, 0xf0, 0x0f)}}}},
			"seccomp: Rules[0]: Args[0]: argument 0: value 0xf has bits outside mask 0xf0 and can never match", nil},
	} {
		err := tc.p.Validate()
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.p, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("%+v:\n got %v\nwant %s", tc.p, err, tc.wantErr)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%v does not match %v", err, tc.is)
		}
		if _, cerr := Compile(&tc.p); cerr == nil {
			t.Errorf("Compile accepted %+v", tc.p)
		}
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{
		Allow: "allow", KillProcess: "kill-process", Trap: "trap", Log: "log",
		eperm: "errno(EPERM)", enosys: "errno(ENOSYS)", Errno(4000): "errno(4000)", 0: "unset",
	} {
		if got := a.String(); got != want {
			t.Errorf("%#x: %q, want %q", uint32(a), got, want)
		}
	}
}

// TestTablesMatchXSys checks the generated table of the running
// architecture against the x/sys constants compiled into this program, for
// the calls the default policy depends on.
func TestTablesMatchXSys(t *testing.T) {
	native, err := archFor("")
	if err != nil {
		t.Skip(err)
	}
	for name, nr := range nativeNumbers {
		if got, ok := native.number(name); !ok || got != uint32(nr) {
			t.Errorf("%s: table says %d (%v), x/sys says %d", name, got, ok, nr)
		}
	}
	if !slices.IsSortedFunc(native.table, func(a, b sysEntry) int { return compareString(a.name, b.name) }) {
		t.Error("table is not sorted by name")
	}
	if !slices.IsSorted(sysNamesAnyArch) {
		t.Error("sysNamesAnyArch is not sorted")
	}
}

func compareString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
