//go:build linux

package cgroup

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// v1Group is a group on cgroup v1: one directory per hierarchy it uses.
type v1Group struct {
	// dirs are the group's directories, one per hierarchy, in the order
	// they were created.
	dirs []string
	// hiers are the hierarchies of dirs, in the same order; nil for a
	// group that Cleanup opened.
	hiers []*hierarchy
	// memory, pids, cpuacct and freezer are the directories of those
	// controllers, "" when the group does not use them. Co-mounted
	// controllers share a directory.
	memory, pids, cpuacct, freezer string
}

// v1Controllers returns the controllers a group with limits l joins. The
// group always joins memory, pids and cpuacct (when mounted) for its
// statistics and freezer for Kill; cpu, cpuset and blkio only when a limit
// needs them, as each hierarchy costs a mkdir, a write per process placed
// and an rmdir.
func v1Controllers(l Limits) []string {
	c := []string{"memory", "pids", "cpuacct", "freezer"}
	if l.CPU > 0 || l.CPUWeight > 0 {
		c = append(c, "cpu")
	}
	if l.CPUs != "" || l.Mems != "" {
		c = append(c, "cpuset")
	}
	if l.IOWeight > 0 {
		c = append(c, "blkio")
	}
	if len(l.Devices) > 0 {
		c = append(c, "devices")
	}
	return c
}

func createV1(h *host, f facts, cfg Config, name string) (_ groupImpl, err error) {
	g := &v1Group{}
	defer func() {
		if err != nil {
			g.rollback()
		}
	}()
	byMount := map[string]string{} // hierarchy mount → the group's directory
	for _, c := range v1Controllers(cfg.Limits) {
		hier := h.v1[c]
		if hier == nil {
			continue // validated: no limit needs it
		}
		if statsOnly(c, cfg.Limits) && !canWrite(existing(hier.dir(resolveParent(cfg.Parent, hier)), hier.mount)) {
			continue // not delegated to an ordinary user
		}
		dir, ok := byMount[hier.mount]
		if !ok {
			parent := hier.dir(resolveParent(cfg.Parent, hier))
			if dir, err = mkGroupV1(parent, name, hier); err != nil {
				return nil, err
			}
			byMount[hier.mount] = dir
			g.dirs = append(g.dirs, dir)
			g.hiers = append(g.hiers, hier)
		}
		switch c {
		case "memory":
			g.memory = dir
		case "pids":
			g.pids = dir
		case "cpuacct":
			g.cpuacct = dir
		case "freezer":
			g.freezer = dir
		}
		if err := limitV1(c, dir, f, cfg.Limits); err != nil {
			return nil, err
		}
	}
	if len(g.dirs) == 0 {
		return nil, errNotDelegated
	}
	return g, nil
}

// v1Parents caches the parent directories known to exist and to be set up.
var v1Parents sync.Map // string → struct{}

// mkGroupV1 creates the group's directory under parent, creating parent
// first when it is missing.
func mkGroupV1(parent, name string, hier *hierarchy) (string, error) {
	dir := parent + "/" + name
	for attempt := 0; ; attempt++ {
		if _, ok := v1Parents.Load(parent); !ok {
			if err := mkParentV1(parent, hier); err != nil {
				return "", err
			}
			v1Parents.Store(parent, struct{}{})
		}
		created, err := mkdir(dir)
		if err == nil && !created {
			err = &os.PathError{Op: "mkdir", Path: dir, Err: unix.EEXIST}
		}
		if errors.Is(err, unix.ENOENT) && attempt == 0 {
			v1Parents.Delete(parent) // someone removed the parent
			continue
		}
		return dir, err
	}
}

