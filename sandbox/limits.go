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

// Limits are resource limits. Memory to IOWeight (as in cgroup.Limits) and
// CPUTime need a cgroup (host root or a delegated one), else Start fails
// first. The zero Limits cap Pids, Memory and copied Output (Default*), no
// core; Unlimited lifts one.
type Limits struct {
	Memory       int64         // bytes, at least cgroup.MinMemory; reached: OOMKilled
	Swap         int64         // on top of Memory, only with it; zero means none
	CPU          float64       // bandwidth in CPUs (0.5, 2), at least 0.01
	CPUPeriod    time.Duration // period of CPU, 1 ms to 1 s; zero: 100 ms
	CPUWeight    uint64        // share under contention, 1 to 10000
	Pids         int64         // tasks at once, at least MinPids; more fail with EAGAIN
	CPUs         string        // CPUs it may use, as "0-3,6"
	Mems         string        // memory nodes it may use
	IOWeight     uint64        // block I/O share, 1 to 10000
	CPUTime      time.Duration // verdict CPUTimeLimit, a few ms late
	Output       int64         // bytes of stdout and stderr, then OutputLimit; the default counts only copied output
	Rlimits      Rlimits
	SoftRlimits  Rlimits             // soft limits below Rlimits' hard ones; zero: soft is hard
	OOMScoreAdj  int                 // -1000 to 1000; zero: the caller's; lower needs host root
	Kernel       KernelLimits        // inotify, namespaces, queued signals per user inside
	CgroupParent string              // relative or absolute; empty: "stockade" below the caller's
	CgroupName   string              // a group name of the caller's (OCI cgroupsPath), made even without limits
	BestEffort   bool                // without a cgroup: rlimits for Memory and Pids, the rest left out (Result.Notes)
	Devices      []cgroup.DeviceRule // cgroup v1 device rules, in order; the sandbox's own /dev stays allowed
}

// Rlimits are every process's rlimits; zero: the caller's, but Core.
type Rlimits struct {
	NoFile       int64         // RLIMIT_NOFILE, at least MinNoFile
	FileSize     int64         // RLIMIT_FSIZE, bytes
	Stack        int64         // RLIMIT_STACK, bytes
	Core         int64         // RLIMIT_CORE, bytes
	AddressSpace int64         // RLIMIT_AS, bytes, at least MinAddressSpace
	Processes    int64         // RLIMIT_NPROC of the command's user, at least MinProcesses
	CPU          time.Duration // RLIMIT_CPU, rounded up to seconds
	Data         int64         // RLIMIT_DATA, bytes, at least MinAddressSpace
}

// Unlimited, as an Rlimits field or Limits.Memory, Pids or Output, lifts it.
const Unlimited = -1

// The caps of the zero Limits.
const (
	DefaultPids   = 1024
	DefaultMemory = 1 << 30
	DefaultOutput = 64 << 20 // copied by the caller
)

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
	add(l.CgroupName != "", "CgroupName")
	add(l.Memory > 0, "Memory")
	add(l.Swap != 0, "Swap")
	add(l.CPU != 0, "CPU")
	add(l.CPUPeriod != 0, "CPUPeriod")
	add(l.CPUWeight != 0, "CPUWeight")
	add(l.Pids > 0, "Pids")
	add(l.CPUs != "", "CPUs")
	add(l.Mems != "", "Mems")
	add(l.IOWeight != 0, "IOWeight")
	add(len(l.Devices) > 0, "Devices")
	add(l.CPUTime != 0, "CPUTime")
	return f
}

