//go:build linux

package testutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// OwnCgroups lists the cgroup directories, in every mounted hierarchy, of
// the sandbox groups that this process owns. Package cgroup names a group
// "sb-<owner pid>-<owner start time>-…", so a group named after this
// process's pid that is still there after the tests is one they forgot to
// remove. Groups of other processes are ignored: tests of other packages
// may run at the same time and create their own.
func OwnCgroups() ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, err
	}
	prefix := "sb-" + strconv.Itoa(os.Getpid()) + "-"
	var out []string
	for _, m := range mounts {
		err := filepath.WalkDir(m.Mountpoint, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a cgroup removed while walking
			}
			if !d.IsDir() {
				return nil
			}
			if strings.HasPrefix(d.Name(), prefix) {
				out = append(out, path)
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return out, nil
}
