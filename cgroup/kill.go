//go:build linux

package cgroup

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The helpers in this file are shared by the v1 and v2 sides: walking a
// group's cgroup tree, killing its processes one by one, waiting and
// removing directories.

// useCgroupKill and useFreezer let the tests run the fallbacks of Kill on
// kernels that have the newer mechanism.
var (
	// useCgroupKill allows cgroup.kill (v2).
	useCgroupKill = true
	// useFreezer allows the v1 freezer and cgroup.freeze (v2).
	useFreezer = true
)

// tree returns dir and every cgroup directory below it, deepest first, so
// that removing them in order never meets a directory with children.
func tree(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			sub, err := tree(dir + "/" + e.Name())
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return append(out, dir), nil
}

// treeProcs returns the processes in dir and in the cgroups below it. A
// directory that vanished counts as empty.
func treeProcs(dir string) ([]int, error) {
	dirs, err := tree(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var all []int
	for _, d := range dirs {
		pids, err := readPids(d + "/cgroup.procs")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		all = append(all, pids...)
	}
	return all, nil
}

// killMembers sends SIGKILL to each of pids that is still in the group
// called name. A pid read from cgroup.procs may belong to a new, unrelated
// process by the time the signal is sent if the old one exited and the pid
// was reused; so each process is pinned with a pidfd first, then its
// membership is checked through /proc, and the signal goes to the pidfd.
func killMembers(pids []int, name string) error {
	for _, pid := range pids {
		if err := killMember(pid, name); err != nil {
			return err
		}
	}
	return nil
}

func killMember(pid int, name string) error {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return nil
	}
	if err == unix.ENOSYS {
		// Before Linux 5.3: no pidfds. The group is frozen (or the kernel
		// is old), so a plain kill is the best there is.
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
			return &os.SyscallError{Syscall: "kill " + strconv.Itoa(pid), Err: err}
		}
		return nil
	}
	if err != nil {
		return &os.SyscallError{Syscall: "pidfd_open " + strconv.Itoa(pid), Err: err}
	}
	defer unix.Close(pidfd)
	b, err := readFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil || !inGroup(string(b), name) {
		return nil // gone, or another process now has this pid
	}
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return &os.SyscallError{Syscall: "pidfd_send_signal " + strconv.Itoa(pid), Err: err}
	}
	return nil
}

// inGroup reports whether a /proc/<pid>/cgroup text places the process in
// the group called name or below it, in any hierarchy.
func inGroup(procCgroup, name string) bool {
	for line := range strings.Lines(procCgroup) {
		line = strings.TrimSpace(line)
		_, p, _ := strings.Cut(line, ":")
		_, p, _ = strings.Cut(p, ":")
		if strings.HasSuffix(p, "/"+name) || strings.Contains(p, "/"+name+"/") {
			return true
		}
	}
	return false
}

// backoff sleeps a little longer on each call, from 50 µs up to 10 ms, and
// returns ctx's error when ctx is done.
type backoff struct{ d time.Duration }

func (b *backoff) wait(ctx context.Context) error {
	if b.d == 0 {
		b.d = 50 * time.Microsecond
	}
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	b.d = min(2*b.d, 10*time.Millisecond)
	return nil
}

// killLoop kills the processes of the group rooted at dirs until none is
// left. Without a freezer a process may fork between the read of
// cgroup.procs and the kill; the next round gets the child, and as every
// round kills all that it saw the group empties in a few rounds.
func killLoop(ctx context.Context, name string, dirs ...string) error {
	var b backoff
	for {
		var pids []int
		for _, d := range dirs {
			p, err := treeProcs(d)
			if err != nil {
				return err
			}
			pids = append(pids, p...)
		}
		if len(pids) == 0 {
			return nil
		}
		slices.Sort(pids) // a v1 process is listed once per hierarchy
		if err := killMembers(slices.Compact(pids), name); err != nil {
			return err
		}
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
}

// removeTree removes dir and every cgroup below it, retrying while the
// kernel reports them busy (a process that was just killed is still being
// torn down) until ctx is done. A directory that is already gone counts as
// removed.
func removeTree(ctx context.Context, dir string) error {
	var b backoff
	for {
		err := unix.Rmdir(dir)
		if err == unix.EINTR {
			continue
		}
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY && err != unix.ENOTEMPTY {
			return &os.PathError{Op: "rmdir", Path: dir, Err: err}
		}
		// EBUSY is a child cgroup or a process still in the group.
		dirs, terr := tree(dir)
		if terr == nil {
			for _, d := range dirs[:len(dirs)-1] {
				if err := unix.Rmdir(d); err != nil && err != unix.ENOENT && err != unix.EBUSY {
					return &os.PathError{Op: "rmdir", Path: d, Err: err}
				}
			}
		}
		if werr := b.wait(ctx); werr != nil {
			if pids, _ := treeProcs(dir); len(pids) > 0 {
				return &os.PathError{Op: "rmdir", Path: dir, Err: errBusy}
			}
			return &os.PathError{Op: "rmdir", Path: dir, Err: err}
		}
	}
}
