//go:build linux

package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ProfileOptions are the facts a Docker profile's conditional rules
// ("includes" and "excludes") are evaluated against. The zero value
// describes a sandbox on the running machine that keeps no capabilities.
type ProfileOptions struct {
	// Arch is the architecture to build the policy for, by GOARCH name
	// ("amd64", "arm64"). Empty means the running program's.
	Arch string
	// Caps are the capabilities the sandboxed process keeps in its bounding
	// set, by name ("CAP_SYS_PTRACE"). Rules that need a capability the
	// sandbox does not keep are left out. Nil means none.
	Caps []string
	// Kernel is the kernel version "minKernel" conditions are compared
	// with, as "major.minor" ("6.8"). Empty means the running kernel's.
	Kernel string
	// OwnTerminal says that the only terminal the sandbox holds is a
	// pseudo-terminal of its own devpts: DefaultPolicy then leaves out
	// the terminal denials (see terminalDenials), whose harm stays in
	// that terminal, so that job control and full-screen programs work.
	OwnTerminal bool
}

// ParseDockerProfile parses a seccomp profile in Docker's JSON format (the
// format of `docker run --security-opt seccomp=FILE`) and evaluates its
// conditional rules with opts. Everything is checked before anything runs:
// unknown fields, unknown system call names (wrapping ErrUnknownSyscall),
// unknown actions, comparisons and capability names are errors that name
// the field.
//
// Where Docker's format means more than a Policy can, the parser is strict:
// SCMP_ACT_KILL and SCMP_ACT_KILL_THREAD become KillProcess (a killed thread
// would leave the rest of a Go program running); SCMP_ACT_TRACE,
// SCMP_ACT_NOTIFY, "flags" and "listenerPath" are refused. "architectures"
// and "archMap" are checked but do not widen the filter: it admits the
// native ABI only. Several conditions in one rule must all hold.
func ParseDockerProfile(data []byte, opts ProfileOptions) (*Policy, error) {
	var prof mobyseccomp.Seccomp
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&prof); err != nil {
		return nil, fmt.Errorf("seccomp: docker profile: %w", err)
	}
	if dec.More() {
		return nil, errors.New("seccomp: docker profile: data after the JSON object")
	}
	p, err := fromDocker(&prof, opts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: docker profile: %w", err)
	}
	return p, nil
}

// fromDocker converts a Docker profile into a Policy for opts.
func fromDocker(prof *mobyseccomp.Seccomp, opts ProfileOptions) (*Policy, error) {
	arch, err := archFor(opts.Arch)
	if err != nil {
		return nil, err
	}
	if err := checkCaps("Caps", opts.Caps); err != nil {
		return nil, err
	}
	if prof.DefaultAction == "" {
		return nil, errors.New("defaultAction: not set")
	}
	if len(prof.Architectures) > 0 && len(prof.ArchMap) > 0 {
		return nil, errors.New("architectures and archMap: only one may be given")
	}
	for i, a := range prof.Architectures {
		if !slices.Contains(scmpArches, a) {
			return nil, fmt.Errorf("architectures[%d]: unknown architecture %q", i, a)
		}
	}
	for i, m := range prof.ArchMap {
		for _, a := range append([]specs.Arch{m.Arch}, m.SubArches...) {
			if !slices.Contains(scmpArches, a) {
				return nil, fmt.Errorf("archMap[%d]: unknown architecture %q", i, a)
			}
		}
	}
	if len(prof.Flags) > 0 {
		return nil, errors.New("flags: not supported; the sandbox chooses how the filter is loaded")
	}
	if prof.ListenerPath != "" || prof.ListenerMetadata != "" {
		return nil, errors.New("listenerPath: user notification is not supported")
	}
	if len(prof.LinuxSeccomp.Syscalls) > 0 {
		return nil, errors.New("syscalls: the embedded runtime-spec list must be empty")
	}

	p := &Policy{Arch: arch.goarch}
	p.DefaultAction, err = dockerAction(prof.DefaultAction, prof.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}

	for i, sc := range prof.Syscalls {
		if sc == nil {
			return nil, fmt.Errorf("syscalls[%d]: null", i)
		}
		names := sc.Names
		if sc.Name != "" {
			if len(sc.Names) > 0 {
				return nil, fmt.Errorf("syscalls[%d]: both name and names are given", i)
			}
			names = []string{sc.Name}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("syscalls[%d]: names: no system call named", i)
		}
		for j, n := range names {
			if !knownSyscall(n) {
				return nil, fmt.Errorf("syscalls[%d].names[%d]: %q: %w", i, j, n, ErrUnknownSyscall)
			}
		}
		apply, err := applies(sc, arch.goarch, opts)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		action, err := dockerAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d].action: %w", i, err)
		}
		r := Rule{Names: slices.Clone(names), Action: action}
		for k, a := range sc.Args {
			c, err := dockerCond(a)
			if err != nil {
				return nil, fmt.Errorf("syscalls[%d].args[%d]: %w", i, k, err)
			}
			r.Args = append(r.Args, c)
		}
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		if apply {
			p.Rules = append(p.Rules, r)
		}
	}
	return p, nil
}

