//go:build linux

package sandbox

import (
	"errors"
	"math"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/proto"
)

// Limits are the resource limits of a sandbox. The zero value limits
// nothing but core files: every other zero field leaves its resource alone.
//
// Memory, Swap, CPU, CPUWeight, Pids, CPUs, Mems, IOWeight and CPUTime are
// enforced through a control group of the sandbox's own, created before the
// sandbox starts and removed when it ends. Setting any of them needs host
// root and a mounted cgroup file system (v1, hybrid or v2); without them,
// or when the controller a field needs is missing, Start returns a
// *ConfigError naming the field before anything is created. A sandbox
// without those limits runs without a group.
//
// The group holds the sandbox's init stage as well as the command: the
// init (a copy of the calling Go program, see package sandbox) counts
// against Memory (about 3 MiB), Pids (its 4 to 6 threads) and CPUTime
// (a millisecond or two of start-up).
type Limits struct {
	// Memory is the most memory, in bytes, that the sandbox may use: its
	// processes' memory, the page cache and tmpfs files they fill, and the
	// kernel memory charged to them. When it is reached the kernel's OOM
	// killer kills a process of the sandbox, and the Result's Reason is
	// OOMKilled. Zero means no limit; the smallest limit is
	// cgroup.MinMemory (8 MiB), what the init stage of a small Go program
	// needs to start. The init stage is the calling program: a large one
	// needs more, and below what it needs it does not die but thrashes
	// (the kernel keeps reclaiming its code pages), so that the sandbox
	// never starts; Timeout bounds that wait too.
	Memory int64
	// Swap is how much swap, in bytes, the sandbox may use on top of
	// Memory. Zero means none whenever Memory is set; SwapUnlimited means
	// any amount. It may only be set together with Memory.
	Swap int64
	// CPU is the CPU bandwidth of the sandbox, in CPUs: 0.5 is half of one
	// CPU, 2 is two whole CPUs, over a 100 ms period. Zero means no quota;
	// the smallest is 0.01.
	CPU float64
	// CPUWeight is the sandbox's share of CPU time when CPUs are contended,
	// from 1 to 10000; the kernel's default is 100. Zero leaves the default.
	CPUWeight uint64
	// Pids is the most tasks (processes and threads, the init stage's
	// included) that the sandbox may hold at once. A fork or clone beyond
	// it fails with EAGAIN inside the sandbox; the Result counts those in
	// ForksRefused, and the sandbox is not killed for it. Zero means no
	// limit; the smallest is MinPids.
	Pids int64
	// CPUs is the list of host CPUs the sandbox may run on, in the kernel's
	// list format ("0-3,6"); each must be one the caller may use. Empty
	// leaves the caller's set.
	CPUs string
	// Mems is the list of memory nodes the sandbox may allocate from, in
	// the same format. Empty leaves the caller's set.
	Mems string
	// IOWeight is the sandbox's share of block I/O under contention, from
	// 1 to 10000 with 100 as the default. It needs the io (v2) or blkio
	// (v1) controller and an I/O scheduler that honours weights. Zero
	// leaves the default.
	IOWeight uint64

	// CPUTime, if positive, is how much CPU time (user and system, of every
	// process in the sandbox, read from its control group) the sandbox may
	// use. When it is used up every process of the sandbox is killed and the
	// Result's Reason is CPUTimeLimit. The group is polled, less often the
	// further the sandbox is from the limit (never so late that it could
	// have passed it) and every 2 ms near it. Tolerance: the CPU time in
	// the Result exceeds the limit by up to 2 ms per CPU the sandbox can
	// use, plus the poller's lateness and what the sandbox uses while it is
	// killed (about 2 ms here): a single spinning process ended 4 to 20 ms
	// past a 300 ms limit on a busy 2-CPU host, 10 to 18 ms in a TCG VM.
	// A command that ends on its own after using more than CPUTime gets
	// the same verdict. Should the group vanish while the sandbox runs
	// (removed from outside), the limit is still enforced, from the CPU
	// time /proc shows for the init and every process below it, in clock
	// ticks of 10 ms; the Logger is told.
	CPUTime time.Duration
	// Output, if positive, is how many bytes the command may write to its
	// standard output and standard error together. The bytes up to the
	// limit are passed on to Stdout and Stderr; then the sandbox is killed,
	// the rest is discarded, and the Result's Reason is OutputLimit. The
	// bytes are counted in the calling process, so with a limit an
	// *os.File given as Stdout or Stderr is fed through a pipe, and output
	// sent nowhere (a nil Stdout or Stderr) counts too. Each process
	// started by Exec has a limit of its own: it is killed, not the
	// sandbox, with the same Reason.
	Output int64

	// Rlimits are the resource limits (setrlimit) of each process of the
	// sandbox.
	Rlimits Rlimits

	// CgroupParent is the control group under which the sandbox's group is
	// created, the same path in every hierarchy: relative to the caller's
	// own cgroup, or absolute from each hierarchy's root. Empty means
	// "stockade" below the caller's own cgroup, so that sandboxes count
	// against the caller's limits. On cgroup v2 it must be a cgroup
	// without processes of its own (see package cgroup).
	CgroupParent string
	// BestEffort, for an ordinary user on a host that delegated no
	// cgroup (or not every controller) to it, applies what it can instead
	// of failing: Memory becomes RLIMIT_DATA and Pids RLIMIT_NPROC (per
	// process and per user id, not per sandbox), and the other limits are
	// left out. Result.Notes says what was done instead. Host root always
	// gets every limit or an error.
	BestEffort bool
}

