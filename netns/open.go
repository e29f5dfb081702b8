//go:build linux

package netns

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// nsGetNSType is NS_GET_NSTYPE, the ioctl that tells which kind of
// namespace a namespace file is (Linux 4.11).
const nsGetNSType = 0xb703

// Open returns the network namespace of a namespace file, such as
// /proc/PID/ns/net, a name bound under /run/netns, or /proc/self/fd/N for
// a descriptor inherited from another process. It fails when path is not a
// network namespace. The caller closes the NS; the namespace itself lives
// on as long as something else refers to it.
func Open(path string) (*NS, error) {
	// Non-blocking, so that a FIFO or a device at path is refused at once
	// rather than waited on.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("netns: open %s: %w", path, err)
	}
	kind, err := unix.IoctlRetInt(fd, nsGetNSType)
	if err != nil || kind != unix.CLONE_NEWNET {
		unix.Close(fd)
		if err == nil {
			err = unix.EINVAL
		}
		return nil, fmt.Errorf("netns: open %s: not a network namespace: %w", path, err)
	}
	return &NS{fd: fd}, nil
}
