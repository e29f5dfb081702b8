//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/seccomp"
)

// Security holds the defences a sandbox's processes run under on top of
// its namespaces. The zero value is the safe choice: no capabilities,
// no_new_privs, the default seccomp filter, Landlock on the sandbox's own
// mounts (best effort), and no /sys. Every field that weakens a defence
// says so in its name or its comment.
type Security struct {
	// Capabilities names capabilities the sandbox's processes keep, such
	// as "CAP_NET_BIND_SERVICE". They are kept in the bounding, permitted
	// and effective sets, and for a command that is not root in the
	// ambient and inheritable sets, so that it has them after execve; the
	// default seccomp policy is then built for that set (Docker's profile
	// allows more system calls to a process holding CAP_SYS_PTRACE, say).
	// Danger: each capability opens kernel code to the sandbox, over
	// everything its user namespace owns, and several (CAP_SYS_ADMIN,
	// CAP_NET_ADMIN, CAP_SYS_PTRACE) are a large part of the kernel. Nil
	// keeps none. An unknown name is a *ConfigError.
	Capabilities []string

	// Seccomp, if set, is the system call policy in place of the default
	// (Docker's allow-list with stockade's denials, see SeccompPolicy).
	// Danger: a policy that allows what the default denies opens that
	// kernel surface to the sandbox.
	Seccomp *SeccompPolicy
	// SeccompProfile, if set, is a seccomp profile in Docker's JSON format
	// (`docker run --security-opt seccomp=FILE`) in place of the default.
	// Its conditional rules are evaluated for this machine and for
	// Capabilities. Trace and notify actions are refused, kill-thread
	// becomes kill-process, and the filter admits the native ABI only.
	SeccompProfile []byte
	// SeccompUnconfined runs the sandbox without a seccomp filter. Danger:
	// every system call the kernel has is then open to the sandbox.
	// Only one of Seccomp, SeccompProfile and SeccompUnconfined may be set.
	SeccompUnconfined bool

	// Landlock limits the file system access of the sandbox's processes to
	// its own mounts with their modes, and TCP ports on request. See
	// Landlock.
	Landlock Landlock

	// Sysfs mounts a read-only /sys, with /sys/firmware and
	// /sys/devices/virtual/powercap masked. It shows the devices of the
	// host and the links of the sandbox's own network namespace; mounting
	// it needs that namespace to belong to the sandbox, so it fails with a
	// prepared (pooled) network namespace. False leaves /sys absent.
	Sysfs bool
}

// Landlock configures the Landlock LSM (Linux 5.13) for a sandbox. The
// zero value applies it, best effort: every process of the sandbox may
// read and execute anything in the sandbox's root file system and write
// only in its writable mounts (the working directory, /tmp, /dev/shm,
// writable binds, a WritableRoot), it may use the device nodes of /dev;
// with Landlock ABI 4 (Linux 6.7) it may neither bind nor connect a TCP
// socket on any port; and with ABI 6 (Linux 6.12) it can neither connect
// to an abstract unix socket nor signal a process outside the sandbox. A
// descriptor of a host directory that reaches the sandbox (an ExtraFiles
// entry, say) opens nothing beneath it. What was enforced is in
// Sandbox.Confinement, and what best effort left out in Result.Notes.
type Landlock struct {
	// Disabled turns Landlock off. Danger: a leaked descriptor of a host
	// directory then reaches the host file system.
	Disabled bool
	// Strict makes Start fail with a *FeatureError (matching
	// ErrNotSupported) when the kernel cannot enforce every rule asked for:
	// no Landlock, or an ABI too old for file moves (2), TCP rules (4) or
	// scopes (6). False applies what the kernel can and notes the rest.
	Strict bool
	// WritablePaths, when not empty, are the only paths the command may
	// write beneath, instead of every writable mount. Each must be an
	// absolute path inside a writable mount of the sandbox (the working
	// directory, /tmp, /dev/shm, a writable bind or a writable root);
	// anything else is a *ConfigError naming it. A path that does not
	// exist when the sandbox starts, or that a link leads out of the root
	// or through /proc/self/fd, gets no rule and stays unwritable.
	WritablePaths []string
	// BindTCP and ConnectTCP are the only TCP ports the sandbox may bind
	// and connect to (Landlock ABI 4, Linux 6.7): by default it may bind
	// and connect to none, on loopback as anywhere. Nil allows none. Two
	// things of Config.Network count as asking for TCP: the inside ports
	// of Network.Ports may always be bound, and a sandbox given a network
	// (ShareHost, Link or Networks) with neither list set has no TCP limit
	// (set the lists to keep one).
	BindTCP    []uint16
	ConnectTCP []uint16
	// AnyTCP lifts the TCP limits: any port may be bound and connected to.
	// Danger: a sandbox with a network then reaches every TCP service it
	// can route to.
	AnyTCP bool
}

