//go:build linux

package linux

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// KernelAtLeast reports whether the running kernel's release is at least
// major.minor. It is false when the release cannot be read.
func KernelAtLeast(major, minor int) bool {
	var uts unix.Utsname
	if unix.Uname(&uts) != nil {
		return false
	}
	var ma, mi int
	if n, _ := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &ma, &mi); n < 2 {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
