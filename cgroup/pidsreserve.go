//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A sandbox's tasks count against every pids.max above its group, the
// caller's own cgroup's included (by default the groups go below it).
// Without more, sandboxes that fork up to such a limit leave the caller no
// task to start a thread with, and a Go program aborts when it cannot.
// PidsBound and ReservePids keep a share of the nearest limit for the
// caller.

// PidsBound returns the nearest pids.max above the groups that go under
// parent (a Config.Parent: "" is the default), or 0 when no pids.max
// bounds them or the host has no pids controller.
func PidsBound(parent string) (int64, error) {
	hier, err := pidsHierarchy()
	if hier == nil || err != nil {
		return 0, err
	}
	bound, _ := pidsBound(hier, hier.dir(resolveParent(parent, hier)))
	return bound, nil
}

// ReservePids caps the tasks of all the groups under parent together, so
// that reserve tasks of the nearest pids.max above them stay for the
// caller: the parent directory's pids.max becomes that limit less reserve
// (at least half the limit), unless it is lower already. It returns the
// cap in force, or 0 when nothing bounds the parent. The parent must exist
// (Create makes it) and have the pids controller (on cgroup v2, enabled
// in its parent's cgroup.subtree_control); where it has not, ReservePids
// returns 0 and does nothing.
func ReservePids(parent string, reserve int64) (int64, error) {
	hier, err := pidsHierarchy()
	if hier == nil || err != nil {
		return 0, err
	}
	dir := hier.dir(resolveParent(parent, hier))
	bound, err := pidsBound(hier, dir)
	if bound == 0 || err != nil {
		return 0, err
	}
	limit := max(bound-reserve, bound/2, 1)
	file := filepath.Join(dir, "pids.max")
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reserve tasks for the caller: %w", err)
	}
	if cur := strings.TrimSpace(string(b)); cur != "max" {
		if n, err := strconv.ParseInt(cur, 10, 64); err == nil && n <= limit {
			return n, nil
		}
	}
	if err := os.WriteFile(file, []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		return 0, fmt.Errorf("reserve tasks for the caller: %w", err)
	}
	return limit, nil
}

// pidsHierarchy returns the hierarchy with the pids controller, or nil.
func pidsHierarchy() (*hierarchy, error) {
	h, err := probeHost()
	if err != nil {
		return nil, err
	}
	if h.v2 != nil {
		return h.v2, nil
	}
	return h.v1["pids"], nil
}

// pidsBound returns the lowest pids.max of the ancestors of dir within
// hier (the root has none), or 0 when none is set.
func pidsBound(hier *hierarchy, dir string) (int64, error) {
	var bound int64
	for d := filepath.Dir(dir); len(d) > len(hier.mount) && strings.HasPrefix(d, hier.mount+"/"); d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "pids.max"))
		if err != nil {
			continue // not there yet, or no pids controller at this level
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s/pids.max: %q", d, s)
		}
		if bound == 0 || n < bound {
			bound = n
		}
	}
	return bound, nil
}