// SeccompPolicy is a custom system call policy: an allow-list (a
// DefaultAction that denies, and rules that allow) or a deny-list (the
// reverse). When several rules match a call, the most restrictive action
// wins (kill, then errno, then log, then allow), whatever their order. A
// call made through another ABI (i386 or x32 on amd64) always kills the
// process.
type SeccompPolicy struct {
	// DefaultAction is what happens to a system call that no rule matches.
	// It must be set, unless ExtendDefault is.
	DefaultAction SeccompAction
	// DefaultErrno is the error a SeccompErrno DefaultAction returns. Zero
	// means EPERM.
	DefaultErrno syscall.Errno
	// Rules are the exceptions.
	Rules []SeccompRule
	// ExtendDefault adds Rules to the default policy (Docker's allow-list
	// and stockade's denials) instead of replacing it; DefaultAction must
	// then be zero. Rules that deny take effect; rules that allow a call
	// the default denies explicitly (mount, ptrace …) do not, since the
	// most restrictive match wins, but they can allow calls that Docker's
	// list leaves out.
	ExtendDefault bool
}

// SeccompAction is what a seccomp filter does with a system call.
type SeccompAction int

// The actions of a SeccompPolicy.
const (
	// SeccompAllow lets the system call run.
	SeccompAllow SeccompAction = iota + 1
	// SeccompErrno makes the call fail with an error (EPERM unless the
	// rule says otherwise) without running it.
	SeccompErrno
	// SeccompKill kills the whole process with SIGSYS; the Result's
	// Reason is then SeccompKilled.
	SeccompKill
	// SeccompLog lets the call run and records it in the kernel's audit
	// log.
	SeccompLog
)

// SeccompRule applies Action to the system calls in Names whose arguments
// satisfy every condition in Args.
type SeccompRule struct {
	// Names are system call names as the kernel spells them ("openat").
	Names []string
	// Action is what the filter does with a matching call. It must be set.
	Action SeccompAction
	// Errno is the error a SeccompErrno action returns. Zero means EPERM.
	Errno syscall.Errno
	// Args are conditions on the call's arguments, all of which must hold.
	Args []SeccompArg
}

// SeccompArg is a condition on one argument of a system call. Comparisons
// are unsigned and 64 bits wide; many calls read only the low 32 bits of
// an int argument, so a condition that denies a value of one should use
// SeccompMaskedEq with a Mask of 0xffffffff.
type SeccompArg struct {
	// Index is the argument's position, from 0 to 5.
	Index uint8
	// Op is the comparison. It must be set.
	Op SeccompOp
	// Value is what the argument is compared with.
	Value uint64
	// Mask is ANDed with the argument before SeccompMaskedEq compares it
	// with Value.
	Mask uint64
}

// SeccompOp is a comparison of a SeccompArg.
type SeccompOp int

// The comparisons of a SeccompArg.
const (
	SeccompEq SeccompOp = iota + 1
	SeccompNe
	SeccompLt
	SeccompLe
	SeccompGt
	SeccompGe
	SeccompMaskedEq
)

// seccompOp converts a comparison; a switch rather than a map, so that the
// init stage, which re-executes this binary, pays nothing for it at start.
func seccompOp(op SeccompOp) (seccomp.Op, bool) {
	switch op {
	case SeccompEq:
		return seccomp.OpEq, true
	case SeccompNe:
		return seccomp.OpNe, true
	case SeccompLt:
		return seccomp.OpLt, true
	case SeccompLe:
		return seccomp.OpLe, true
	case SeccompGt:
		return seccomp.OpGt, true
	case SeccompGe:
		return seccomp.OpGe, true
	case SeccompMaskedEq:
		return seccomp.OpMaskedEq, true
	}
	return 0, false
}

