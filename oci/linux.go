package oci

import (
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/sandbox"
)

// requiredNamespaces are the namespaces every sandbox has, and which a
// spec must ask for: without one, the spec means the host's, which the
// sandbox cannot share.
var requiredNamespaces = []specs.LinuxNamespaceType{
	specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace,
}

func (m *mapper) namespaces(l *specs.Linux) {
	have := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range l.Namespaces {
		p := fmt.Sprintf("linux.namespaces[%d]", i)
		switch ns.Type {
		case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
			specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
		default:
			m.refuse(p+".type", "unknown namespace type %q", ns.Type)
			continue
		}
		if have[ns.Type] {
			m.refuse(p+".type", "the %s namespace is listed twice", ns.Type)
			continue
		}
		have[ns.Type] = true
		switch {
		case ns.Path != "" && ns.Type == specs.NetworkNamespace:
			m.cfg.Network.Join = ns.Path
			m.from("Network.Join", p+".path")
		case ns.Path != "":
			m.refuse(p+".path", "the sandbox creates its namespaces and joins only a network namespace")
		}
	}
	for _, t := range requiredNamespaces {
		if !have[t] {
			m.refuse("linux.namespaces", "has no %s namespace: the sandbox always has its own and cannot share the host's", t)
		}
	}
	// Without a network namespace the spec shares the host's network.
	m.cfg.Network.ShareHost = !have[specs.NetworkNamespace]
	m.from("Network", "linux.namespaces")
	m.cfg.TimeNamespace = have[specs.TimeNamespace]
	m.from("TimeNamespace", "linux.namespaces")
	if len(l.TimeOffsets) > 0 {
		m.refuse("linux.timeOffsets", "the sandbox's time namespace starts its clocks near zero; it takes no offsets")
	}
	m.idMappings(l, have[specs.UserNamespace])
}

// idMappings maps linux.uidMappings and gidMappings onto IDMap: one range
// each, from container id 0, of the same size.
func (m *mapper) idMappings(l *specs.Linux, userns bool) {
	if len(l.UIDMappings) == 0 && len(l.GIDMappings) == 0 {
		return // the sandbox picks its range
	}
	if !userns {
		m.refuse("linux.uidMappings", "id mappings need a user namespace in linux.namespaces")
		return
	}
	one := func(name string, ms []specs.LinuxIDMapping) (specs.LinuxIDMapping, bool) {
		p := "linux." + name
		switch {
		case len(ms) != 1:
			m.refuse(p, "the sandbox maps one range of ids, from 0; this has %d", len(ms))
			return specs.LinuxIDMapping{}, false
		case ms[0].ContainerID != 0:
			m.refuse(p+"[0].containerID", "the sandbox's range of ids starts at 0, not %d", ms[0].ContainerID)
			return specs.LinuxIDMapping{}, false
		case ms[0].HostID == 0:
			m.refuse(p+"[0].hostID", "the sandbox never maps host root (id 0); map an unprivileged range")
			return specs.LinuxIDMapping{}, false
		}
		return ms[0], true
	}
	u, uok := one("uidMappings", l.UIDMappings)
	g, gok := one("gidMappings", l.GIDMappings)
	if !uok || !gok {
		return
	}
	// An ordinary user's own ids, one each, are what the sandbox maps for
	// it anyway, onto the command's ids; it may not name them in IDMap.
	if os.Geteuid() != 0 && u.Size == 1 && int(u.HostID) == os.Geteuid() && int(g.HostID) == os.Getegid() {
		return
	}
	m.cfg.IDMap = sandbox.IDMap{HostUID: u.HostID, HostGID: g.HostID, Size: u.Size}
	if g.Size != u.Size {
		m.cfg.IDMap.GIDSize = g.Size
	}
	m.from("IDMap.GIDSize", "linux.gidMappings[0].size")
	m.from("IDMap.HostGID", "linux.gidMappings[0].hostID")
	m.from("IDMap", "linux.uidMappings")
}

