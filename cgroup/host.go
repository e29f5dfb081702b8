//go:build linux

package cgroup

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	cgroups "github.com/containerd/cgroups/v3"
	"github.com/moby/sys/mountinfo"
)

// Mode is the way the host mounts its control groups.
type Mode int

const (
	// Unavailable means that no cgroup file system is mounted at
	// /sys/fs/cgroup: Create fails and limits cannot be applied.
	Unavailable Mode = iota
	// Legacy is cgroup v1 only: one hierarchy per controller (or per group
	// of co-mounted controllers) under /sys/fs/cgroup/<controller>.
	Legacy
	// Hybrid is cgroup v1 controllers plus a cgroup2 hierarchy without
	// controllers at /sys/fs/cgroup/unified. The package treats it as
	// Legacy: every limit lives in the v1 hierarchies.
	Hybrid
	// Unified is cgroup v2 only: one hierarchy at /sys/fs/cgroup.
	Unified
)

// String returns the mode's name as the kernel documentation spells it.
func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy (cgroup v1)"
	case Hybrid:
		return "hybrid (cgroup v1 controllers)"
	case Unified:
		return "unified (cgroup v2)"
	}
	return "unavailable"
}

// DetectMode returns the host's cgroup mode. It is detected on the first
// call (one statfs of /sys/fs/cgroup, and of /sys/fs/cgroup/unified when the
// first is not cgroup2) and cached for the life of the process.
func DetectMode() Mode {
	switch cgroups.Mode() {
	case cgroups.Legacy:
		return Legacy
	case cgroups.Hybrid:
		return Hybrid
	case cgroups.Unified:
		return Unified
	}
	return Unavailable
}

// hierarchy is one mounted cgroup hierarchy: a v1 hierarchy with its
// controllers, or the v2 hierarchy.
type hierarchy struct {
	// mount is where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory.
	mount string
	// own is the caller's cgroup in this hierarchy, relative to mount,
	// always starting with "/".
	own string
	// controllers are the v1 controllers mounted together here; nil for v2.
	controllers []string
	// root is the root field of the mount: the cgroup mounted here, "/"
	// unless the hierarchy is mounted from a subdirectory.
	root string
}

// dir returns the directory of the cgroup at rel (relative to the mount).
func (h *hierarchy) dir(rel string) string { return h.mount + rel }

// host is what the package learned about the machine once per process.
type host struct {
	mode Mode
	// v1 maps each v1 controller to its hierarchy (co-mounted controllers
	// share one). Nil in Unified mode.
	v1 map[string]*hierarchy
	// v2 is the cgroup2 hierarchy in Unified mode, else nil.
	v2 *hierarchy
	// cpus and mems are the CPUs and memory nodes that the caller's cpuset
	// allows, as kernel list strings ("0-3,6").
	cpus, mems string
	// swapOn reports whether the host has swap space in use (/proc/swaps).
	swapOn bool
}

// probeHost is the cached probe; tests of pure logic never call it.
var probeHost = sync.OnceValues(func() (*host, error) {
	h := &host{mode: DetectMode()}
	if h.mode == Unavailable {
		return h, nil
	}
	v1Paths, v2Path, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup mounts: %w", err)
	}
	if h.mode == Unified {
		own, err := locateOwn("/sys/fs/cgroup", v2Path, mountRoot(mounts, "/sys/fs/cgroup"))
		if err != nil {
			return nil, err
		}
		h.v2 = &hierarchy{mount: "/sys/fs/cgroup", own: own}
	} else if h.v1, err = v1Hierarchies(mounts, v1Paths); err != nil {
		return nil, err
	}
	h.cpus, h.mems = h.allowedCPUs()
	if b, err := os.ReadFile("/proc/swaps"); err == nil {
		h.swapOn = strings.Count(string(b), "\n") > 1
	}
	return h, nil
})

// mountRoot returns the root field of the mount at mountpoint, "/" when
// unknown.
func mountRoot(mounts []*mountinfo.Info, mountpoint string) string {
	for _, m := range mounts {
		if m.Mountpoint == mountpoint {
			return m.Root
		}
	}
	return "/"
}

