//go:build linux

package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// v2Group is a group on cgroup v2: one directory, held open so that
// processes can be started inside it.
type v2Group struct {
	dir string
	// dirfd is the open directory, -1 after remove.
	dirfd int
}

// v2Controllers returns the controllers a group with limits l needs
// enabled, among those available. Memory and pids are enabled whenever
// available because Stats reads their peaks and events; cpu, cpuset and io
// only when a limit asks, as they cost the kernel work on every group.
func v2Controllers(l Limits, avail map[string]bool) []string {
	var c []string
	for _, n := range []string{"memory", "pids"} {
		if avail[n] {
			c = append(c, n)
		}
	}
	if l.CPU > 0 || l.CPUWeight > 0 {
		c = append(c, "cpu")
	}
	if l.CPUs != "" || l.Mems != "" {
		c = append(c, "cpuset")
	}
	if l.IOWeight > 0 {
		c = append(c, "io")
	}
	return c
}

func createV2(v2 *hierarchy, f facts, cfg Config, name string) (_ groupImpl, err error) {
	parent := resolveParent(cfg.Parent, v2)
	if err := prepareParentV2(v2, parentBase(cfg.Parent, v2), parent, v2Controllers(cfg.Limits, f.controllers)); err != nil {
		return nil, err
	}
	g := &v2Group{dir: v2.dir(parent) + "/" + name, dirfd: -1}
	created, err := mkdir(g.dir)
	if err == nil && !created {
		err = &os.PathError{Op: "mkdir", Path: g.dir, Err: unix.EEXIST}
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if g.dirfd >= 0 {
				unix.Close(g.dirfd)
			}
			unix.Rmdir(g.dir)
		}
	}()
	if g.dirfd, err = open(g.dir, unix.O_RDONLY|unix.O_DIRECTORY); err != nil {
		return nil, err
	}
	if err := limitV2(g.dir, f, cfg.Limits); err != nil {
		return nil, err
	}
	return g, nil
}

// v2Parents caches the parents already prepared, keyed by directory and
// controllers.
var v2Parents sync.Map // string → struct{}

// prepareParentV2 creates the parent (relative to the mount) and its
// missing ancestors below base, enabling ctrls in cgroup.subtree_control of
// base and of every level down to the parent, so that the group gets them.
// Levels above base belong to whoever delegated base and are not changed.
func prepareParentV2(v2 *hierarchy, base, parent string, ctrls []string) error {
	key := parent + "\x00" + strings.Join(ctrls, " ")
	if _, ok := v2Parents.Load(key); ok && exists(v2.dir(parent)) {
		return nil
	}
	for i, l := range parentLevels(base, parent) {
		if i > 0 {
			if _, err := mkdir(v2.dir(l)); err != nil {
				return err
			}
		}
		if err := enableV2(v2.dir(l), ctrls); err != nil {
			return err
		}
	}
	v2Parents.Store(key, struct{}{})
	return nil
}