// applies evaluates a rule's includes and excludes the way Docker does: a
// rule is left out when an excluded architecture or capability is present
// or the kernel is at least the excluded version, and when an included
// architecture list lacks the target, an included capability is missing,
// or the kernel is older than the included version.
func applies(sc *mobyseccomp.Syscall, goarch string, opts ProfileOptions) (bool, error) {
	if ex := sc.Excludes; ex != nil {
		if err := checkFilter("excludes", ex); err != nil {
			return false, err
		}
		if slices.Contains(ex.Arches, goarch) {
			return false, nil
		}
		for _, c := range ex.Caps {
			if slices.Contains(opts.Caps, c) {
				return false, nil
			}
		}
		if ex.MinKernel != nil {
			ok, err := kernelAtLeast(opts.Kernel, *ex.MinKernel)
			if err != nil || ok {
				return false, err
			}
		}
	}
	if in := sc.Includes; in != nil {
		if err := checkFilter("includes", in); err != nil {
			return false, err
		}
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, goarch) {
			return false, nil
		}
		for _, c := range in.Caps {
			if !slices.Contains(opts.Caps, c) {
				return false, nil
			}
		}
		if in.MinKernel != nil {
			ok, err := kernelAtLeast(opts.Kernel, *in.MinKernel)
			if err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

func checkFilter(field string, f *mobyseccomp.Filter) error {
	for i, a := range f.Arches {
		if !slices.Contains(nativeArchNames, a) {
			return fmt.Errorf("%s.arches[%d]: unknown architecture %q", field, i, a)
		}
	}
	return checkCaps(field+".caps", f.Caps)
}

// dockerAction converts a libseccomp action name.
func dockerAction(a specs.LinuxSeccompAction, errnoRet *uint) (Action, error) {
	if errnoRet != nil && a != specs.ActErrno {
		return 0, fmt.Errorf("errnoRet is only meaningful with %s, not %s", specs.ActErrno, a)
	}
	switch a {
	case specs.ActAllow:
		return Allow, nil
	case specs.ActErrno:
		e := uint(unix.EPERM)
		if errnoRet != nil {
			e = *errnoRet
		}
		if e == 0 || e > maxErrno {
			return 0, fmt.Errorf("errnoRet %d: must be between 1 and %d", e, maxErrno)
		}
		return Errno(unix.Errno(e)), nil
	case specs.ActKill, specs.ActKillThread, specs.ActKillProcess:
		return KillProcess, nil
	case specs.ActTrap:
		return Trap, nil
	case specs.ActLog:
		return Log, nil
	case specs.ActTrace, specs.ActNotify:
		return 0, fmt.Errorf("%s is not supported", a)
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// dockerCond converts one argument comparison. For SCMP_CMP_MASKED_EQ,
// libseccomp takes the mask in value and the expected value in valueTwo.
func dockerCond(a specs.LinuxSeccompArg) (Cond, error) {
	if a.Index > 5 {
		return Cond{}, fmt.Errorf("index %d: must be between 0 and 5", a.Index)
	}
	c := Cond{Index: uint8(a.Index), Value: a.Value}
	switch a.Op {
	case specs.OpEqualTo:
		c.Op = OpEq
	case specs.OpNotEqual:
		c.Op = OpNe
	case specs.OpLessThan:
		c.Op = OpLt
	case specs.OpLessEqual:
		c.Op = OpLe
	case specs.OpGreaterThan:
		c.Op = OpGt
	case specs.OpGreaterEqual:
		c.Op = OpGe
	case specs.OpMaskedEqual:
		c.Op, c.Mask, c.Value = OpMaskedEq, a.Value, a.ValueTwo
	default:
		return Cond{}, fmt.Errorf("op: unknown comparison %q", a.Op)
	}
	if c.Op != OpMaskedEq && a.ValueTwo != 0 {
		return Cond{}, fmt.Errorf("valueTwo: only meaningful with %s", specs.OpMaskedEqual)
	}
	return c, nil
}

// kernelAtLeast reports whether the kernel release given (or the running
// one, when release is empty) is at least min.
func kernelAtLeast(release string, min mobyseccomp.KernelVersion) (bool, error) {
	var major, minor uint64
	var err error
	if release == "" {
		var v [2]uint64
		v, err = runningKernel()
		major, minor = v[0], v[1]
	} else {
		major, minor, err = parseKernel(release)
	}
	if err != nil {
		return false, err
	}
	return major > min.Kernel || major == min.Kernel && minor >= min.Major, nil
}

// runningKernel returns the major and minor version of the running kernel,
// read once.
var runningKernel = sync.OnceValues(func() ([2]uint64, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return [2]uint64{}, fmt.Errorf("uname: %w", err)
	}
	major, minor, err := parseKernel(unix.ByteSliceToString(uts.Release[:]))
	return [2]uint64{major, minor}, err
})

// parseKernel reads the major and minor numbers of a kernel release such
// as "6.8", "6.8.0-45-generic" or "3.12-rc5".
func parseKernel(release string) (uint64, uint64, error) {
	majorS, rest, ok := strings.Cut(release, ".")
	if !ok {
		return 0, 0, fmt.Errorf("kernel version %q: want major.minor", release)
	}
	minorS := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorS = rest[:i]
	}
	major, err1 := strconv.ParseUint(majorS, 10, 16)
	minor, err2 := strconv.ParseUint(minorS, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("kernel version %q: want major.minor", release)
	}
	return major, minor, nil
}

// scmpArches are the values of a profile's "architectures" field.
var scmpArches = []specs.Arch{
	specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL,
	specs.ArchMIPSEL64, specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64,
	specs.ArchPPC64LE, specs.ArchS390, specs.ArchS390X, specs.ArchPARISC,
	specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64, specs.ArchM68K,
	specs.ArchSH, specs.ArchSHEB,
}

// nativeArchNames are the architecture names of includes and excludes
// conditions, which Docker takes from libseccomp's native names. Those of
// amd64 and arm64 coincide with their GOARCH names.
var nativeArchNames = []string{
	"x86", "amd64", "x32", "arm", "arm64", "loongarch64", "mips", "mips64",
	"mips64n32", "mipsel", "mipsel64", "mips3l64n32", "mipsel64n32", "ppc",
	"ppc64", "ppc64le", "riscv64", "s390", "s390x", "parisc", "parisc64",
	"m68k", "sh", "sheb",
}