// mkParentV1 creates parent and its missing ancestors. In the cpuset
// hierarchy a new cgroup starts with no CPUs and no memory nodes and
// refuses processes, so each new level gets its parent's.
func mkParentV1(parent string, hier *hierarchy) error {
	rel := strings.TrimPrefix(parent, hier.mount)
	cur := hier.mount
	for c := range strings.SplitSeq(strings.Trim(rel, "/"), "/") {
		if c == "" {
			continue
		}
		up := cur
		cur += "/" + c
		created, err := mkdir(cur)
		if err != nil {
			return err
		}
		if created && slices.Contains(hier.controllers, "cpuset") {
			if err := copyCpuset(up, cur); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyCpuset(from, to string) error {
	for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
		b, err := readFile(from + "/" + file)
		if err != nil {
			return err
		}
		if err := writeFile(to+"/"+file, strings.TrimSpace(string(b))); err != nil {
			return err
		}
	}
	return nil
}

// limitV1 applies the limits of controller c to the group directory dir.
func limitV1(c, dir string, f facts, l Limits) error {
	switch c {
	case "memory":
		if l.Memory == 0 {
			return nil
		}
		if err := writeFile(dir+"/memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
		// memory.memsw limits memory plus swap, so it must not be below
		// memory.limit_in_bytes, which is why it is written second.
		if l.Swap == SwapUnlimited || !f.swapLimit {
			return nil // validated: no swap accounting only when swap is off
		}
		return writeFile(dir+"/memory.memsw.limit_in_bytes", strconv.FormatInt(l.Memory+l.Swap, 10))
	case "pids":
		if l.Pids == 0 {
			return nil
		}
		return writeFile(dir+"/pids.max", strconv.FormatInt(l.Pids, 10))
	case "cpu":
		if l.CPU > 0 {
			// A new group's period is the kernel's default of 100 ms; the
			// period goes first, while the quota is still unlimited, so
			// that the kernel checks the quota against its own period.
			quota, period := cfsQuota(l)
			if period != cpuPeriod {
				if err := writeFile(dir+"/cpu.cfs_period_us", strconv.FormatInt(period, 10)); err != nil {
					return err
				}
			}
			if err := writeFile(dir+"/cpu.cfs_quota_us", strconv.FormatInt(quota, 10)); err != nil {
				return err
			}
		}
		if l.CPUWeight > 0 {
			return writeFile(dir+"/cpu.shares", strconv.FormatUint(cpuShares(l.CPUWeight), 10))
		}
	case "cpuset":
		// A new cpuset group has no CPUs and no memory nodes: set both.
		parent := dir[:strings.LastIndexByte(dir, '/')]
		for _, kv := range [][2]string{{"cpuset.cpus", l.CPUs}, {"cpuset.mems", l.Mems}} {
			v := kv[1]
			if v == "" {
				b, err := readFile(parent + "/" + kv[0])
				if err != nil {
					return err
				}
				v = strings.TrimSpace(string(b))
			}
			if err := writeFile(dir+"/"+kv[0], v); err != nil {
				return err
			}
		}
	case "blkio":
		if l.IOWeight > 0 {
			return writeFile(dir+"/"+f.ioWeight, strconv.FormatUint(blkioWeight(l.IOWeight), 10))
		}
	case "devices":
		// The rules go in one by one, in order: each changes what the
		// kernel's list holds, so the order is part of their meaning.
		for _, w := range deviceWrites(l.Devices) {
			if err := writeFile(dir+"/"+w[0], w[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// openV1 returns the group called name under parent in every hierarchy
// where it exists.
func openV1(h *host, parent, name string) *v1Group {
	var found []v1Dir
	for _, hier := range h.v1Distinct() {
		dir := hier.dir(resolveParent(parent, hier)) + "/" + name
		if exists(dir) {
			found = append(found, v1Dir{hier, dir})
		}
	}
	return openV1At(found)
}

// v1Dir is one directory of a v1 group: its hierarchy and its absolute
// path.
type v1Dir struct {
	hier *hierarchy
	dir  string
}

// openV1At returns the existing group made of the directories found, each
// given by its absolute path, so that it can be killed and removed; Cleanup
// uses it for groups it found anywhere in the hierarchies. The directories
// need not have the same path relative to their mounts. A controller's
// directory is the first found in its hierarchy.
func openV1At(found []v1Dir) *v1Group {
	g := &v1Group{}
	for _, f := range found {
		g.dirs = append(g.dirs, f.dir)
		for _, c := range f.hier.controllers {
			var p *string
			switch c {
			case "memory":
				p = &g.memory
			case "pids":
				p = &g.pids
			case "cpuacct":
				p = &g.cpuacct
			case "freezer":
				p = &g.freezer
			}
			if p != nil && *p == "" {
				*p = f.dir
			}
		}
	}
	return g
}

func (g *v1Group) rollback() {
	for _, d := range slices.Backward(g.dirs) {
		unix.Rmdir(d)
	}
}

func (g *v1Group) fd() (int, bool) { return -1, false }

func (g *v1Group) addProc(pid int) error {
	s := strconv.Itoa(pid)
	for _, d := range g.dirs {
		if err := writeFile(d+"/cgroup.procs", s); err != nil {
			return err
		}
	}
	return nil
}

func (g *v1Group) procs() ([]int, error) {
	var all []int
	for _, d := range g.dirs {
		pids, err := treeProcs(d)
		if err != nil {
			return nil, err
		}
		all = append(all, pids...)
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

func (g *v1Group) stats(st *Stats) (peaks, error) {
	have := peaks{memory: true}
	if d := g.cpuacct; d != "" {
		user, uerr := readUint(d + "/cpuacct.usage_user")
		sys, serr := readUint(d + "/cpuacct.usage_sys")
		if uerr == nil && serr == nil {
			st.CPUUser, st.CPUSystem = durationNS(user), durationNS(sys)
		} else {
			// Before Linux 4.7: only cpuacct.stat, in USER_HZ (100 Hz) ticks.
			var u, s uint64
			if err := readKeys(d+"/cpuacct.stat", map[string]*uint64{"user": &u, "system": &s}); err != nil {
				return have, err
			}
			st.CPUUser, st.CPUSystem = durationNS(u*1e7), durationNS(s*1e7)
		}
		// The split counts whole scheduler ticks (4 ms at HZ=250);
		// cpuacct.usage is exact. Share the exact total out in the ticks'
		// proportion, so that the two add up to what a CPU time limit
		// measures.
		if total, err := readUint(d + "/cpuacct.usage"); err == nil {
			st.CPUUser, st.CPUSystem = splitExact(durationNS(total), st.CPUUser, st.CPUSystem)
		}
	}
	if d := g.memory; d != "" {
		v, err := readUint(d + "/memory.max_usage_in_bytes")
		if err != nil {
			return have, err
		}
		st.MemoryPeak = v
		if err := readKeys(d+"/memory.oom_control", map[string]*uint64{"oom_kill": &st.OOMKills}); err != nil {
			return have, err
		}
	}
	if d := g.pids; d != "" {
		v, err := readUint(d + "/pids.current")
		if err != nil {
			return have, err
		}
		st.Pids = v
		if v, err := readUint(d + "/pids.peak"); err == nil {
			st.PidsPeak, have.pids = v, true
		}
		if err := readKeys(d+"/pids.events", map[string]*uint64{"max": &st.ForksRefused}); err != nil {
			return have, err
		}
	}
	return have, nil
}

// splitExact shares total out between user and system time in the
// proportion of the estimates user and sys; with no estimate it counts all
// of it as user time.
func splitExact(total, user, sys time.Duration) (time.Duration, time.Duration) {
	if user+sys <= 0 {
		return total, 0
	}
	u := time.Duration(float64(total) * (float64(user) / float64(user+sys)))
	return u, total - u
}

// kill freezes the group so that no process can fork, kills every
// process, thaws it and waits until it is empty. Without a freezer
// hierarchy it kills in rounds until the group is empty.
func (g *v1Group) kill(ctx context.Context, name string) error {
	if useFreezer && g.freezer != "" && exists(g.freezer) {
		frozen, err := freezeV1(ctx, g.freezer)
		if err != nil {
			return err
		}
		pids, err := treeProcs(g.freezer)
		if err == nil {
			err = killMembers(pids, name)
		}
		// Thaw even when frozen is false: a half-frozen group must not stay
		// so, and killed tasks die only once thawed.
		if terr := writeFile(g.freezer+"/freezer.state", "THAWED"); terr != nil && err == nil {
			err = terr
		}
		if err != nil {
			return err
		}
		_ = frozen // when freezing timed out, the loop below finishes the job
	}
	return killLoop(ctx, name, g.dirs...)
}

func (g *v1Group) thaw() error {
	if g.freezer == "" {
		return nil
	}
	return writeFile(g.freezer+"/freezer.state", "THAWED")
}

// freezeV1 freezes the freezer group dir and waits until the kernel
// reports it FROZEN. It reports false if ctx ended first; the kernel may
// stay FREEZING while a task sleeps uninterruptibly, so callers must not
// depend on it.
func freezeV1(ctx context.Context, dir string) (bool, error) {
	var b backoff
	for {
		if err := writeFile(dir+"/freezer.state", "FROZEN"); err != nil {
			return false, err
		}
		s, err := readFile(dir + "/freezer.state")
		if err != nil {
			return false, err
		}
		if strings.TrimSpace(string(s)) == "FROZEN" {
			return true, nil
		}
		if b.wait(ctx) != nil {
			return false, nil
		}
	}
}

func (g *v1Group) remove(ctx context.Context) error {
	var errs []error
	for _, d := range slices.Backward(g.dirs) {
		if err := removeTree(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
