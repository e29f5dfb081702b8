package oci

import (
	"fmt"
	"io/fs"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/sandbox"
)

// ToSpec describes cfg as a runtime-spec configuration: the command, its
// user, root file system, mounts, namespaces, capabilities, seccomp policy,
// rlimits and cgroup limits, with the defaults of a zero Config filled in.
// FromSpec maps the result back to a Config that runs the same sandbox;
// for a Config that FromSpec made, to that very Config.
//
// A Config field that has no form in the spec (a Timeout, CPUTime or Output
// limit, a network link, Landlock settings, a Docker seccomp profile, the
// default view of the host as root, ...) is refused with a
// *sandbox.ConfigError naming the field; the parent-only fields (the
// streams, ExtraFiles, Logger) and WaitDelay belong to the caller of the
// runtime, not to the bundle, and are left out. Three things of the
// sandbox are implicit in the spec, as FromSpec reads them: the tmpfs at
// /tmp, the default seccomp policy (no linux.seccomp), and the masking of
// the sandbox's paths whatever linux.maskedPaths lists.
func ToSpec(cfg sandbox.Config) (*specs.Spec, error) {
	var errs []error
	refuse := func(field, format string, args ...any) {
		errs = append(errs, &sandbox.ConfigError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	c := cfg
	if len(c.Args) == 0 {
		refuse("Args", "a spec's process needs a command")
	}
	if c.Dir == "" {
		c.Dir = sandbox.DefaultDir
	}
	if c.Hostname == "" {
		c.Hostname = sandbox.DefaultHostname
	}
	user := "root"
	if !c.RunAsRoot {
		user = "sandbox"
		if c.UID == 0 {
			c.UID = sandbox.DefaultUID
		}
		if c.GID == 0 {
			c.GID = sandbox.DefaultUID
		}
	}
	if c.Env == nil {
		c.Env = sandbox.DefaultEnv(user, c.Dir)
	}
	for _, f := range []struct {
		set  bool
		name string
	}{
		{c.Timeout != 0, "Timeout"},
		{c.SubordinateIDs, "SubordinateIDs"},
		{c.TmpfsSize != 0, "TmpfsSize"},
		{c.TmpfsInodes != 0, "TmpfsInodes"},
		{c.Limits.CPUTime != 0, "Limits.CPUTime"},
		{c.Limits.Output != 0, "Limits.Output"},
		{c.Limits.CgroupParent != "" && c.Limits.CgroupName == "", "Limits.CgroupParent"},
		{c.Limits.BestEffort, "Limits.BestEffort"},
		{c.Network.Link != nil, "Network.Link"},
		{len(c.Network.Networks) > 0, "Network.Networks"},
		{len(c.Network.Ports) > 0, "Network.Ports"},
		{len(c.Network.DNS) > 0, "Network.DNS"},
		{c.Security.SeccompProfile != nil, "Security.SeccompProfile"},
		{c.Security.SeccompExtend, "Security.SeccompExtend"},
		{c.Security.Landlock.Disabled || c.Security.Landlock.Strict || c.Security.Landlock.AnyTCP ||
			len(c.Security.Landlock.WritablePaths) > 0 || c.Security.Landlock.BindTCP != nil ||
			c.Security.Landlock.ConnectTCP != nil, "Security.Landlock"},
	} {
		if f.set {
			refuse(f.name, "has no form in a runtime-spec configuration")
		}
	}
	if c.RootDir == "" {
		refuse("RootDir", "a spec needs a root file system; the sandbox's default view of the host has no form in one")
	}

	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: c.Hostname,
		Root:     &specs.Root{Path: c.RootDir, Readonly: !c.WritableRoot},
		Process: &specs.Process{
			Args:            slices.Clone(c.Args),
			Env:             slices.Clone(c.Env),
			Cwd:             c.Dir,
			User:            specs.User{UID: uint32(c.UID), GID: uint32(c.GID)},
			NoNewPrivileges: !c.Security.AllowNewPrivileges,
			Capabilities:    specCaps(c.Security.Capabilities, c.RunAsRoot),
			Rlimits:         specRlimits(&c.Limits.Rlimits, &c.Limits.SoftRlimits),
		},
		Linux: &specs.Linux{
			MaskedPaths:   slices.Clone(maskedPaths),
			ReadonlyPaths: slices.Clone(readOnlyPaths),
			Resources:     specResources(&c.Limits),
		},
	}
	l := s.Linux
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.MountNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace} {
		if t == specs.NetworkNamespace && c.Network.ShareHost || t == specs.TimeNamespace && !c.TimeNamespace ||
			t == specs.UserNamespace && c.RootIDMap {
			continue
		}
		ns := specs.LinuxNamespace{Type: t}
		if t == specs.NetworkNamespace {
			ns.Path = c.Network.Join
		}
		l.Namespaces = append(l.Namespaces, ns)
	}
	if c.TTY != nil {
		s.Process.Terminal = true
		if c.TTY.Rows != 0 || c.TTY.Cols != 0 {
			s.Process.ConsoleSize = &specs.Box{Height: uint(c.TTY.Rows), Width: uint(c.TTY.Cols)}
		}
	}
	if c.Umask != nil {
		u := uint32(c.Umask.Perm())
		s.Process.User.Umask = &u
	}
	for _, g := range c.Groups {
		s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
	}
	if c.Limits.OOMScoreAdj != 0 {
		v := c.Limits.OOMScoreAdj
		s.Process.OOMScoreAdj = &v
	}
	if len(c.Sysctl) > 0 {
		l.Sysctl = maps.Clone(c.Sysctl)
	}
	if name := c.Limits.CgroupName; name != "" {
		switch parent := c.Limits.CgroupParent; parent {
		case ".":
			l.CgroupsPath = name
		case "":
			l.CgroupsPath = path.Join(cgroup.DefaultParent, name)
		default:
			l.CgroupsPath = path.Join(parent, name)
		}
	}
	if p := c.RootPropagation; p != "" && p != "private" {
		l.RootfsPropagation = string(p)
	}
	if c.IDMap != (sandbox.IDMap{}) {
		l.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: c.IDMap.HostUID, Size: c.IDMap.Size}}
		gsize := c.IDMap.Size
		if c.IDMap.GIDSize != 0 {
			gsize = c.IDMap.GIDSize
		}
		l.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: c.IDMap.HostGID, Size: gsize}}
	}

	// The sandbox's own mounts, then the working directory's tmpfs
	// unless a mount targets it, then Config.Mounts: the order of its
	// plan.
	shm := fmt.Sprintf("size=%dk", sandbox.DefaultTmpfsSize>>10)
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755", "size=64k", "ro"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "nodev", "mode=1777", shm}},
	}
	if c.Mqueue {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}})
	}
	if c.Security.Sysfs {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}})
		l.MaskedPaths = append(l.MaskedPaths, sysMaskedPaths...)
	}
	if c.Dir != "/" && !slices.ContainsFunc(c.Mounts, func(m sandbox.Mount) bool { return m.Target == c.Dir }) {
		s.Mounts = append(s.Mounts, specTmpfs(sandbox.Mount{
			Kind: sandbox.Tmpfs, Target: c.Dir, Size: sandbox.DefaultTmpfsSize, Inodes: sandbox.DefaultTmpfsInodes,
			Mode: 0o755, UID: c.UID, GID: c.GID,
		}))
	}
	for i, m := range c.Mounts {
		f := fmt.Sprintf("Mounts[%d]", i)
		switch {
		case m.Device:
			refuse(f+".Device", "a bind of a device node has no form in a spec (its binds are nodev)")
		case m.Kind == sandbox.Bind:
			opts := []string{"rbind", "nosuid", "nodev", "ro"}
			if m.Writable {
				opts[3] = "rw"
			}
			if m.Propagation != "" && m.Propagation != "private" {
				opts = append(opts, string(m.Propagation))
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: opts})
		case m.Kind == sandbox.Tmpfs:
			s.Mounts = append(s.Mounts, specTmpfs(m))
		case m.Kind == sandbox.Mask:
			l.MaskedPaths = append(l.MaskedPaths, m.Target)
		case m.Kind == sandbox.ReadOnlyPath:
			l.ReadonlyPaths = append(l.ReadonlyPaths, m.Target)
		case m.Kind == sandbox.Node:
			l.Devices = append(l.Devices, specDevice(m))
		default:
			refuse(f+".Kind", "only binds, tmpfs, nodes, masked and read-only paths are mounts of a Config")
		}
	}

	sec := &c.Security
	switch {
	case sec.SeccompUnconfined:
		l.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	case sec.Seccomp != nil && !sec.SeccompExtend:
		// The Config's policy is in runtime-spec's form already.
		l.Seccomp = sec.Seccomp
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return s, nil
}