func (s *Security) clone() Security {
	d := *s
	d.Capabilities = slices.Clone(s.Capabilities)
	d.SeccompProfile = slices.Clone(s.SeccompProfile)
	d.Landlock.WritablePaths = slices.Clone(s.Landlock.WritablePaths)
	d.Landlock.BindTCP = slices.Clone(s.Landlock.BindTCP)
	d.Landlock.ConnectTCP = slices.Clone(s.Landlock.ConnectTCP)
	if s.Seccomp != nil {
		p := *s.Seccomp
		p.Rules = slices.Clone(p.Rules)
		for i := range p.Rules {
			p.Rules[i].Names = slices.Clone(p.Rules[i].Names)
			p.Rules[i].Args = slices.Clone(p.Rules[i].Args)
		}
		d.Seccomp = &p
	}
	return d
}

// validateSecurity checks c.Security; c has its defaults filled in. It
// compiles the seccomp filter (once per policy and process), so that a bad
// policy is reported before anything starts.
func (c *Config) validateSecurity() error {
	s := &c.Security
	if _, err := capNumbers(s.Capabilities); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{s.Seccomp != nil, s.SeccompProfile != nil, s.SeccompUnconfined} {
		if set {
			n++
		}
	}
	if n > 1 {
		return configErr("Security.Seccomp", "only one of Seccomp, SeccompProfile and SeccompUnconfined may be set")
	}
	if s.Seccomp != nil {
		if _, err := s.Seccomp.policy(); err != nil {
			return err
		}
	}
	if _, err := s.filter(); err != nil {
		return err
	}
	return c.validateLandlock()
}

// capNumbers returns the numbers of the named capabilities, or a
// *ConfigError naming the first unknown or repeated one.
func capNumbers(names []string) ([]int, error) {
	var caps []int
	for i, name := range names {
		c, ok := linux.CapByName(name)
		if !ok {
			return nil, configErr(fmtIndex("Security.Capabilities", i), "unknown capability %q (names look like \"CAP_NET_BIND_SERVICE\")", name)
		}
		if slices.Contains(caps, c) {
			return nil, configErr(fmtIndex("Security.Capabilities", i), "%q is named twice", name)
		}
		caps = append(caps, c)
	}
	return caps, nil
}

// policy converts p into the seccomp package's form, checking every field.
func (p *SeccompPolicy) policy() (*seccomp.Policy, error) {
	const field = "Security.Seccomp"
	var out *seccomp.Policy
	switch {
	case p.ExtendDefault && p.DefaultAction != 0:
		return nil, configErr(field+".DefaultAction", "must be zero with ExtendDefault")
	case p.ExtendDefault:
		// Filled in by filter, which knows the capabilities.
		out = &seccomp.Policy{}
	default:
		a, err := seccompAction(field+".DefaultAction", p.DefaultAction, p.DefaultErrno)
		if err != nil {
			return nil, err
		}
		out = &seccomp.Policy{DefaultAction: a}
	}
	for i, r := range p.Rules {
		rf := fmtIndex(field+".Rules", i)
		if len(r.Names) == 0 {
			return nil, configErr(rf+".Names", "must name a system call")
		}
		for j, name := range r.Names {
			if !seccomp.KnownSyscall(name) {
				return nil, &ConfigError{Field: fmtIndex(rf+".Names", j), Err: fmt.Errorf("%q: %w", name, seccomp.ErrUnknownSyscall)}
			}
		}
		a, err := seccompAction(rf+".Action", r.Action, r.Errno)
		if err != nil {
			return nil, err
		}
		rule := seccomp.Rule{Names: slices.Clone(r.Names), Action: a}
		for k, arg := range r.Args {
			af := fmtIndex(rf+".Args", k)
			op, ok := seccompOp(arg.Op)
			switch {
			case arg.Index > 5:
				return nil, configErr(af+".Index", "must be between 0 and 5, not %d", arg.Index)
			case !ok:
				return nil, configErr(af+".Op", "must be set to a comparison such as SeccompEq")
			case arg.Op == SeccompMaskedEq && arg.Value&^arg.Mask != 0:
				return nil, configErr(af+".Value", "has bits outside Mask and can never match")
			}
			rule.Args = append(rule.Args, seccomp.Cond{Index: arg.Index, Op: op, Value: arg.Value, Mask: arg.Mask})
		}
		out.Rules = append(out.Rules, rule)
	}
	return out, nil
}