// defaultDevices are the device nodes of every sandbox's /dev, by path
// with their numbers.
var defaultDevices = map[string][2]int64{
	"/dev/null": {1, 3}, "/dev/zero": {1, 5}, "/dev/full": {1, 7},
	"/dev/random": {1, 8}, "/dev/urandom": {1, 9}, "/dev/tty": {5, 0},
}

// device maps an entry of linux.devices to a Node of Config.Mounts,
// placed after the spec's mounts, as runc makes them; the sandbox's own
// device nodes are left as they are.
func (m *mapper) device(p string, d specs.LinuxDevice) {
	if n, ok := defaultDevices[d.Path]; ok && d.Type == "c" && n == [2]int64{d.Major, d.Minor} {
		return
	}
	if n, ok := defaultDevices[d.Path]; ok {
		m.refuse(p, "%s is the sandbox's own device node, c %d:%d", d.Path, n[0], n[1])
		return
	}
	if os.Geteuid() != 0 {
		m.refuse(p, "only host root makes device nodes; bind the host's %s instead", d.Path)
		return
	}
	if !path.IsAbs(d.Path) || path.Clean(d.Path) != d.Path {
		m.refuse(p+".path", "must be an absolute, clean path, not %q", d.Path)
		return
	}
	n := sandbox.Mount{Kind: sandbox.Node, Target: d.Path, Mode: 0o666}
	switch d.Type {
	case "c", "u":
		n.Mode |= fs.ModeDevice | fs.ModeCharDevice
	case "b":
		n.Mode |= fs.ModeDevice
	case "p":
		n.Mode |= fs.ModeNamedPipe
	default:
		m.refuse(p+".type", "must be c, u, b or p, not %q", d.Type)
		return
	}
	if d.Type != "p" {
		if d.Major < 0 || d.Major > 0xfff || d.Minor < 0 || d.Minor > 0xfffff {
			m.refuse(p, "device number %d:%d is out of range", d.Major, d.Minor)
			return
		}
		n.Rdev = mkdev(d.Major, d.Minor)
	}
	if d.FileMode != nil {
		if *d.FileMode&^0o170777 != 0 {
			m.refuse(p+".fileMode", "must hold permission bits only, not %#o", uint32(*d.FileMode))
			return
		}
		n.Mode = n.Mode.Type() | *d.FileMode&0o777
	}
	if d.UID != nil {
		n.UID = int(*d.UID)
	}
	if d.GID != nil {
		n.GID = int(*d.GID)
	}
	m.from(fmt.Sprintf("Mounts[%d]", len(m.cfg.Mounts)), p)
	m.cfg.Mounts = append(m.cfg.Mounts, n)
}

// mkdev and devNumbers encode and decode a Linux device number, as
// unix.Mkdev, Major and Minor do (this file builds on every system).
func mkdev(major, minor int64) uint64 {
	ma, mi := uint64(major), uint64(minor)
	return ma&0xfff<<8 | ma&^0xfff<<32 | mi&0xff | mi&^0xff<<12
}

func devNumbers(dev uint64) (major, minor int64) {
	return int64(dev>>8&0xfff | dev>>32&^0xfff), int64(dev&0xff | dev>>12&^0xff)
}

func (m *mapper) linux(l *specs.Linux) {
	for i, d := range l.Devices {
		m.device(fmt.Sprintf("linux.devices[%d]", i), d)
	}
	if len(l.NetDevices) > 0 {
		m.refuse("linux.netDevices", "the sandbox moves no host network device into its namespace")
	}
	if len(l.Sysctl) > 0 {
		m.cfg.Sysctl = maps.Clone(l.Sysctl)
		for k := range l.Sysctl {
			m.from("Sysctl["+k+"]", "linux.sysctl."+k)
		}
	}
	if p, ok := propagation(l.RootfsPropagation); !ok {
		m.refuse("linux.rootfsPropagation", "must be shared, slave, private or unbindable (or their r- forms), not %q", l.RootfsPropagation)
	} else if p != "" { // private
		m.cfg.RootPropagation = string(p)
		m.from("RootPropagation", "linux.rootfsPropagation")
	}
	if l.IntelRdt != nil {
		m.refuse("linux.intelRdt", "the sandbox does not use Intel RDT")
	}
	if l.MemoryPolicy != nil {
		m.refuse("linux.memoryPolicy", "the sandbox sets no NUMA memory policy; use linux.resources.cpu.mems")
	}
	if l.Personality != nil {
		m.refuse("linux.personality", "the sandbox sets no execution domain")
	}
	m.cgroupsPath(l.CgroupsPath)
	// MountLabel is ignored: see the package documentation.
}

