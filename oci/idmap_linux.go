//go:build linux

package oci

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// idmappable reports whether the file system of dir is one Linux mounts
// idmapped: ext4, xfs, btrfs and f2fs, and tmpfs from Linux 6.3. It only
// reads (statfs).
func idmappable(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return false
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC:
		return true
	case unix.TMPFS_MAGIC:
		var u unix.Utsname
		if unix.Uname(&u) != nil {
			return false
		}
		var major, minor int
		fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
		return major > 6 || major == 6 && minor >= 3
	}
	return false
}
