package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwarded are the signals that stockade passes on to the command.
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

// signalName is the signal's name, such as "SIGKILL".
func signalName(s syscall.Signal) string { return unix.SignalName(s) }