// ownPath turns a path from /proc/self/cgroup into a path relative to a
// mount whose root is root. Inside containers a hierarchy is often mounted
// from a subdirectory (root /docker/<id>) while /proc/self/cgroup names the
// full path; inside a cgroup namespace both are already relative.
func ownPath(p, root string) string {
	p = path.Clean("/" + p)
	if root != "/" && root != "" {
		if rel, ok := strings.CutPrefix(p, root); ok && (rel == "" || rel[0] == '/') {
			p = rel
		}
	}
	if p == "/" {
		return ""
	}
	return p
}

// v1Hierarchies maps each mounted v1 controller to its hierarchy.
func v1Hierarchies(mounts []*mountinfo.Info, own map[string]string) (map[string]*hierarchy, error) {
	out := map[string]*hierarchy{}
	for _, m := range mounts {
		if m.FSType != "cgroup" {
			continue
		}
		var ctrls []string
		for _, o := range strings.Split(m.VFSOptions, ",") {
			if knownV1[o] {
				ctrls = append(ctrls, o)
			}
		}
		if len(ctrls) == 0 {
			continue // a named hierarchy such as name=systemd
		}
		if out[ctrls[0]] != nil {
			continue // mounted twice
		}
		ownDir, err := locateOwn(m.Mountpoint, own[ctrls[0]], m.Root)
		if err != nil {
			return nil, err
		}
		h := &hierarchy{mount: m.Mountpoint, own: ownDir, controllers: ctrls, root: m.Root}
		for _, c := range ctrls {
			if _, dup := out[c]; !dup {
				out[c] = h
			}
		}
	}
	return out, nil
}

// v1Distinct returns the v1 hierarchies, each once (co-mounted
// controllers share one), sorted by mount point.
func (h *host) v1Distinct() []*hierarchy {
	var out []*hierarchy
	for _, hier := range h.v1 {
		if !slices.Contains(out, hier) {
			out = append(out, hier)
		}
	}
	slices.SortFunc(out, func(a, b *hierarchy) int { return strings.Compare(a.mount, b.mount) })
	return out
}

// knownV1 lists the v1 controllers this package uses.
var knownV1 = map[string]bool{
	"memory": true, "pids": true, "cpu": true, "cpuacct": true,
	"cpuset": true, "freezer": true, "blkio": true, "devices": true,
}

// allowedCPUs reads the CPUs and memory nodes that the caller's cpuset
// allows, falling back to the online ones.
func (h *host) allowedCPUs() (cpus, mems string) {
	var dirCPUs, dirMems string
	switch {
	case h.v2 != nil:
		d := h.v2.dir(h.v2.own)
		dirCPUs, dirMems = d+"/cpuset.cpus.effective", d+"/cpuset.mems.effective"
	case h.v1["cpuset"] != nil:
		d := h.v1["cpuset"].dir(h.v1["cpuset"].own)
		dirCPUs, dirMems = d+"/cpuset.effective_cpus", d+"/cpuset.effective_mems"
	}
	read := func(paths ...string) string {
		for _, p := range paths {
			if p == "" {
				continue
			}
			if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				return strings.TrimSpace(string(b))
			}
		}
		return ""
	}
	cpus = read(dirCPUs, "/sys/devices/system/cpu/online")
	mems = read(dirMems, "/sys/devices/system/node/online")
	if mems == "" {
		mems = "0" // kernels without NUMA have node 0 only
	}
	return cpus, mems
}

// parentBase returns the level from which Create may change the
// hierarchy for parent: the caller's own cgroup for a relative parent, the
// root for an absolute one.
func parentBase(parent string, h *hierarchy) string {
	if strings.HasPrefix(parent, "/") {
		return ""
	}
	return h.own
}

// parentLevels returns base and every cgroup between it and parent, parent
// included, as paths relative to the mount.
func parentLevels(base, parent string) []string {
	levels := []string{base}
	for c := range strings.SplitSeq(strings.Trim(strings.TrimPrefix(parent, base), "/"), "/") {
		if c != "" {
			levels = append(levels, levels[len(levels)-1]+"/"+c)
		}
	}
	return levels
}

