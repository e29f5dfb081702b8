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

// Limits are the resource limits of a sandbox; zero limits nothing but core
// files. Memory to IOWeight are as in cgroup.Limits and, with CPUTime (whose
// verdict is CPUTimeLimit, a few ms late), need a control group: host root
// or a delegated cgroup, else an error before anything is created.
type Limits struct {
	Memory    int64   // bytes, at least cgroup.MinMemory; reached: OOMKilled
	Swap      int64   // on top of Memory, only with it; zero means none
	CPU       float64 // bandwidth in CPUs (0.5, 2), at least 0.01
	CPUWeight uint64  // share under contention, 1 to 10000
	Pids      int64   // tasks at once, at least MinPids; more fail with EAGAIN
	CPUs      string  // CPUs it may use, as "0-3,6"
	Mems      string  // memory nodes it may use
	IOWeight  uint64  // block I/O share, 1 to 10000
	CPUTime   time.Duration
	// Output is the bytes of stdout and stderr; beyond it the sandbox, or
	// the Exec'd process, is killed (OutputLimit).
	Output       int64
	Rlimits      Rlimits
	Kernel       KernelLimits // inotify, namespaces, queued signals per user inside
	CgroupParent string       // relative or absolute; empty: "stockade" below the caller's
	// BestEffort lets an ordinary user without a delegated cgroup run with
	// rlimits for Memory and Pids and without the rest (see Result.Notes).
	BestEffort bool
}

// Rlimits are the setrlimit limits of every process; zero leaves one as the
// caller has it, but Core; Unlimited removes it.
type Rlimits struct {
	NoFile       int64         // RLIMIT_NOFILE, at least MinNoFile
	FileSize     int64         // RLIMIT_FSIZE, bytes
	Stack        int64         // RLIMIT_STACK, bytes
	Core         int64         // RLIMIT_CORE, bytes
	AddressSpace int64         // RLIMIT_AS, bytes, at least MinAddressSpace
	Processes    int64         // RLIMIT_NPROC of the command's user, at least MinProcesses
	CPU          time.Duration // RLIMIT_CPU, rounded up to seconds
}

// Unlimited, as an Rlimits field, removes that limit.
const Unlimited = -1

// SwapUnlimited, as Limits.Swap, lets the sandbox use any amount of swap.
const SwapUnlimited = cgroup.SwapUnlimited

// The smallest limits with which the init stage can start the command.
const (
	MinPids         = 8
	MinNoFile       = 16
	MinAddressSpace = 2 << 30
	MinProcesses    = 8
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
	if err := l.Kernel.validate(); err != nil {
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
