package cgroup

import (
	"strconv"
	"strings"
)

// Group names encode their owner so that Cleanup can tell, after the owner
// died, that nobody will remove the group:
//
//	sb-<owner pid>-<owner start time>-<owner pid namespace inode>-<sequence>
//
// The start time (clock ticks after boot, field 22 of /proc/<pid>/stat)
// tells a live owner from a new process that reuses its pid; the pid
// namespace says which pids the first two fields are; the sequence number
// tells one owner's groups apart.
const namePrefix = "sb-"

// owner identifies a process that owns groups.
type owner struct {
	pid   int
	start uint64
	pidNS uint64
}

// parseName returns the owner encoded in a group name; ok is false for
// names this package did not make.
func parseName(name string) (o owner, ok bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return o, false
	}
	f := strings.Split(rest, "-")
	if len(f) != 4 {
		return o, false
	}
	var n [4]uint64
	for i, s := range f {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return o, false
		}
		n[i] = v
	}
	if n[0] == 0 || n[0] > 1<<22 {
		return o, false
	}
	return owner{pid: int(n[0]), start: n[1], pidNS: n[2]}, true
}

// hasGroupComponent reports whether a path has a component named like a
// group, which would confuse Cleanup.
func hasGroupComponent(p string) bool {
	for c := range strings.SplitSeq(p, "/") {
		if _, ok := parseName(c); ok {
			return true
		}
	}
	return false
}
