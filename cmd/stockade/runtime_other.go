//go:build !linux

package main

import (
	"fmt"
	"runtime"
	"slices"
)

// isRuntimeCommand reports whether args call the OCI runtime command line,
// which needs Linux.
func isRuntimeCommand(args []string) bool {
	return len(args) > 0 && slices.Contains([]string{"create", "start", "state", "kill", "delete", "exec", "ps", "features", "spec"}, args[0])
}

func runtimeCommand(args []string, io stdio) int {
	fmt.Fprintf(io.err, "stockade: %s: not supported on %s: the OCI runtime needs Linux\n", args[0], runtime.GOOS)
	return 1
}