// cgroupsPath maps linux.cgroupsPath, the sandbox's own group, to
// Limits.CgroupParent and Limits.CgroupName: absolute, from the root of
// every hierarchy; relative, below the runtime's own group, as runc's
// cgroupfs driver places it.
func (m *mapper) cgroupsPath(p string) {
	const field = "linux.cgroupsPath"
	if p == "" {
		return
	}
	switch {
	case strings.Contains(p, ":"):
		m.refuse(field, "%q is in the systemd driver's slice:prefix:name form; stockade uses cgroupfs paths", p)
		return
	case path.Clean(p) != p || p == "/" || p == ".." || strings.HasPrefix(p, "../"):
		m.refuse(field, "%q must be a clean path that names a group", p)
		return
	}
	dir, name := path.Split(p)
	parent := strings.TrimSuffix(dir, "/")
	if parent == "" && dir == "/" {
		parent = "/"
	}
	if parent == "" {
		// A bare name: below the runtime's own group, not below
		// sandbox's default parent.
		parent = "."
	}
	m.cfg.Limits.CgroupParent, m.cfg.Limits.CgroupName = parent, name
	m.from("Limits.CgroupParent", field)
	m.from("Limits.CgroupName", field)
}

func (m *mapper) resources(r *specs.LinuxResources) {
	if r == nil {
		return
	}
	const base = "linux.resources"
	lim := &m.cfg.Limits
	m.devices(base+".devices", r.Devices)
	if mem := r.Memory; mem != nil {
		p := base + ".memory"
		switch {
		case mem.Limit != nil && *mem.Limit > 0:
			lim.Memory = *mem.Limit
			m.from("Limits.Memory", p+".limit")
			m.from("Limits.Swap", p+".swap")
			switch {
			case mem.Swap == nil || *mem.Swap == -1:
				// runc and crun leave swap alone when it is not set.
				lim.Swap = sandbox.SwapUnlimited
			case *mem.Swap < *mem.Limit:
				m.refuse(p+".swap", "counts memory and swap together, so it must be at least the limit (%d) or -1, not %d", *mem.Limit, *mem.Swap)
			default:
				lim.Swap = *mem.Swap - *mem.Limit
			}
		case mem.Limit != nil && *mem.Limit == -1:
			// Asked for in so many words: the sandbox's default cap
			// (DefaultMemory) is lifted too.
			lim.Memory = sandbox.Unlimited
			m.from("Limits.Memory", p+".limit")
			if mem.Swap != nil && *mem.Swap != -1 {
				m.refuse(p+".swap", "must be -1 or unset with a limit of -1 (none), not %d", *mem.Swap)
			}
		case mem.Limit != nil && *mem.Limit < -1:
			m.refuse(p+".limit", "must be positive, or 0 or -1 for none, not %d", *mem.Limit)
		case mem.Swap != nil && *mem.Swap != -1:
			m.refuse(p+".swap", "the sandbox limits swap only together with memory; set limit")
		}
		for _, f := range []struct {
			set  bool
			name string
		}{
			{mem.Reservation != nil, "reservation"},
			{mem.Kernel != nil, "kernel"},
			{mem.KernelTCP != nil, "kernelTCP"},
			{mem.Swappiness != nil, "swappiness"},
			{mem.DisableOOMKiller != nil && *mem.DisableOOMKiller, "disableOOMKiller"},
			{mem.UseHierarchy != nil, "useHierarchy"},
			{mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate, "checkBeforeUpdate"},
		} {
			if f.set {
				m.refuse(p+"."+f.name, "the sandbox does not set it")
			}
		}
	}
	if cpu := r.CPU; cpu != nil {
		m.cpu(base+".cpu", cpu)
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		switch l := *r.Pids.Limit; {
		case l > 0:
			lim.Pids = l
			m.from("Limits.Pids", base+".pids.limit")
		case l == -1:
			lim.Pids = sandbox.Unlimited // DefaultPids lifted too
			m.from("Limits.Pids", base+".pids.limit")
		case l < -1:
			m.refuse(base+".pids.limit", "must be positive, or 0 or -1 for none, not %d", l)
		}
	}
	if b := r.BlockIO; b != nil {
		p := base + ".blockIO"
		if b.Weight != nil && *b.Weight != 0 {
			if *b.Weight < 10 || *b.Weight > 1000 {
				m.refuse(p+".weight", "must be from 10 to 1000, not %d", *b.Weight)
			} else {
				lim.IOWeight = ioWeight(*b.Weight)
				m.from("Limits.IOWeight", p+".weight")
			}
		}
		for _, f := range []struct {
			set  bool
			name string
		}{
			{b.LeafWeight != nil, "leafWeight"},
			{len(b.WeightDevice) > 0, "weightDevice"},
			{len(b.ThrottleReadBpsDevice) > 0, "throttleReadBpsDevice"},
			{len(b.ThrottleWriteBpsDevice) > 0, "throttleWriteBpsDevice"},
			{len(b.ThrottleReadIOPSDevice) > 0, "throttleReadIOPSDevice"},
			{len(b.ThrottleWriteIOPSDevice) > 0, "throttleWriteIOPSDevice"},
		} {
			if f.set {
				m.refuse(p+"."+f.name, "the sandbox sets only an I/O weight for all devices")
			}
		}
	}
	if len(r.HugepageLimits) > 0 {
		m.refuse(base+".hugepageLimits", "the sandbox does not limit huge pages")
	}
	if r.Network != nil {
		m.refuse(base+".network", "the sandbox does not set net_cls or net_prio")
	}
	if len(r.Rdma) > 0 {
		m.refuse(base+".rdma", "the sandbox does not limit RDMA")
	}
	if len(r.Unified) > 0 {
		k := slices.Sorted(maps.Keys(r.Unified))[0]
		m.refuse(base+".unified."+k, "the sandbox writes no cgroup file by name")
	}
}

