//go:build linux

package cgroup

import (
	"fmt"
	"time"
)

// CPUTime returns the CPU time, user and system together, that every
// process that ran in the group has used so far. It reads one file
// (cpuacct.usage on v1, cpu.stat on v2), so it is cheap enough for a
// watchdog that polls it; Stats reads everything. Without a cpuacct
// hierarchy on v1 it returns zero.
func (g *Group) CPUTime() (time.Duration, error) {
	var ns uint64
	var err error
	switch impl := g.impl.(type) {
	case *v1Group:
		if impl.cpuacct == "" {
			return 0, nil
		}
		ns, err = readUint(impl.cpuacct + "/cpuacct.usage")
	case *v2Group:
		var usec uint64
		err = readKeys(impl.dir+"/cpu.stat", map[string]*uint64{"usage_usec": &usec})
		ns = usec * 1000
	}
	if err != nil {
		return 0, fmt.Errorf("read CPU time of cgroup %s: %w", g.name, err)
	}
	return durationNS(ns), nil
}

// empty reports whether the group and the groups below it certainly hold
// no task, from one read: populated in cgroup.events on v2, pids.current
// (which counts the tasks below too) on v1. It reports false when it
// cannot tell, so that Kill does the whole job.
func (g *Group) empty() bool {
	switch impl := g.impl.(type) {
	case *v1Group:
		if impl.pids == "" {
			return false
		}
		n, err := readUint(impl.pids + "/pids.current")
		return err == nil && n == 0
	case *v2Group:
		var populated uint64 = 1
		err := readKeys(impl.dir+"/cgroup.events", map[string]*uint64{"populated": &populated})
		return err == nil && populated == 0
	}
	return false
}
