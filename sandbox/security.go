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

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/seccomp"
)

// Security holds the defences on top of the namespaces; zero is safe.
type Security struct {
	Capabilities       []string            // kept; Danger: each opens kernel code
	Seccomp            *specs.LinuxSeccomp // replaces the default; Danger: what it allows is open
	SeccompExtend      bool                // Seccomp adds to the default
	SeccompProfile     []byte              // Docker's JSON, in place of the default; Danger as Seccomp
	SeccompUnconfined  bool                // Danger: no filter
	Landlock           Landlock
	Sysfs              bool // a read-only /sys; not with a reused namespace
	AllowNewPrivileges bool // no no_new_privs (still nosuid); Seccomp must allow setres[ug]id, setgroups, capset
}

// Landlock is best effort when zero: writable mounts only, no TCP (Linux 6.7).
type Landlock struct {
	Disabled      bool     // Danger: a leaked host directory reaches the host
	Strict        bool     // a *FeatureError rather than a rule left out
	WritablePaths []string // if set, the only writable paths
	BindTCP       []uint16 // with ConnectTCP, the only TCP ports beside Network.Ports; with a network and neither, TCP is open
	ConnectTCP    []uint16
	AnyTCP        bool // Danger: lifts the TCP limits
}

func (s *Security) clone() Security {
	d := *s
	d.Capabilities = slices.Clone(s.Capabilities)
	d.SeccompProfile = slices.Clone(s.SeccompProfile)
	d.Landlock.WritablePaths = slices.Clone(s.Landlock.WritablePaths)
	d.Landlock.BindTCP = slices.Clone(s.Landlock.BindTCP)
	d.Landlock.ConnectTCP = slices.Clone(s.Landlock.ConnectTCP)
	d.Seccomp = cloneSeccomp(s.Seccomp)
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
	if s.SeccompExtend && s.Seccomp == nil {
		return configErr("Security.SeccompExtend", "needs Security.Seccomp")
	}
	if s.Seccomp != nil {
		if _, err := seccompPolicy(s.Seccomp, s.SeccompExtend); err != nil {
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

// seccompPolicy converts p, the Security.Seccomp of a sandbox, into the
// seccomp package's form, checking every field; with extend, only its
// rules, which go on top of the default policy.
func seccompPolicy(p *specs.LinuxSeccomp, extend bool) (*seccomp.Policy, error) {
	const field = "Security.Seccomp"
	out := &seccomp.Policy{}
	switch {
	case extend && (p.DefaultAction != "" || p.DefaultErrnoRet != nil):
		return nil, configErr(field+".DefaultAction", "must be empty with SeccompExtend")
	case !extend:
		a, err := seccompAction(field+".DefaultAction", p.DefaultAction, p.DefaultErrnoRet)
		if err != nil {
			return nil, err
		}
		out.DefaultAction = a
	}
	for i, f := range p.Flags {
		if f != "SECCOMP_FILTER_FLAG_TSYNC" {
			return nil, configErr(fmtIndex(field+".Flags", i), "the sandbox sets no seccomp flag but TSYNC, not %s", f)
		}
	}
	if p.ListenerPath != "" || p.ListenerMetadata != "" {
		return nil, configErr(field+".ListenerPath", "the sandbox has no seccomp notify listener")
	}
	for i, r := range p.Syscalls {
		rf := fmtIndex(field+".Syscalls", i)
		if len(r.Names) == 0 {
			return nil, configErr(rf+".Names", "must name a system call")
		}
		for j, name := range r.Names {
			if !seccomp.KnownSyscall(name) {
				return nil, &ConfigError{Field: fmtIndex(rf+".Names", j), Err: fmt.Errorf("%q: %w", name, seccomp.ErrUnknownSyscall)}
			}
		}
		a, err := seccompAction(rf+".Action", r.Action, r.ErrnoRet)
		if err != nil {
			return nil, err
		}
		rule := seccomp.Rule{Names: slices.Clone(r.Names), Action: a}
		for k, arg := range r.Args {
			af := fmtIndex(rf+".Args", k)
			op, ok := seccompOp(arg.Op)
			c := seccomp.Cond{Index: uint8(arg.Index), Op: op, Value: arg.Value}
			if op == seccomp.OpMaskedEq {
				c.Mask, c.Value = arg.Value, arg.ValueTwo
			}
			switch {
			case arg.Index > 5:
				return nil, configErr(af+".Index", "must be between 0 and 5, not %d", arg.Index)
			case !ok:
				return nil, configErr(af+".Op", "must be a comparison such as SCMP_CMP_EQ, not %q", arg.Op)
			case op != seccomp.OpMaskedEq && arg.ValueTwo != 0:
				return nil, configErr(af+".ValueTwo", "is only meaningful with SCMP_CMP_MASKED_EQ")
			case op == seccomp.OpMaskedEq && c.Value&^c.Mask != 0:
				return nil, configErr(af+".ValueTwo", "has bits outside the mask and can never match")
			}
			rule.Args = append(rule.Args, c)
		}
		out.Rules = append(out.Rules, rule)
	}
	return out, nil
}

// seccompOp converts a comparison; a switch rather than a map, so that the
// init stage, which re-executes this binary, pays nothing for it at start.
func seccompOp(op specs.LinuxSeccompOperator) (seccomp.Op, bool) {
	switch op {
	case specs.OpEqualTo:
		return seccomp.OpEq, true
	case specs.OpNotEqual:
		return seccomp.OpNe, true
	case specs.OpLessThan:
		return seccomp.OpLt, true
	case specs.OpLessEqual:
		return seccomp.OpLe, true
	case specs.OpGreaterThan:
		return seccomp.OpGt, true
	case specs.OpGreaterEqual:
		return seccomp.OpGe, true
	case specs.OpMaskedEqual:
		return seccomp.OpMaskedEq, true
	}
	return 0, false
}

func seccompAction(field string, a specs.LinuxSeccompAction, errnoRet *uint) (seccomp.Action, error) {
	if errnoRet != nil && a != specs.ActErrno {
		return 0, configErr(field, "an errno is only meaningful with SCMP_ACT_ERRNO")
	}
	switch a {
	case specs.ActAllow:
		return seccomp.Allow, nil
	case specs.ActKillProcess:
		return seccomp.KillProcess, nil
	case specs.ActLog:
		return seccomp.Log, nil
	case specs.ActErrno:
		errno := uint(unix.EPERM)
		if errnoRet != nil {
			errno = *errnoRet
		}
		if errno == 0 || errno > 4095 {
			return 0, configErr(field, "errno %d is out of range (1 to 4095)", errno)
		}
		return seccomp.Errno(syscall.Errno(errno)), nil
	case specs.ActKill, specs.ActKillThread:
		return 0, configErr(field, "the filter kills the whole process, never one thread: use SCMP_ACT_KILL_PROCESS")
	case "":
		return 0, configErr(field, "must be set")
	}
	return 0, configErr(field, "the filter allows, fails with an errno, kills the process or logs; %q is none of these", a)
}

// cloneSeccomp returns a deep copy of p.
func cloneSeccomp(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	if p == nil {
		return nil
	}
	d := *p
	d.DefaultErrnoRet = clonePtr(p.DefaultErrnoRet)
	d.Architectures = slices.Clone(p.Architectures)
	d.Flags = slices.Clone(p.Flags)
	d.Syscalls = slices.Clone(p.Syscalls)
	for i := range d.Syscalls {
		sc := &d.Syscalls[i]
		sc.Names = slices.Clone(sc.Names)
		sc.Args = slices.Clone(sc.Args)
		sc.ErrnoRet = clonePtr(sc.ErrnoRet)
	}
	return &d
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// seccompKey writes p's policy as a string, for the filter cache: its
// values, not the addresses its pointers hold.
func seccompKey(p *specs.LinuxSeccomp) string {
	var b strings.Builder
	errno := func(e *uint) string {
		if e == nil {
			return "-"
		}
		return strconv.FormatUint(uint64(*e), 10)
	}
	fmt.Fprintf(&b, "%s/%s/%q", p.DefaultAction, errno(p.DefaultErrnoRet), p.Flags)
	for _, sc := range p.Syscalls {
		fmt.Fprintf(&b, "|%q %s %s %v", sc.Names, sc.Action, errno(sc.ErrnoRet), sc.Args)
	}
	return b.String()
}

// seccompMode names the filter a Security gives, for Confinement.
func (s *Security) seccompMode() string {
	switch {
	case s.SeccompUnconfined:
		return "unconfined"
	case s.SeccompProfile != nil:
		return "docker-profile"
	case s.Seccomp != nil && s.SeccompExtend:
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
		key += "\x00" + seccompKey(s.Seccomp)
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
	if s.Seccomp == nil || s.SeccompExtend {
		p, err := seccomp.DefaultPolicy(opts)
		if err != nil {
			return nil, &ConfigError{Field: "Security.Capabilities", Err: err}
		}
		if s.Seccomp != nil {
			custom, err := seccompPolicy(s.Seccomp, true)
			if err != nil {
				return nil, err
			}
			p.Rules = append(p.Rules, custom.Rules...)
		}
		return p, nil
	}
	return seccompPolicy(s.Seccomp, false)
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

// Confinement says which defences a sandbox runs under, as enforced.
type Confinement struct {
	Capabilities        []string `json:"capabilities,omitempty"`
	Seccomp             string   `json:"seccomp"`
	SeccompInstructions int      `json:"seccompInstructions,omitempty"`
	Landlock            bool     `json:"landlock"`
	LandlockABI         int      `json:"landlockABI"`
	LandlockTCP         bool     `json:"landlockTCP,omitempty"`
	LandlockScoped      bool     `json:"landlockScoped,omitempty"`
	Notes               []string `json:"notes,omitempty"`
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

// Confinement returns the defences the sandbox runs under, once started.
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
