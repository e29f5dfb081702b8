package cgroup

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stockade/stockade/internal/errdefs"
)

// MinMemory is the smallest memory limit that Validate accepts: 8 MiB. A Go
// program (the sandbox's init stage is one) needs about 3 MiB of resident
// memory to start, and the kernel charges page tables, stacks and the page
// cache it touches to the group as well; below this the init stage would be
// killed by the OOM killer before the sandboxed command ever runs.
const MinMemory = 8 << 20

// MaxPids is the largest Limits.Pids: the kernel's PID_MAX_LIMIT on 64-bit
// machines, above which pids.max refuses a number.
const MaxPids = 1 << 22

// SwapUnlimited, as Limits.Swap, lets the group use any amount of swap.
const SwapUnlimited = -1

// cpuPeriod is the CFS period used for CPU quotas unless Limits.CPUPeriod
// says otherwise: 100 ms, the kernel's default, in microseconds.
const cpuPeriod = 100000

// The range of Limits.CPUPeriod, the kernel's (min_cfs_quota_period and
// max_cfs_quota_period); the kernel also refuses a quota below
// minCFSQuota per period.
const (
	MinCPUPeriod = time.Millisecond
	MaxCPUPeriod = time.Second
	minCFSQuota  = time.Millisecond
)

// maxCPUID bounds the CPU and memory node numbers in a cpuset list; the
// kernel's own limit (CONFIG_NR_CPUS) is at most 8192.
const maxCPUID = 1 << 16

// Limits are the resource limits of one group. The zero value limits
// nothing: every zero field leaves its controller alone, so the group
// inherits the limits of its parent.
type Limits struct {
	// Memory is the most memory, in bytes, that the group may use (memory.max
	// on v2, memory.limit_in_bytes on v1); the kernel's OOM killer kills a
	// process in the group when it is exceeded. Zero means no limit; a limit
	// must be at least MinMemory.
	Memory int64
	// Swap is how much swap, in bytes, the group may use on top of Memory.
	// Zero means none whenever Memory is set, so that a memory limit is a
	// limit on memory and not a slowdown; SwapUnlimited means any amount. It
	// may only be set together with Memory. On v1 it needs swap accounting
	// (memory.memsw.*) when the host has swap enabled.
	Swap int64
	// CPU is the CPU time the group may use, in CPUs: 0.5 is half of one CPU,
	// 2 is two full CPUs (cpu.max on v2, cpu.cfs_quota_us on v1, over
	// CPUPeriod). Zero means no quota; the smallest quota is 1 ms per period,
	// 0.01 CPUs over the default period.
	CPU float64
	// CPUPeriod is the period over which CPU is measured (cpu.max on v2,
	// cpu.cfs_period_us on v1), a whole number of microseconds from
	// MinCPUPeriod to MaxCPUPeriod. A short period throttles sooner and more
	// often. Zero means the kernel's default, 100 ms; it may only be set
	// together with CPU.
	CPUPeriod time.Duration
	// CPUWeight is the group's share of CPU time under contention, from 1 to
	// 10000 with 100 as the kernel's default (cpu.weight on v2; on v1
	// cpu.shares = CPUWeight × 1024 / 100). Zero leaves the default.
	CPUWeight uint64
	// Pids is the most tasks (processes and threads) the group may hold at
	// once (pids.max); a fork or clone beyond it fails with EAGAIN. A Go
	// program, the sandbox's init stage included, uses 5 to 8 threads. Zero
	// means no limit; the most is MaxPids.
	Pids int64
	// CPUs is the list of CPUs the group may run on, in the kernel's list
	// format ("0-3,6"); every CPU must be one the caller may use. Empty
	// leaves the caller's set.
	CPUs string
	// Mems is the list of memory nodes the group may allocate from, in the
	// same format as CPUs. Empty leaves the caller's set.
	Mems string
	// IOWeight is the group's share of block I/O under contention, from 1 to
	// 10000 with 100 as the default (io.weight on v2; on v1 blkio.weight or
	// blkio.bfq.weight, scaled to their 10 to 1000 range). It needs an I/O
	// scheduler that honours weights. Zero leaves the default.
	IOWeight uint64
	// Devices are the rules of the devices controller, applied in order
	// (devices.allow and devices.deny, cgroup v1 only) on top of what the
	// parent allows, which is usually every device. An allow list starts
	// with a rule that denies every device. Nil leaves the controller
	// alone. On cgroup v2 device access is controlled by a BPF program,
	// which this package does not load: Validate refuses the field there.
	// Writing the rules needs CAP_SYS_ADMIN (host root).
	Devices []DeviceRule
}

