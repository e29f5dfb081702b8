//go:build !linux

package main

import (
	"os"
	"syscall"
)

// forwarded are the signals that stockade passes on to the command. Off
// Linux no sandbox starts (see package sandbox), so there is none to pass
// them to.
var forwarded = []os.Signal{os.Interrupt}

// signalName is the signal's name as the system spells it.
func signalName(s syscall.Signal) string { return s.String() }
