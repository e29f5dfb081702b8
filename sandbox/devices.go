//go:build linux

package sandbox

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
)

// ownDevices are the device nodes of every sandbox's /dev (see plan.go's
// devices, the devpts instance's ptmx and its ptys), which Limits.Devices
// cannot take away: the init stage and the command need them.
var ownDevices = []cgroup.DeviceRule{
	{Allow: true, Type: "c", Major: 1, Minor: 3, Access: "rwm"},                  // null
	{Allow: true, Type: "c", Major: 1, Minor: 5, Access: "rwm"},                  // zero
	{Allow: true, Type: "c", Major: 1, Minor: 7, Access: "rwm"},                  // full
	{Allow: true, Type: "c", Major: 1, Minor: 8, Access: "rwm"},                  // random
	{Allow: true, Type: "c", Major: 1, Minor: 9, Access: "rwm"},                  // urandom
	{Allow: true, Type: "c", Major: 5, Minor: 0, Access: "rwm"},                  // tty
	{Allow: true, Type: "c", Major: 5, Minor: 2, Access: "rwm"},                  // ptmx
	{Allow: true, Type: "c", Major: 136, Minor: cgroup.AnyDevice, Access: "rwm"}, // /dev/pts/*
}

// maxBoundDevices bounds the device nodes looked for below one directory
// bound with Mount.Device.
const maxBoundDevices = 4096

// deviceRules returns the rules the sandbox's group applies for the
// caller's rules: those, in order, then an allow for each of the
// sandbox's own device nodes, then one for each device node bound with
// Mount.Device or made by a Node that no rule names by its type and both
// numbers, so that a rule of the caller's about such a node has the last
// word.
func (c *Config) deviceRules(rules []cgroup.DeviceRule) []cgroup.DeviceRule {
	out := append(append([]cgroup.DeviceRule(nil), rules...), ownDevices...)
	named := func(d cgroup.DeviceRule) bool {
		for _, r := range rules {
			if r.Type == d.Type && r.Major == d.Major && r.Minor == d.Minor {
				return true
			}
		}
		return false
	}
	seen := map[cgroup.DeviceRule]bool{}
	allow := func(d cgroup.DeviceRule) {
		if !seen[d] && !named(d) {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, m := range c.Mounts {
		if m.Kind == Node && m.Mode&fs.ModeDevice != 0 {
			d := cgroup.DeviceRule{Allow: true, Type: "b", Major: int64(unix.Major(m.Rdev)), Minor: int64(unix.Minor(m.Rdev)), Access: "rwm"}
			if m.Mode&fs.ModeCharDevice != 0 {
				d.Type = "c"
			}
			allow(d)
		}
		if m.Kind != Bind || !m.Device {
			continue
		}
		// A source that cannot be read fails the mount step later, with
		// its own error. The mount follows a link at the source.
		src, err := filepath.EvalSymlinks(m.Source)
		if err != nil {
			continue
		}
		n := 0
		filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
			if n++; err != nil || n > maxBoundDevices {
				return filepath.SkipAll
			}
			var st unix.Stat_t
			if unix.Lstat(p, &st) != nil {
				return nil
			}
			d := cgroup.DeviceRule{Allow: true, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)), Access: "rwm"}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFCHR:
				d.Type = "c"
			case unix.S_IFBLK:
				d.Type = "b"
			default:
				return nil
			}
			allow(d)
			return nil
		})
	}
	return out
}