// Config says where to create a group and how to limit it.
type Config struct {
	// Parent is the cgroup under which the group is created, the same path
	// in every hierarchy. Empty means DefaultParent below the caller's own
	// cgroup, so that sandboxes stay inside the caller's own limits. A
	// relative path is likewise below the caller's own cgroup; an absolute
	// path is below the root of each hierarchy ("." is the caller's own
	// cgroup). Missing directories are created and left in place.
	Parent string
	// Name, if set, is the group's directory name instead of a generated
	// one (see the package documentation): one path component, not named
	// like a generated group. The group must not exist yet, and since
	// Cleanup does not recognise it, whoever created it removes it (an
	// OCI runtime's delete, say).
	Name string
	// Limits are the group's limits; the zero value limits nothing.
	Limits Limits
}

// DefaultParent is the name of the parent cgroup that Create uses when
// Config.Parent is empty.
const DefaultParent = "stockade"

var (
	// ErrInvalidConfig is matched (with errors.Is) by every *ConfigError.
	// It is sandbox.ErrInvalidConfig.
	ErrInvalidConfig = errdefs.ErrInvalidConfig
	// ErrNotSupported is matched (with errors.Is) by errors about a kernel
	// or host feature that this machine lacks, a missing controller
	// included. It is sandbox.ErrNotSupported.
	ErrNotSupported = errdefs.ErrNotSupported
)

// ConfigError reports a Config field that cannot be applied: Field names
// it ("Limits.Memory"). It matches ErrInvalidConfig, and ErrNotSupported
// when the host lacks what the field needs. It is sandbox.ConfigError.
type ConfigError = errdefs.ConfigError

// FeatureError is what a *ConfigError holds for a field the host cannot
// serve, such as a missing controller. It is sandbox.FeatureError.
type FeatureError = errdefs.FeatureError

// invalid returns a *ConfigError for a value that no host would accept.
func invalid(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// lacks returns a *ConfigError for a field this host cannot serve because
// it lacks feature.
func lacks(field, feature, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Err: &FeatureError{Feature: feature, Err: fmt.Errorf(format, args...)}}
}

// facts is what validation needs to know about the host; tests make them up.
type facts struct {
	mode Mode
	// controllers are the controllers that groups under the parent can use.
	controllers map[string]bool
	// controllersNote explains why controllers is short, if it is.
	controllersNote string
	// cpus and mems are the CPUs and memory nodes the caller may use.
	cpus, mems string
	// swapLimit reports whether the kernel can limit a group's swap.
	swapLimit bool
	// swapOn reports whether the host has swap in use.
	swapOn bool
	// ioWeight names the file that sets an I/O weight, "" when none.
	ioWeight string
}

// Validate checks the config against this host without creating anything
// and returns every problem found, each a *ConfigError naming the field.
// The host is probed once per process.
func (c Config) Validate() error {
	if err := validateSyntax(c); err != nil {
		return err // a bad Parent must not reach the file system
	}
	f, err := hostFacts(c.Parent)
	if err != nil {
		return err
	}
	return validate(c, f)
}

// validateSyntax checks what can be checked without knowing the host.
func validateSyntax(c Config) error { return errors.Join(syntaxErrors(c)...) }