// enableV2 enables ctrls in dir's cgroup.subtree_control where dir has
// them and they are not enabled yet.
func enableV2(dir string, ctrls []string) error {
	have, err := readFile(dir + "/cgroup.controllers")
	if err != nil {
		return err
	}
	on, err := readFile(dir + "/cgroup.subtree_control")
	if err != nil {
		return err
	}
	var add []string
	for _, c := range ctrls {
		if slices.Contains(strings.Fields(string(have)), c) && !slices.Contains(strings.Fields(string(on)), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	err = writeFile(dir+"/cgroup.subtree_control", strings.Join(add, " "))
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w (the cgroup holds processes, and cgroup v2 lets only a cgroup without processes pass controllers to its children: set Config.Parent to a cgroup without processes delegated to the caller)", err)
	}
	return err
}

// limitV2 applies l to the group directory dir.
func limitV2(dir string, f facts, l Limits) error {
	if l.Memory > 0 {
		if err := writeFile(dir+"/memory.max", strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
		if l.Swap != SwapUnlimited {
			err := writeFile(dir+"/memory.swap.max", strconv.FormatInt(l.Swap, 10))
			if errors.Is(err, unix.ENOENT) && f.swapOn {
				return lacks("Limits.Swap", "swap limits", "the kernel cannot limit swap (no memory.swap.max) and the host has swap on; set Limits.Swap to SwapUnlimited to accept that")
			}
			if err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
		}
	}
	if l.Pids > 0 {
		if err := writeFile(dir+"/pids.max", strconv.FormatInt(l.Pids, 10)); err != nil {
			return err
		}
	}
	if l.CPU > 0 {
		quota, period := cfsQuota(l)
		if err := writeFile(dir+"/cpu.max", fmt.Sprintf("%d %d", quota, period)); err != nil {
			return err
		}
	}
	if l.CPUWeight > 0 {
		if err := writeFile(dir+"/cpu.weight", strconv.FormatUint(l.CPUWeight, 10)); err != nil {
			return err
		}
	}
	if l.CPUs != "" {
		if err := writeFile(dir+"/cpuset.cpus", l.CPUs); err != nil {
			return err
		}
	}
	if l.Mems != "" {
		if err := writeFile(dir+"/cpuset.mems", l.Mems); err != nil {
			return err
		}
	}
	if l.IOWeight > 0 {
		v := "default " + strconv.FormatUint(l.IOWeight, 10)
		if f.ioWeight != "io.weight" {
			v = strconv.FormatUint(blkioWeight(l.IOWeight), 10)
		}
		if err := writeFile(dir+"/"+f.ioWeight, v); err != nil {
			return err
		}
	}
	return nil
}

func (g *v2Group) fd() (int, bool) { return g.dirfd, g.dirfd >= 0 }

func (g *v2Group) addProc(pid int) error {
	return writeFile(g.dir+"/cgroup.procs", strconv.Itoa(pid))
}

func (g *v2Group) procs() ([]int, error) {
	pids, err := treeProcs(g.dir)
	slices.Sort(pids)
	return pids, err
}

func (g *v2Group) stats(st *Stats) (peaks, error) {
	var have peaks
	var user, sys, usage uint64
	if err := readKeys(g.dir+"/cpu.stat", map[string]*uint64{"user_usec": &user, "system_usec": &sys, "usage_usec": &usage}); err != nil {
		return have, err
	}
	// user_usec and system_usec are rounded separately; make them add up
	// to usage_usec, which is what CPUTime returns.
	st.CPUUser, st.CPUSystem = splitExact(durationNS(usage*1000), durationNS(user*1000), durationNS(sys*1000))
	// The memory and pids files exist only when the parent enabled those
	// controllers.
	if v, err := readUint(g.dir + "/memory.peak"); err == nil {
		st.MemoryPeak, have.memory = v, true
	} else if v, err := readUint(g.dir + "/memory.current"); err == nil {
		st.MemoryPeak = v
	}
	err := readKeys(g.dir+"/memory.events", map[string]*uint64{"oom_kill": &st.OOMKills})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return have, err
	}
	if v, err := readUint(g.dir + "/pids.current"); err == nil {
		st.Pids = v
	}
	if v, err := readUint(g.dir + "/pids.peak"); err == nil {
		st.PidsPeak, have.pids = v, true
	}
	err = readKeys(g.dir+"/pids.events", map[string]*uint64{"max": &st.ForksRefused})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return have, err
	}
	return have, nil
}

// kill writes cgroup.kill (Linux 5.14), which kills every process in the
// group and below it without racing forks, and waits until the group is
// empty. On older kernels it freezes the group (cgroup.freeze, Linux 5.2),
// kills every process, thaws the group and kills in rounds until empty.
func (g *v2Group) kill(ctx context.Context, name string) error {
	if useCgroupKill {
		err := writeFile(g.dir+"/cgroup.kill", "1")
		if err == nil {
			return waitEmptyV2(ctx, g.dir)
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	if !exists(g.dir) {
		return nil // removed behind our back: nothing left to kill
	}
	if !useFreezer {
		return killLoop(ctx, name, g.dir)
	}
	if err := writeFile(g.dir+"/cgroup.freeze", "1"); err == nil {
		waitFrozenV2(ctx, g.dir)
		pids, err := treeProcs(g.dir)
		if err == nil {
			err = killMembers(pids, name)
		}
		if terr := writeFile(g.dir+"/cgroup.freeze", "0"); terr != nil && err == nil {
			err = terr
		}
		if err != nil {
			return err
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return err
	}
	return killLoop(ctx, name, g.dir)
}

func (g *v2Group) thaw() error { return writeFile(g.dir+"/cgroup.freeze", "0") }

// waitEmptyV2 waits until cgroup.events says that no process is left in
// the group or below it.
func waitEmptyV2(ctx context.Context, dir string) error {
	var b backoff
	for {
		var populated uint64
		if err := readKeys(dir+"/cgroup.events", map[string]*uint64{"populated": &populated}); err != nil {
			return err
		}
		if populated == 0 {
			return nil
		}
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
}

// waitFrozenV2 waits until cgroup.events says the group is frozen or ctx
// is done; the kill rounds that follow do not depend on it.
func waitFrozenV2(ctx context.Context, dir string) {
	var b backoff
	for {
		var frozen uint64
		err := readKeys(dir+"/cgroup.events", map[string]*uint64{"frozen": &frozen})
		if err != nil || frozen == 1 || b.wait(ctx) != nil {
			return
		}
	}
}

func (g *v2Group) remove(ctx context.Context) error {
	if err := removeTree(ctx, g.dir); err != nil {
		return err
	}
	if g.dirfd >= 0 {
		unix.Close(g.dirfd)
		g.dirfd = -1
	}
	return nil
}

// openV2 returns the existing group called name under parent.
func openV2(v2 *hierarchy, parent, name string) *v2Group {
	return openV2At(v2.dir(resolveParent(parent, v2)) + "/" + name)
}

// openV2At returns the existing group at the absolute directory dir, so
// that it can be killed and removed; Cleanup uses it for groups it found
// anywhere in the hierarchy.
func openV2At(dir string) *v2Group {
	return &v2Group{dir: dir, dirfd: -1}
}