// denyAll is the device rule that denies every device.
var denyAll = cgroup.DeviceRule{Type: "a", Major: cgroup.AnyDevice, Minor: cgroup.AnyDevice, Access: "rwm"}

// deviceRulesApply reports whether the sandbox can apply device rules on
// this host: as host root, with the cgroup v1 devices controller.
var deviceRulesApply = sync.OnceValue(func() bool {
	return os.Geteuid() == 0 && cgroup.Config{Limits: cgroup.Limits{Devices: []cgroup.DeviceRule{denyAll}}}.Validate() == nil
})

// devices maps linux.resources.devices to Limits.Devices where the
// sandbox can apply them. A spec's rules can take nothing away that the
// sandbox grants, nor grant a device node it could open: its /dev holds
// only its own nodes, which it always allows, and its root and mounts are
// nodev. So a lone rule that denies every device, what most specs hold,
// and every rule where device rules cannot be applied, are ignored.
func (m *mapper) devices(p string, rules []specs.LinuxDeviceCgroup) {
	if len(rules) == 0 || !deviceRulesApply() {
		return
	}
	lim := &m.cfg.Limits
	var out []cgroup.DeviceRule
	for i, d := range rules {
		r := cgroup.DeviceRule{Allow: d.Allow, Type: d.Type, Major: cgroup.AnyDevice, Minor: cgroup.AnyDevice, Access: d.Access}
		if r.Type == "" {
			r.Type = "a" // the spec's default
		}
		if r.Access == "" {
			r.Access = "rwm"
		}
		if r.Type != "a" { // the kernel reads no numbers for every device
			if d.Major != nil {
				r.Major = *d.Major
			}
			if d.Minor != nil {
				r.Minor = *d.Minor
			}
		}
		out = append(out, r)
		q, f := fmt.Sprintf("%s[%d]", p, i), fmt.Sprintf("Limits.Devices[%d]", i)
		m.from(f, q)
		for _, n := range []string{"Type", "Major", "Minor", "Access"} {
			m.from(f+"."+n, q+"."+strings.ToLower(n))
		}
	}
	if len(out) == 1 && out[0] == denyAll {
		return
	}
	lim.Devices = out
	m.from("Limits.Devices", p)
}