// resolveParent returns the parent path relative to a hierarchy's mount:
// "" means "stockade" below the caller's own cgroup, a relative path is
// below the caller's own cgroup, an absolute one is below the hierarchy's
// root.
func resolveParent(parent string, h *hierarchy) string {
	var p string
	switch {
	case parent == "":
		p = h.own + "/" + DefaultParent
	case parent == ".":
		p = h.own
	case parent[0] == '/':
		p = filepath.Clean(parent)
	default:
		p = h.own + "/" + filepath.Clean(parent)
	}
	if p == "/" {
		return ""
	}
	return p
}

// factsCache holds the facts per Config.Parent. Facts only change when an
// administrator reconfigures cgroups, which a long-running process would
// need to be restarted for anyway.
var factsCache sync.Map // string → facts

// hostFacts returns what validation needs to know about groups under
// parent on this host.
func hostFacts(parent string) (facts, error) {
	if f, ok := factsCache.Load(parent); ok {
		return f.(facts), nil
	}
	h, err := probeHost()
	if err != nil {
		return facts{}, err
	}
	f := h.facts(parent)
	factsCache.Store(parent, f)
	return f, nil
}

// facts returns what validation needs to know about groups under parent.
func (h *host) facts(parent string) facts {
	f := facts{mode: h.mode, cpus: h.cpus, mems: h.mems, swapOn: h.swapOn, controllers: map[string]bool{}}
	switch {
	case h.v2 != nil:
		h.v2Facts(parent, &f)
	case h.v1 != nil:
		h.v1Facts(&f)
	}
	return f
}

func (h *host) v1Facts(f *facts) {
	for c := range h.v1 {
		f.controllers[c] = true
	}
	if m := h.v1["memory"]; m != nil {
		f.swapLimit = exists(m.dir(m.own) + "/memory.memsw.limit_in_bytes")
	}
	if b := h.v1["blkio"]; b != nil {
		// The weight files exist only below the root; the root shows which
		// policy is registered by its statistics files.
		own, root := b.dir(b.own), b.mount
		switch {
		case exists(own+"/blkio.weight") || exists(root+"/blkio.weight"):
			f.ioWeight = "blkio.weight"
		case exists(own+"/blkio.bfq.weight") || exists(root+"/blkio.bfq.io_service_bytes"):
			f.ioWeight = "blkio.bfq.weight"
		}
	}
}

func (h *host) v2Facts(parent string, f *facts) {
	v2 := h.v2
	// A cgroup passes on to its children the controllers it has, when it
	// holds no processes (the "no internal processes" rule) or is the root;
	// otherwise only those it already enables. Create enables them at every
	// level from the base down, so the levels that exist decide.
	base := parentBase(parent, v2)
	var avail []string
	for i, l := range parentLevels(base, resolveParent(parent, v2)) {
		d := v2.dir(l)
		if !exists(d) {
			break // created by Create, without processes
		}
		if i == 0 {
			b, _ := os.ReadFile(d + "/cgroup.controllers")
			avail = strings.Fields(string(b))
		}
		if pids, err := readPids(d + "/cgroup.procs"); l != "" && (err != nil || len(pids) > 0) {
			b, _ := os.ReadFile(d + "/cgroup.subtree_control")
			on := strings.Fields(string(b))
			avail = slices.DeleteFunc(avail, func(c string) bool { return !slices.Contains(on, c) })
			f.controllersNote = fmt.Sprintf("the cgroup %s holds processes, so cgroup v2 lets it pass no more controllers to a new child than it already does; set Config.Parent to a cgroup without processes that is delegated to the caller", d)
		}
	}
	for _, c := range avail {
		f.controllers[c] = true
	}
	own := v2.dir(v2.own)
	// The swap and weight files exist only below the root.
	f.swapLimit = v2.own == "" || exists(own+"/memory.swap.max")
	switch {
	case exists(v2.mount+"/io.cost.qos") || exists(own+"/io.weight"):
		f.ioWeight = "io.weight"
	case exists(own + "/io.bfq.weight"):
		f.ioWeight = "io.bfq.weight"
	}
}