func (l *Limits) cgroupConfig() cgroup.Config {
	return cgroup.Config{
		Parent: l.CgroupParent,
		Name:   l.CgroupName,
		Limits: cgroup.Limits{
			Memory: max(l.Memory, 0), Swap: l.Swap, CPU: l.CPU, CPUPeriod: l.CPUPeriod, CPUWeight: l.CPUWeight,
			Pids: max(l.Pids, 0), CPUs: l.CPUs, Mems: l.Mems, IOWeight: l.IOWeight, Devices: l.Devices,
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
	case l.Output < Unlimited:
		return configErr("Limits.Output", "must be positive, zero (DefaultOutput) or Unlimited, not %d", l.Output)
	case l.Memory < Unlimited:
		return configErr("Limits.Memory", "must be positive, zero (DefaultMemory) or Unlimited, not %d", l.Memory)
	case l.Pids < Unlimited:
		return configErr("Limits.Pids", "must be positive, zero (DefaultPids) or Unlimited, not %d", l.Pids)
	case strings.IndexByte(l.CgroupParent, 0) >= 0:
		return configErr("Limits.CgroupParent", "must not contain a NUL byte")
	case l.Pids > cgroup.MaxPids:
		return configErr("Limits.Pids", "%d is above the kernel's most tasks, %d; Unlimited means no limit", l.Pids, cgroup.MaxPids)
	case l.Pids > 0 && l.Pids < MinPids:
		return configErr("Limits.Pids", "%d is below the minimum of %d: the init stage's threads count too", l.Pids, MinPids)
	}
	if err := l.Rlimits.validate(); err != nil {
		return err
	}
	if err := l.Kernel.validate(); err != nil {
		return err
	}
	if err := l.validateSoft(); err != nil {
		return err
	}
	if l.OOMScoreAdj < -1000 || l.OOMScoreAdj > 1000 {
		return configErr("Limits.OOMScoreAdj", "must be from -1000 to 1000, not %d", l.OOMScoreAdj)
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

func (r *Rlimits) validate() error { return r.validateMin(true) }

// validateMin checks r; with init, the values must leave the init stage
// what it needs (the soft limits need not: the init runs under the hard
// ones).
func (r *Rlimits) validateMin(init bool) error {
	least := func(v int64) int64 {
		if init {
			return v
		}
		return 1
	}
	for _, f := range []struct {
		name     string
		v, least int64
	}{
		{"NoFile", r.NoFile, least(MinNoFile)},
		{"FileSize", r.FileSize, 1},
		{"Stack", r.Stack, 1},
		{"Core", r.Core, 0},
		{"AddressSpace", r.AddressSpace, least(MinAddressSpace)},
		{"Processes", r.Processes, least(MinProcesses)},
		{"Data", r.Data, least(MinAddressSpace)},
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
	add(unix.RLIMIT_DATA, r.Data)
	return out
}

// rlimitFields lists the fields of r by resource, in the order of list,
// with RLIMIT_CPU in whole seconds.
func (r *Rlimits) rlimitFields() []struct {
	name string
	res  int
	v    int64
} {
	cpu := int64(0)
	if r.CPU > 0 {
		cpu = int64(math.Ceil(r.CPU.Seconds()))
	}
	return []struct {
		name string
		res  int
		v    int64
	}{
		{"NoFile", unix.RLIMIT_NOFILE, r.NoFile}, {"FileSize", unix.RLIMIT_FSIZE, r.FileSize},
		{"Stack", unix.RLIMIT_STACK, r.Stack}, {"Core", unix.RLIMIT_CORE, r.Core},
		{"AddressSpace", unix.RLIMIT_AS, r.AddressSpace}, {"Processes", unix.RLIMIT_NPROC, r.Processes},
		{"CPU", unix.RLIMIT_CPU, cpu}, {"Data", unix.RLIMIT_DATA, r.Data},
	}
}

// validateSoft checks SoftRlimits against Rlimits.
func (l *Limits) validateSoft() error {
	if err := l.SoftRlimits.validateMin(false); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Field = strings.Replace(ce.Field, "Limits.Rlimits.", "Limits.SoftRlimits.", 1)
		}
		return err
	}
	hard := l.Rlimits.rlimitFields()
	for i, f := range l.SoftRlimits.rlimitFields() {
		h := hard[i].v
		switch {
		case f.v == 0:
		case h == 0:
			return configErr("Limits.SoftRlimits."+f.name, "needs a hard limit in Limits.Rlimits.%s", f.name)
		case h != Unlimited && (f.v == Unlimited || f.v > h):
			return configErr("Limits.SoftRlimits."+f.name, "%d is above the hard limit %d", f.v, h)
		}
	}
	return nil
}

// rlimits returns the rlimits the init stage sets: Rlimits, with the soft
// limits of SoftRlimits.
func (l *Limits) rlimits() []proto.Rlimit {
	out := l.Rlimits.list()
	for _, f := range l.SoftRlimits.rlimitFields() {
		if f.v == 0 {
			continue
		}
		cur := uint64(f.v)
		if f.v == Unlimited {
			cur = unix.RLIM_INFINITY
		}
		for i := range out {
			if out[i].Resource == f.res {
				out[i].Cur = cur
			}
		}
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
	case "Name":
		field = "Limits.CgroupName"
	case "Limits":
		field = first
	}
	return &ConfigError{Field: field, Err: ce.Err}
}
