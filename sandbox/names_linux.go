package sandbox

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// errnoName is the errno's name, such as "ENOENT".
func errnoName(e syscall.Errno) string { return unix.ErrnoName(e) }

// signalName is the signal's name, such as "SIGKILL".
func signalName(s syscall.Signal) string { return unix.SignalName(s) }