// cpuPeriod is the sandbox's default CFS period in microseconds (package
// cgroup).
const cpuPeriod = 100000

// maxCPUPeriod is the longest CFS period the kernel takes, in
// microseconds.
const maxCPUPeriod = 1000000

func (m *mapper) cpu(p string, c *specs.LinuxCPU) {
	lim := &m.cfg.Limits
	if c.Shares != nil && *c.Shares != 0 {
		lim.CPUWeight = cpuWeight(*c.Shares)
		m.from("Limits.CPUWeight", p+".shares")
	}
	if c.Quota != nil && *c.Quota < -1 {
		m.refuse(p+".quota", "must be positive, or 0 or -1 for none, not %d", *c.Quota)
	}
	if c.Quota != nil && *c.Quota > 0 {
		period := uint64(cpuPeriod)
		if c.Period != nil && *c.Period != 0 {
			period = *c.Period
		}
		if period > maxCPUPeriod {
			m.refuse(p+".period", "must be from 1000 to %d µs, as the kernel takes, not %d", maxCPUPeriod, period)
		} else {
			lim.CPU = float64(*c.Quota) / float64(period)
			if period != cpuPeriod {
				lim.CPUPeriod = time.Duration(period) * time.Microsecond
			}
			m.from("Limits.CPU", p+".quota")
			m.from("Limits.CPUPeriod", p+".period")
		}
	}
	// RealtimeRuntime and RealtimePeriod are ignored: the sandbox's group
	// gets no real-time budget, which takes nothing the spec grants that
	// the sandbox could use (see the package documentation).
	lim.CPUs, lim.Mems = c.Cpus, c.Mems
	m.from("Limits.CPUs", p+".cpus")
	m.from("Limits.Mems", p+".mems")
	for _, f := range []struct {
		set  bool
		name string
	}{
		{c.Burst != nil && *c.Burst != 0, "burst"},
		{c.Idle != nil && *c.Idle != 0, "idle"},
	} {
		if f.set {
			m.refuse(p+"."+f.name, "the sandbox does not set it")
		}
	}
}

// cpuWeight converts cgroup v1 CPU shares (2 to 262144, 1024 by default)
// to the sandbox's CPU weight (1 to 10000, 100 by default), the inverse of
// the sandbox's own conversion on cgroup v1 (weight × 1024 / 100), rounded
// so that a weight survives the trip to shares and back.
func cpuWeight(shares uint64) uint64 {
	return max(1, uint64(math.Round(float64(shares)*100/1024)))
}

// cpuShares is the sandbox's conversion of a CPU weight to shares.
func cpuShares(weight uint64) uint64 {
	return min(max(weight*1024/100, 2), 262144)
}

// ioWeight converts a cgroup v1 blkio weight (10 to 1000) to the
// sandbox's I/O weight (1 to 10000), as runc and crun do on cgroup v2,
// rounded; blkioWeight is its inverse.
func ioWeight(w uint16) uint64 {
	return 1 + uint64(math.Round(float64(w-10)*9999/990))
}

func blkioWeight(w uint64) uint16 {
	return uint16(10 + math.Round(float64(w-1)*990/9999))
}