func seccompAction(field string, a SeccompAction, errno syscall.Errno) (seccomp.Action, error) {
	if errno != 0 && a != SeccompErrno {
		return 0, configErr(field, "an errno is only meaningful with SeccompErrno")
	}
	switch a {
	case SeccompAllow:
		return seccomp.Allow, nil
	case SeccompKill:
		return seccomp.KillProcess, nil
	case SeccompLog:
		return seccomp.Log, nil
	case SeccompErrno:
		if errno == 0 {
			errno = unix.EPERM
		}
		if errno > 4095 {
			return 0, configErr(field, "errno %d is out of range (1 to 4095)", int(errno))
		}
		return seccomp.Errno(errno), nil
	case 0:
		return 0, configErr(field, "must be set")
	}
	return 0, configErr(field, "unknown action %d", int(a))
}

// seccompMode names the filter a Security gives, for Confinement.
func (s *Security) seccompMode() string {
	switch {
	case s.SeccompUnconfined:
		return "unconfined"
	case s.SeccompProfile != nil:
		return "docker-profile"
	case s.Seccomp != nil && s.Seccomp.ExtendDefault:
		return "default+custom"
	case s.Seccomp != nil:
		return "custom"
	}
	return "default"
}

// filter returns the encoded seccomp filter of s, compiled on first use
// and cached per policy and capability set; nil when unconfined.
func (s *Security) filter() (*compiledFilter, error) { return s.filterFor(false) }

// filterFor is filter for a sandbox whose only terminal is its own
// (Config.TTY) when ownTerminal is set: the default policy then allows
// the terminal requests it otherwise denies.
func (s *Security) filterFor(ownTerminal bool) (*compiledFilter, error) {
	if s.SeccompUnconfined {
		return nil, nil
	}
	key := s.seccompMode() + "\x00" + strings.Join(s.Capabilities, ",") + "\x00" + strconv.FormatBool(ownTerminal)
	switch {
	case s.SeccompProfile != nil:
		// The profile itself rather than a digest of it: crypto/sha256
		// would add a dozen package initialisations to every start of
		// the init stage, which re-executes this binary.
		key += "\x00" + string(s.SeccompProfile)
	case s.Seccomp != nil:
		key += "\x00" + fmt.Sprintf("%#v", *s.Seccomp)
	}
	return filters.get(key, func() (*seccomp.Policy, error) { return s.buildPolicy(ownTerminal) })
}

// buildPolicy builds the seccomp policy of s, not yet compiled.
func (s *Security) buildPolicy(ownTerminal bool) (*seccomp.Policy, error) {
	opts := seccomp.ProfileOptions{Caps: s.Capabilities, OwnTerminal: ownTerminal}
	if s.SeccompProfile != nil {
		p, err := seccomp.ParseDockerProfile(s.SeccompProfile, opts)
		if err != nil {
			return nil, &ConfigError{Field: "Security.SeccompProfile", Err: err}
		}
		return p, nil
	}
	if s.Seccomp == nil || s.Seccomp.ExtendDefault {
		p, err := seccomp.DefaultPolicy(opts)
		if err != nil {
			return nil, &ConfigError{Field: "Security.Capabilities", Err: err}
		}
		if s.Seccomp != nil {
			custom, err := s.Seccomp.policy()
			if err != nil {
				return nil, err
			}
			p.Rules = append(p.Rules, custom.Rules...)
		}
		return p, nil
	}
	return s.Seccomp.policy()
}

// compiledFilter is a seccomp filter encoded for the init, with its size.
type compiledFilter struct {
	data []byte
	len  int
}

// filterCache keeps compiled filters by policy. It holds at most
// maxCachedFilters entries; a program that makes policies without end
// compiles the ones beyond that on every start.
type filterCache struct {
	mu sync.Mutex
	m  map[string]*compiledFilter
}

const maxCachedFilters = 64

var filters filterCache