func syntaxErrors(c Config) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, invalid(field, format, args...))
	}
	if p := c.Parent; p != "" {
		switch {
		case strings.ContainsRune(p, 0) || strings.Contains(p, "\n"):
			bad("Parent", "must not contain NUL or newline characters")
		case filepath.Clean(p) != p:
			bad("Parent", "%q must be a clean path (no \"..\", \".\" or \"//\")", p)
		case p == ".." || strings.HasPrefix(p, "../"):
			bad("Parent", "%q must not leave the caller's cgroup", p)
		case hasGroupComponent(p):
			bad("Parent", "%q must not contain a component named like a group (%s...)", p, namePrefix)
		}
	}
	if n := c.Name; n != "" {
		switch {
		case strings.ContainsAny(n, "/\x00\n") || n == "." || n == "..":
			bad("Name", "%q must be one component of a path", n)
		case strings.HasPrefix(n, namePrefix):
			bad("Name", "%q must not be named like a generated group (%s...)", n, namePrefix)
		}
	}
	l := c.Limits
	switch {
	case l.Memory < 0:
		bad("Limits.Memory", "must not be negative (got %d)", l.Memory)
	case l.Memory > 0 && l.Memory < MinMemory:
		bad("Limits.Memory", "%d bytes is below the minimum of %d (8 MiB) that a Go init stage needs to start", l.Memory, MinMemory)
	}
	switch {
	case l.Swap < SwapUnlimited:
		bad("Limits.Swap", "must be a byte count or SwapUnlimited (got %d)", l.Swap)
	case l.Swap != 0 && l.Memory == 0:
		bad("Limits.Swap", "may only be set together with Limits.Memory")
	case l.Swap > 0 && l.Memory > math.MaxInt64-l.Swap:
		bad("Limits.Swap", "Memory + Swap overflows")
	}
	switch {
	case math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0) || l.CPU < 0:
		bad("Limits.CPU", "must be a positive number of CPUs (got %v)", l.CPU)
	case l.CPU > 1<<20:
		bad("Limits.CPU", "%v CPUs is more than any machine has", l.CPU)
	case l.CPU > 0 && validPeriod(l.CPUPeriod) && quotaBelowMin(l):
		bad("Limits.CPU", "%v CPUs is below the kernel's minimum quota of 1 ms per period (%v over %v)",
			l.CPU, float64(minCFSQuota)/float64(period(l)), period(l))
	}
	switch {
	case !validPeriod(l.CPUPeriod):
		bad("Limits.CPUPeriod", "must be from %v to %v in whole microseconds, or zero for the default of 100 ms (got %v)", MinCPUPeriod, MaxCPUPeriod, l.CPUPeriod)
	case l.CPUPeriod != 0 && l.CPU == 0:
		bad("Limits.CPUPeriod", "may only be set together with Limits.CPU")
	}
	if l.CPUWeight > 10000 {
		bad("Limits.CPUWeight", "must be from 1 to 10000 (got %d)", l.CPUWeight)
	}
	switch {
	case l.Pids < 0:
		bad("Limits.Pids", "must not be negative (got %d)", l.Pids)
	case l.Pids > MaxPids:
		bad("Limits.Pids", "%d is above the kernel's most tasks, %d; 0 means no limit", l.Pids, MaxPids)
	}
	if l.IOWeight > 10000 {
		bad("Limits.IOWeight", "must be from 1 to 10000 (got %d)", l.IOWeight)
	}
	for i, r := range l.Devices {
		errs = append(errs, deviceRuleErrors(fmt.Sprintf("Limits.Devices[%d]", i), r)...)
	}
	if l.CPUs != "" {
		if _, err := parseList(l.CPUs); err != nil {
			bad("Limits.CPUs", "%v", err)
		}
	}
	if l.Mems != "" {
		if _, err := parseList(l.Mems); err != nil {
			bad("Limits.Mems", "%v", err)
		}
	}
	return errs
}

