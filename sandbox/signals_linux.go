//go:build linux

package sandbox

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A process inherits the signals its parent ignores, across fork and
// exec; only a handler is reset. A sandbox's processes descend from the
// owner, so what the owner ignores they would ignore too: under nohup, as
// a background job of a script (SIGINT and SIGQUIT), or after
// signal.Ignore, a Ctrl-C typed at a sandbox's terminal would kill
// nothing, and a SIGTERM from a program inside would end nothing. Each
// process the sandbox starts therefore sets those signals back to their
// default action before its exec (proto.Spec.DefaultSignals).

// ignoredSignals returns the signals this process ignores, bit n-1 for
// signal n: those the Go runtime records as ignored (signal.Ignore, and
// SIGHUP or SIGINT ignored when the program started), and those the
// program started with ignored which the runtime leaves alone (SIGTSTP,
// SIGTTIN, SIGTTOU among them), read once from the kernel. A signal
// ignored later by other means than os/signal (cgo) is not seen.
func ignoredSignals() uint64 {
	set := startIgnored()
	for sig := 1; sig <= 64; sig++ {
		if signal.Ignored(syscall.Signal(sig)) {
			set |= 1 << (sig - 1)
		}
	}
	// SIGKILL and SIGSTOP cannot be ignored, nor set.
	return set &^ (1<<(syscall.SIGKILL-1) | 1<<(syscall.SIGSTOP-1))
}

// startIgnored is the set of signals ignored when it was first called,
// from the kernel's own account (SigIgn in /proc/self/status).
var startIgnored = sync.OnceValue(func() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return sigIgnMask(string(b))
})

// sigIgnMask returns the SigIgn mask of a /proc/PID/status text, 0 when
// it has none.
func sigIgnMask(status string) uint64 {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0
			}
			return m
		}
	}
	return 0
}