// Rlimits are per-process resource limits, set as both the soft and the
// hard limit of the sandbox's init stage before it starts the command, so
// that every process of the sandbox inherits them and none can raise them.
// Zero leaves a limit as the caller has it, except Core; Unlimited removes
// a limit (it cannot go above the caller's own hard limit). The init stage
// itself runs under them as well, which sets the smallest values that the
// fields accept.
type Rlimits struct {
	// NoFile is the most open file descriptors per process (RLIMIT_NOFILE);
	// at least MinNoFile.
	NoFile int64
	// FileSize is the largest file, in bytes, a process may write
	// (RLIMIT_FSIZE); a write beyond it fails with EFBIG after a SIGXFSZ,
	// whose default action kills the process.
	FileSize int64
	// Stack is the size, in bytes, of a process's main stack
	// (RLIMIT_STACK).
	Stack int64
	// Core is the largest core file, in bytes, a crashing process may
	// write (RLIMIT_CORE). Zero means none, the default.
	Core int64
	// AddressSpace is the most virtual memory, in bytes, of one process
	// (RLIMIT_AS); at least MinAddressSpace, as the init stage runs under
	// it too. Prefer Limits.Memory, which counts what is used rather than
	// what is reserved, and works for any size.
	AddressSpace int64
	// Processes is the most processes and threads that the command's user
	// may have in the sandbox at once (RLIMIT_NPROC); at least
	// MinProcesses. When the command runs as root inside, the init stage's
	// threads count as well. Prefer Limits.Pids.
	Processes int64
	// CPU is the CPU time one process may use (RLIMIT_CPU), rounded up to
	// whole seconds; the kernel then kills it with SIGKILL. Prefer
	// Limits.CPUTime, which counts the whole sandbox.
	CPU time.Duration
}

// Unlimited, as an Rlimits field, removes that limit.
const Unlimited = -1

// SwapUnlimited, as Limits.Swap, lets the sandbox use any amount of swap.
const SwapUnlimited = cgroup.SwapUnlimited

// The smallest values of the limits that the init stage needs to start the
// command and supervise it.
const (
	// MinPids: the init stage's threads (5 here) and the command. A Go
	// program that cannot start a thread it needs dies.
	MinPids = 8
	// MinNoFile: the init stage's descriptors (its socket, the files passed
	// to the command, a pipe to start it) and the command's three. The init
	// needs 6 without ExtraFiles, and one more for each.
	MinNoFile = 16
	// MinAddressSpace: the Go runtime of the init stage reserves about
	// 1.5 GiB of address space for its heap when it starts, and needs more
	// for every thread it adds; below its own size it dies.
	MinAddressSpace = 2 << 30
	// MinProcesses: the command is forked by the init stage, whose threads
	// (5 here) count against the init's own user when it forks.
	MinProcesses = 8
)

// needsCgroup reports which fields need a control group, in declaration
// order.
func (l *Limits) needsCgroup() []string {
	var f []string
	add := func(set bool, name string) {
		if set {
			f = append(f, "Limits."+name)
		}
	}
	add(l.Memory != 0, "Memory")
	add(l.Swap != 0, "Swap")
	add(l.CPU != 0, "CPU")
	add(l.CPUWeight != 0, "CPUWeight")
	add(l.Pids != 0, "Pids")
	add(l.CPUs != "", "CPUs")
	add(l.Mems != "", "Mems")
	add(l.IOWeight != 0, "IOWeight")
	add(l.CPUTime != 0, "CPUTime")
	return f
}

