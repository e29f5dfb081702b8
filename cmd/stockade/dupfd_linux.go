//go:build linux

package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// dupFD returns a close-on-exec copy of descriptor fd, so that what
// stockade closes is its own and fd stays open for whoever holds it.
func dupFD(fd int) (*os.File, error) {
	n, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(n), "fd:"+strconv.Itoa(fd)), nil
}