// specDevice is the linux.devices entry of the Node m.
func specDevice(m sandbox.Mount) specs.LinuxDevice {
	uid, gid, mode := uint32(m.UID), uint32(m.GID), m.Mode.Perm()
	d := specs.LinuxDevice{Path: m.Target, Type: "p", FileMode: &mode, UID: &uid, GID: &gid}
	switch m.Mode.Type() {
	case fs.ModeDevice | fs.ModeCharDevice:
		d.Type = "c"
	case fs.ModeDevice:
		d.Type = "b"
	}
	if d.Type != "p" {
		d.Major, d.Minor = devNumbers(m.Rdev)
	}
	return d
}

func specCaps(caps []string, root bool) *specs.LinuxCapabilities {
	c := &specs.LinuxCapabilities{
		Bounding:  slices.Clone(caps),
		Effective: slices.Clone(caps),
		Permitted: slices.Clone(caps),
	}
	if !root {
		c.Inheritable = slices.Clone(caps)
		c.Ambient = slices.Clone(caps)
	}
	return c
}

func specRlimits(r, soft *sandbox.Rlimits) []specs.POSIXRlimit {
	var out []specs.POSIXRlimit
	value := func(v int64) uint64 {
		if v == sandbox.Unlimited {
			return rlimitInf
		}
		return uint64(v)
	}
	add := func(typ string, v, s int64) {
		if v == 0 && typ != "RLIMIT_CORE" {
			return
		}
		l := specs.POSIXRlimit{Type: typ, Hard: value(v), Soft: value(v)}
		if s != 0 {
			l.Soft = value(s)
		}
		out = append(out, l)
	}
	add("RLIMIT_NOFILE", r.NoFile, soft.NoFile)
	add("RLIMIT_FSIZE", r.FileSize, soft.FileSize)
	add("RLIMIT_STACK", r.Stack, soft.Stack)
	add("RLIMIT_CORE", r.Core, soft.Core) // zero means no core file, not the caller's limit
	add("RLIMIT_AS", r.AddressSpace, soft.AddressSpace)
	add("RLIMIT_NPROC", r.Processes, soft.Processes)
	add("RLIMIT_CPU", int64(math.Ceil(r.CPU.Seconds())), int64(math.Ceil(soft.CPU.Seconds())))
	add("RLIMIT_DATA", r.Data, soft.Data)
	return out
}