func (l *Limits) cgroupConfig() cgroup.Config {
	return cgroup.Config{
		Parent: l.CgroupParent,
		Limits: cgroup.Limits{
			Memory: l.Memory, Swap: l.Swap, CPU: l.CPU, CPUWeight: l.CPUWeight,
			Pids: l.Pids, CPUs: l.CPUs, Mems: l.Mems, IOWeight: l.IOWeight,
		},
	}
}

// validate checks the limits: first what needs no knowledge of the host,
// then, when a control group is needed, whether this host can apply them
// (package cgroup probes the host once per process and creates nothing).
func (l *Limits) validate() error {
	switch {
	case l.CPUTime < 0:
		return configErr("Limits.CPUTime", "must not be negative")
	case l.Output < 0:
		return configErr("Limits.Output", "must not be negative")
	case strings.IndexByte(l.CgroupParent, 0) >= 0:
		return configErr("Limits.CgroupParent", "must not contain a NUL byte")
	case l.Pids > cgroup.MaxPids:
		return configErr("Limits.Pids", "%d is above the kernel's most tasks, %d; 0 means no limit", l.Pids, cgroup.MaxPids)
	case l.Pids > 0 && l.Pids < MinPids:
		return configErr("Limits.Pids", "%d is below the minimum of %d: the init stage's threads count too", l.Pids, MinPids)
	}
	if err := l.Rlimits.validate(); err != nil {
		return err
	}
	need := l.needsCgroup()
	if len(need) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		_, err := l.plan()
		return err
	}
	return cgroupConfigErr(l.cgroupConfig().Validate(), need[0])
}

// plan decides, for an ordinary user, how the limits apply given the
// cgroups delegated to it (see planLimits).
func (l *Limits) plan() (limitsPlan, error) {
	d, err := cgroup.CheckDelegation(l.CgroupParent)
	if err != nil {
		return limitsPlan{}, cgroupConfigErr(err, "Limits.CgroupParent")
	}
	return planLimits(l.cgroupConfig().Limits, l.BestEffort, d)
}

func (r *Rlimits) validate() error {
	for _, f := range []struct {
		name     string
		v, least int64
	}{
		{"NoFile", r.NoFile, MinNoFile},
		{"FileSize", r.FileSize, 1},
		{"Stack", r.Stack, 1},
		{"Core", r.Core, 0},
		{"AddressSpace", r.AddressSpace, MinAddressSpace},
		{"Processes", r.Processes, MinProcesses},
	} {
		field := "Limits.Rlimits." + f.name
		switch {
		case f.v < Unlimited:
			return configErr(field, "must be a positive number or Unlimited, not %d", f.v)
		case f.v > 0 && f.v < f.least:
			return configErr(field, "%d is below the minimum of %d that the init stage needs", f.v, f.least)
		}
	}
	if r.CPU < 0 {
		return configErr("Limits.Rlimits.CPU", "must not be negative")
	}
	return nil
}

// list returns the rlimits the init stage sets.
func (r *Rlimits) list() []proto.Rlimit {
	var out []proto.Rlimit
	add := func(res int, v int64) {
		switch {
		case v == Unlimited:
			out = append(out, proto.Rlimit{Resource: res, Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY})
		case v > 0:
			out = append(out, proto.Rlimit{Resource: res, Cur: uint64(v), Max: uint64(v)})
		}
	}
	add(unix.RLIMIT_NOFILE, r.NoFile)
	add(unix.RLIMIT_FSIZE, r.FileSize)
	add(unix.RLIMIT_STACK, r.Stack)
	if r.Core == 0 {
		out = append(out, proto.Rlimit{Resource: unix.RLIMIT_CORE})
	} else {
		add(unix.RLIMIT_CORE, r.Core)
	}
	add(unix.RLIMIT_AS, r.AddressSpace)
	add(unix.RLIMIT_NPROC, r.Processes)
	if r.CPU > 0 {
		add(unix.RLIMIT_CPU, int64(math.Ceil(r.CPU.Seconds())))
	}
	return out
}

// cgroupConfigErr turns the first of the errors package cgroup joined into
// a *ConfigError named after the sandbox's field. An error about the host
// as a whole is charged to first, the first field that needs a group.
func cgroupConfigErr(err error, first string) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		err = j.Unwrap()[0]
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		return &ConfigError{Field: first, Err: err}
	}
	field := ce.Field
	switch field {
	case "Parent":
		field = "Limits.CgroupParent"
	case "Limits":
		field = first
	}
	return &ConfigError{Field: field, Err: ce.Err}
}