// validate checks the config, then checks the fields that are well formed
// against the host facts.
func validate(c Config, f facts) error {
	errs := syntaxErrors(c)
	if f.mode == Unavailable {
		errs = append(errs, lacks("Limits", "cgroups", "no cgroup file system is mounted at /sys/fs/cgroup"))
		return errors.Join(errs...)
	}
	malformed := map[string]bool{}
	for _, e := range errs {
		malformed[e.(*ConfigError).Field] = true
	}
	unsupported := func(field, feature, format string, args ...any) {
		errs = append(errs, lacks(field, feature, format, args...))
	}
	need := func(field, ctrl string) bool {
		if f.controllers[ctrl] {
			return true
		}
		reason := fmt.Sprintf("groups under the parent in %s mode cannot use it", f.mode)
		if f.controllersNote != "" {
			reason += ": " + f.controllersNote
		}
		unsupported(field, "the "+ctrl+" controller", "%s", reason)
		return false
	}
	l := c.Limits
	if l.Memory > 0 && need("Limits.Memory", "memory") {
		if l.Swap != SwapUnlimited && !f.swapLimit && f.swapOn {
			unsupported("Limits.Swap", "swap accounting", "the kernel cannot limit swap (no swap accounting; boot with swapaccount=1) and the host has swap on; set Limits.Swap to SwapUnlimited to accept that")
		}
	}
	if l.CPU > 0 || l.CPUWeight > 0 {
		field := "Limits.CPU"
		if l.CPU == 0 {
			field = "Limits.CPUWeight"
		}
		need(field, "cpu")
	}
	if l.Pids > 0 {
		need("Limits.Pids", "pids")
	}
	if len(l.Devices) > 0 {
		if f.mode == Unified {
			unsupported("Limits.Devices", "device rules on cgroup v2", "cgroup v2 controls devices with a BPF program attached to the group, which this package does not load")
		} else {
			need("Limits.Devices", "devices")
		}
	}
	if l.CPUs != "" && !malformed["Limits.CPUs"] && need("Limits.CPUs", "cpuset") {
		if err := subset(l.CPUs, f.cpus, "cpu"); err != nil {
			errs = append(errs, &ConfigError{Field: "Limits.CPUs", Err: err})
		}
	}
	if l.Mems != "" && !malformed["Limits.Mems"] && need("Limits.Mems", "cpuset") {
		if err := subset(l.Mems, f.mems, "memory node"); err != nil {
			errs = append(errs, &ConfigError{Field: "Limits.Mems", Err: err})
		}
	}
	if l.IOWeight > 0 && need("Limits.IOWeight", ioController(f.mode)) && f.ioWeight == "" {
		unsupported("Limits.IOWeight", "I/O weights", "no I/O weight file: the block layer has neither io cost control (io.weight) nor the BFQ scheduler")
	}
	return errors.Join(errs...)
}

// validPeriod reports whether p is a CPUPeriod the kernel takes, or zero.
func validPeriod(p time.Duration) bool {
	return p == 0 || p >= MinCPUPeriod && p <= MaxCPUPeriod && p%time.Microsecond == 0
}

// period returns the CFS period of l.
func period(l Limits) time.Duration {
	if l.CPUPeriod != 0 {
		return l.CPUPeriod
	}
	return cpuPeriod * time.Microsecond
}

// quotaBelowMin reports whether the quota that l writes is below the
// kernel's least.
func quotaBelowMin(l Limits) bool {
	q, _ := cfsQuota(l)
	return q < minCFSQuota.Microseconds()
}

// cfsQuota returns the CFS quota and period of l, in microseconds.
func cfsQuota(l Limits) (quota, periodUS int64) {
	periodUS = period(l).Microseconds()
	return int64(math.Round(l.CPU * float64(periodUS))), periodUS
}

func ioController(m Mode) string {
	if m == Unified {
		return "io"
	}
	return "blkio"
}

// parseList parses a kernel list such as "0-3,6" into sorted, merged
// ranges of [first, last].
func parseList(s string) ([][2]int, error) {
	var out [][2]int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := listNumber(lo)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = listNumber(hi); err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			if b < a {
				return nil, fmt.Errorf("%q: range %s is backwards", s, part)
			}
		}
		out = append(out, [2]int{a, b})
	}
	return out, nil
}

func listNumber(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n >= maxCPUID {
		return 0, fmt.Errorf("%s is out of range", s)
	}
	return n, nil
}

// subset reports an error naming the first element of want that allowed
// lacks.
func subset(want, allowed, what string) error {
	w, err := parseList(want)
	if err != nil {
		return err
	}
	a, err := parseList(allowed)
	if err != nil {
		return fmt.Errorf("cannot read the host's %ss: %w", what, err)
	}
	for _, r := range w {
		for n := r[0]; n <= r[1]; n++ {
			if !inRanges(n, a) {
				return fmt.Errorf("%s %d is not among the %ss the caller may use (%s)", what, n, what, allowed)
			}
		}
	}
	return nil
}

func inRanges(n int, rs [][2]int) bool {
	for _, r := range rs {
		if n >= r[0] && n <= r[1] {
			return true
		}
	}
	return false
}

// cpuShares converts a v2 CPU weight (1–10000, default 100) to v1 shares
// (2–262144, default 1024) so that the defaults match.
func cpuShares(weight uint64) uint64 {
	return min(max(weight*1024/100, 2), 262144)
}

// blkioWeight converts a v2 I/O weight (1–10000) to a v1 blkio weight
// (10–1000), the inverse of the conversion runc and crun use.
func blkioWeight(weight uint64) uint64 {
	return 10 + (weight-1)*990/9999
}
