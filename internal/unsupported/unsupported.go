// Package unsupported is the one error that every package of the module
// returns on a system other than Linux, where nothing of it can work: the
// off-Linux stubs of sandbox, cgroup, mount and netns (their
// zstubs_other.go files, written by internal/stubgen) all return an *Error.
// It builds on every system.
package unsupported

import (
	"runtime"

	"github.com/stockade/stockade/internal/errdefs"
)

// ErrNotSupported is errdefs.ErrNotSupported, which sandbox, cgroup, mount
// and netns re-export.
var ErrNotSupported = errdefs.ErrNotSupported

// Error reports that Op needs Linux and this system is another one.
type Error struct {
	// Op names the function or method called, e.g. "Sandbox.Run".
	Op string
	// Also is another sentinel the error matches besides ErrNotSupported;
	// nil when none.
	Also error
}

// New returns an *Error for op, matching also besides ErrNotSupported.
func New(op string, also error) error { return &Error{Op: op, Also: also} }

// Error returns "<op>: stockade needs Linux, and this is <GOOS>/<GOARCH>",
// without the op when Op is empty.
func (e *Error) Error() string {
	msg := "stockade needs Linux, and this is " + runtime.GOOS + "/" + runtime.GOARCH
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	return msg
}

// Is matches ErrNotSupported and Also.
func (e *Error) Is(target error) bool {
	return target == ErrNotSupported || (e.Also != nil && target == e.Also)
}