func (fc *filterCache) get(key string, build func() (*seccomp.Policy, error)) (*compiledFilter, error) {
	fc.mu.Lock()
	f, ok := fc.m[key]
	fc.mu.Unlock()
	if ok {
		return f, nil
	}
	p, err := build()
	if err != nil {
		return nil, err
	}
	compiled, err := seccomp.Compile(p)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, &ConfigError{Field: "Security.Seccomp", Err: err}
	}
	data, err := compiled.MarshalBinary()
	if err != nil {
		return nil, &ConfigError{Field: "Security.Seccomp", Err: err}
	}
	f = &compiledFilter{data: data, len: compiled.Len()}
	fc.mu.Lock()
	if fc.m == nil {
		fc.m = map[string]*compiledFilter{}
	}
	if len(fc.m) < maxCachedFilters {
		fc.m[key] = f
	}
	fc.mu.Unlock()
	return f, nil
}

// Confinement says which defences a sandbox's processes run under, as
// enforced: what Security asked for, less what best effort left out.
type Confinement struct {
	// Capabilities are the capabilities the processes keep; empty means
	// none.
	Capabilities []string `json:"capabilities,omitempty"`
	// Seccomp names the filter: "default", "default+custom", "custom",
	// "docker-profile" or "unconfined". SeccompInstructions is its length
	// in BPF instructions.
	Seccomp             string `json:"seccomp"`
	SeccompInstructions int    `json:"seccompInstructions,omitempty"`
	// Landlock says whether a Landlock domain is enforced, and
	// LandlockABI which version of Landlock the kernel offers.
	Landlock    bool `json:"landlock"`
	LandlockABI int  `json:"landlockABI"`
	// LandlockTCP and LandlockScoped say whether the TCP rules and the
	// scopes (abstract unix sockets, signals) are part of it.
	LandlockTCP    bool `json:"landlockTCP,omitempty"`
	LandlockScoped bool `json:"landlockScoped,omitempty"`
	// Notes say what best effort left out, and why.
	Notes []string `json:"notes,omitempty"`
}

// confine fills in the spec's capabilities, seccomp filter and Landlock
// domain, and returns what they will be. c has its defaults filled in and
// has been validated.
func (c *Config) confine(spec *proto.Spec) (Confinement, error) {
	s := &c.Security
	conf := Confinement{Capabilities: slices.Clone(s.Capabilities), Seccomp: s.seccompMode()}
	caps, err := capNumbers(s.Capabilities)
	if err != nil {
		return conf, err
	}
	spec.Caps = caps
	f, err := s.filterFor(c.TTY != nil)
	if err != nil {
		return conf, err
	}
	if f != nil {
		spec.Seccomp, conf.SeccompInstructions = f.data, f.len
	}
	if err := c.landlock(spec, &conf); err != nil {
		return conf, err
	}
	return conf, nil
}

// Confinement returns the defences the sandbox's processes run under. It
// is the zero value before Start has succeeded.
func (s *Sandbox) Confinement() Confinement {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conf
	c.Capabilities = slices.Clone(c.Capabilities)
	c.Notes = slices.Clone(c.Notes)
	return c
}

// started records what the init reported about the defences it applied.
func (s *Sandbox) confined(conf Confinement, rep *proto.Report, cfg *Config) {
	if conf.Landlock && !rep.Landlocked {
		conf.Landlock, conf.LandlockTCP, conf.LandlockScoped = false, false, false
		conf.Notes = append(conf.Notes, "landlock: not enforced: "+rep.Message)
	}
	s.conf = conf
	if cfg.Logger != nil {
		for _, n := range conf.Notes {
			cfg.Logger.Warn("sandbox defence left out", "note", n)
		}
	}
}

// filterVerdict tells a kill by the seccomp filter from other signals, and
// adds the notes of best effort to res.
func (s *Sandbox) filterVerdict(res *Result) {
	s.mu.Lock()
	conf := s.conf
	s.mu.Unlock()
	if res.Reason == Signaled && res.Signal == unix.SIGSYS && conf.Seccomp != "unconfined" {
		res.Reason = SeccompKilled
	}
	if len(conf.Notes) > 0 && !slices.Contains(res.Notes, conf.Notes[0]) {
		res.Notes = append(slices.Clip(res.Notes), conf.Notes...)
	}
}