func specResources(l *sandbox.Limits) *specs.LinuxResources {
	r := &specs.LinuxResources{
		// The sandbox's processes can open no device but those of its
		// /dev; said so for runtimes that read the list.
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	if l.Memory == sandbox.Unlimited {
		r.Memory = &specs.LinuxMemory{Limit: &l.Memory}
	} else if l.Memory != 0 {
		swap := l.Memory + l.Swap
		if l.Swap == sandbox.SwapUnlimited {
			swap = -1
		}
		r.Memory = &specs.LinuxMemory{Limit: &l.Memory, Swap: &swap}
	}
	if l.CPU != 0 || l.CPUWeight != 0 || l.CPUs != "" || l.Mems != "" {
		r.CPU = &specs.LinuxCPU{Cpus: l.CPUs, Mems: l.Mems}
		if l.CPU != 0 {
			period := uint64(cpuPeriod)
			if l.CPUPeriod != 0 {
				period = uint64(l.CPUPeriod.Microseconds())
			}
			quota := int64(math.Round(l.CPU * float64(period)))
			r.CPU.Quota, r.CPU.Period = &quota, &period
		}
		if l.CPUWeight != 0 {
			shares := cpuShares(l.CPUWeight)
			r.CPU.Shares = &shares
		}
	}
	if len(l.Devices) > 0 {
		r.Devices = nil
		for _, d := range l.Devices {
			sd := specs.LinuxDeviceCgroup{Allow: d.Allow, Type: d.Type, Access: d.Access}
			if d.Major != cgroup.AnyDevice {
				sd.Major = &d.Major
			}
			if d.Minor != cgroup.AnyDevice {
				sd.Minor = &d.Minor
			}
			r.Devices = append(r.Devices, sd)
		}
	}
	if l.Pids != 0 {
		r.Pids = &specs.LinuxPids{Limit: &l.Pids}
	}
	if l.IOWeight != 0 {
		w := blkioWeight(l.IOWeight)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return r
}

func specTmpfs(m sandbox.Mount) specs.Mount {
	opts := []string{"nosuid", "nodev", "size=" + strconv.FormatInt(m.Size, 10)}
	if m.Inodes != 0 {
		opts = append(opts, "nr_inodes="+strconv.FormatInt(m.Inodes, 10))
	}
	opts = append(opts, "mode="+strconv.FormatUint(unixMode(m.Mode), 8))
	if m.UID != 0 {
		opts = append(opts, "uid="+strconv.Itoa(m.UID))
	}
	if m.GID != 0 {
		opts = append(opts, "gid="+strconv.Itoa(m.GID))
	}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	if m.Propagation != "" && m.Propagation != "private" {
		opts = append(opts, string(m.Propagation))
	}
	src := m.Source
	if src == "" {
		src = "tmpfs"
	}
	return specs.Mount{Destination: m.Target, Type: "tmpfs", Source: src, Options: opts}
}
