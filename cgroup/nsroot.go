//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// A process in a cgroup namespace sees the paths of /proc/self/cgroup, and
// the roots of cgroup mounts in mountinfo, relative to its namespace's
// root. A hierarchy mounted inside the namespace has the root "/", and the
// caller's own cgroup is found by its path. But when a container shares
// the host's hierarchy (a bind mount of /sys/fs/cgroup) and has a cgroup
// namespace of its own, the mount's root lies above the namespace's root
// and shows as "/../..": the names of the levels in between are hidden.
// Taking the mount's top as the caller's cgroup would then create groups
// at the host's root, outside the container's limits, so the hierarchy is
// searched for the cgroup that holds the caller instead, and an error
// stops everything when there is none.

// ErrOwnCgroupNotFound is returned when the caller's cgroup cannot be
// located in a hierarchy mounted from above its cgroup namespace.
var ErrOwnCgroupNotFound = errors.New("the caller's cgroup is not in the hierarchy")

// locateOwn returns the caller's cgroup in the hierarchy mounted at
// mountpoint, relative to it ("" for its top). p is the caller's path in
// /proc/self/cgroup and root the mount's root in mountinfo.
func locateOwn(mountpoint, p, root string) (string, error) {
	if !aboveNS(root) && !aboveNS(p) {
		return ownPath(p, root), nil
	}
	own, err := searchOwn(mountpoint, p, root, os.Getpid())
	if err != nil {
		return "", fmt.Errorf("locate own cgroup in %s (mounted from %s of the cgroup namespace, own cgroup %s): %w; mount the hierarchy inside the cgroup namespace (mount -t cgroup2 none /sys/fs/cgroup) or give the process a view of its own cgroup",
			mountpoint, root, p, err)
	}
	return own, nil
}

// aboveNS reports whether a namespace-relative path leaves the namespace.
func aboveNS(p string) bool {
	up, _ := splitUp(p)
	return up > 0
}

// splitUp splits a namespace-relative path into the number of levels it
// climbs above the namespace's root and the names it then descends. (Not
// path.Clean: it drops a leading "/.." as if at the file system's root.)
func splitUp(p string) (up int, down []string) {
	for c := range strings.SplitSeq(p, "/") {
		switch {
		case c == "" || c == ".":
		case c == ".." && len(down) > 0:
			down = down[:len(down)-1]
		case c == "..":
			up++
		default:
			down = append(down, c)
		}
	}
	return up, down
}

// searchOwn finds, below mountpoint, the cgroup whose cgroup.procs lists
// pid, at the depth that p and root imply and ending in p's known names.
func searchOwn(mountpoint, p, root string, pid int) (string, error) {
	rootUp, rootDown := splitUp(root)
	ownUp, ownDown := splitUp(p)
	// The mount's top is rootUp levels above the namespace's root (and then
	// down rootDown); the caller's cgroup is ownUp levels above it (and then
	// down ownDown).
	depth := rootUp - len(rootDown) - ownUp + len(ownDown)
	if depth < 0 {
		return "", ErrOwnCgroupNotFound
	}
	level := []string{""}
	for d := 0; d < depth; d++ {
		var next []string
		for _, rel := range level {
			entries, err := os.ReadDir(mountpoint + rel)
			if err != nil {
				continue // removed meanwhile, or not ours to read
			}
			for _, e := range entries {
				if e.IsDir() {
					next = append(next, rel+"/"+e.Name())
				}
			}
		}
		level = next
	}
	for _, rel := range level {
		names := strings.Split(strings.Trim(rel, "/"), "/")
		if len(ownDown) > 0 && (len(names) < len(ownDown) || !slices.Equal(names[len(names)-len(ownDown):], ownDown)) {
			continue
		}
		pids, err := readPids(mountpoint + rel + "/cgroup.procs")
		if err != nil {
			continue
		}
		if slices.Contains(pids, pid) {
			return rel, nil
		}
	}
	return "", ErrOwnCgroupNotFound
}
