//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	cgroups "github.com/containerd/cgroups/v3"
)

// EnterThread moves the calling thread, and only it, into the group on
// cgroup v1, so that a process it forks starts inside the group, and
// returns a function that moves the thread back where it was. It is v1's
// counterpart of FD: on v2, where threads of one process cannot be in
// different cgroups, it returns an error matching ErrNotSupported.
//
// The caller must be locked to its thread (runtime.LockOSThread) until it
// has called leave, and should end the thread if leave fails: the thread
// then still counts against the group, and the group cannot be removed
// while it is there.
//
// Why not AddProc after the fork: moving another process takes the
// kernel's global cgroup_threadgroup_rwsem for writing, which waits for an
// RCU grace period unless such moves come back to back. Measured here,
// moving a sandbox's freshly forked init by pid took 0.1 ms at the median
// but 7 ms at the 90th percentile and up to 18 ms. A thread moving itself
// (pid 0 written to the tasks file) skips that lock: no such tail.
func (g *Group) EnterThread() (leave func() error, err error) {
	v1, ok := g.impl.(*v1Group)
	if !ok {
		return nil, fmt.Errorf("cgroup %s: move the calling thread: %w (start the process with FD instead)", g.name, ErrNotSupported)
	}
	if len(v1.hiers) != len(v1.dirs) {
		return nil, fmt.Errorf("cgroup %s: move the calling thread: the group was not created by this process", g.name)
	}
	paths, _, err := cgroups.ParseCgroupFileUnified("/proc/thread-self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: read the calling thread's cgroups: %w", g.name, err)
	}
	back := make([]string, len(v1.dirs))
	for i, h := range v1.hiers {
		p, ok := paths[h.controllers[0]]
		if !ok {
			return nil, fmt.Errorf("cgroup %s: the calling thread has no cgroup in the %s hierarchy", g.name, h.controllers[0])
		}
		back[i] = h.dir(ownPath(p, h.root))
	}
	moveBack := func(n int) error {
		var errs []error
		for i := range n {
			if err := writeFile(back[i]+"/tasks", "0"); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("cgroup %s: move the calling thread back: %w", g.name, err)
		}
		return nil
	}
	for i, d := range v1.dirs {
		if err := writeFile(d+"/tasks", "0"); err != nil {
			if berr := moveBack(i); berr != nil {
				err = errors.Join(err, berr)
			}
			return nil, fmt.Errorf("cgroup %s: move the calling thread in: %w", g.name, err)
		}
	}
	return func() error { return moveBack(len(back)) }, nil
}

// OpenTasks opens the tasks file of each of the group's hierarchies on
// cgroup v1, for writing and close-on-exec: a process that writes "0" to
// each moves itself into the group, as EnterThread moves the calling
// thread, but without a thread of the caller ever being inside the group
// (where a freeze from outside would hold it, and a kill of the group's
// processes would take the caller with it). On v2 it returns an error
// matching ErrNotSupported: use FD.
func (g *Group) OpenTasks() ([]*os.File, error) {
	v1, ok := g.impl.(*v1Group)
	if !ok {
		return nil, fmt.Errorf("cgroup %s: tasks files: %w (start the process with FD instead)", g.name, ErrNotSupported)
	}
	var files []*os.File
	for _, d := range v1.dirs {
		f, err := os.OpenFile(d+"/tasks", os.O_WRONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("cgroup %s: %w", g.name, err)
		}
		files = append(files, f)
	}
	return files, nil
}
