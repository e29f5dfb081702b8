package sandbox

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	"github.com/stockade/stockade/internal/errdefs"
)

// ErrInvalidConfig is matched by every error about a Config that was
// rejected before anything was created. It is the same value in every
// package of the module.
var ErrInvalidConfig = errdefs.ErrInvalidConfig

// ErrNotSupported is matched by every error about a kernel or host feature
// that the sandbox needs and this machine does not offer. It is the same
// value in every package of the module.
var ErrNotSupported = errdefs.ErrNotSupported

// ConfigError is a Config field with a bad value: Field is its path, such
// as "Mounts[2].Target". It matches ErrInvalidConfig, and ErrNotSupported
// when this host cannot serve the value. Packages cgroup, mount and netns
// return the same type.
type ConfigError = errdefs.ConfigError

// FeatureError names a feature this kernel or host lacks and, in
// MinKernel, the Linux release that brings it. It matches ErrNotSupported.
type FeatureError = errdefs.FeatureError

// ErrSetup is matched by every error from a setup step that failed after
// Start began creating the sandbox.
var ErrSetup = errors.New("sandbox setup failed")

// SetupError is a setup step that failed, in the parent or inside the
// sandbox. Stage names the step ("bind", "tmpfs", "pivot_root", "exec" …),
// Path the file it worked on, and Errno the kernel's answer when there was
// one; errors.Is(err, unix.ENOENT) and the like match it.
type SetupError struct {
	Stage string
	Path  string
	Errno syscall.Errno
	// Err is the cause; for a failure inside the sandbox it carries the
	// init's message.
	Err error
}

func (e *SetupError) Error() string {
	msg := "stockade: setup: " + e.Stage
	if e.Path != "" {
		msg += " " + e.Path
	}
	if e.notFound() {
		msg += ": executable file not found in $PATH (" + errnoName(e.Errno) + ")"
	} else if e.Errno != 0 {
		msg += ": " + errnoName(e.Errno) + " (" + e.Errno.Error() + ")"
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *SetupError) Unwrap() []error {
	var errs []error
	if e.Errno != 0 {
		errs = append(errs, e.Errno)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Is matches ErrSetup, and exec.ErrNotFound for a command without a slash
// in its name that no directory of its PATH holds, as in os/exec.
func (e *SetupError) Is(target error) bool {
	return target == ErrSetup || target == exec.ErrNotFound && e.notFound()
}

// notFound reports whether e is a command looked up in PATH that was not
// found there.
func (e *SetupError) notFound() bool {
	return e.Stage == "exec" && e.Errno == syscall.ENOENT && e.Path != "" && !strings.Contains(e.Path, "/")
}

// ExitError is returned by Wait and Run when the sandbox ran but its
// command did not exit with status 0. It holds the whole Result.
type ExitError struct {
	*Result
	// Stderr holds the command's standard error when Output collected it
	// (the Config's or Cmd's Stderr was nil): up to 64 KiB, the middle of
	// a longer output left out. Otherwise nil.
	Stderr []byte
	cause  error
}

func (e *ExitError) Error() string { return "stockade: " + e.Result.String() }

// Unwrap returns the context's error when the run was cancelled.
func (e *ExitError) Unwrap() error { return e.cause }

func setupErr(stage, path string, err error) error {
	if se, ok := err.(*SetupError); ok {
		return se // already names its step
	}
	se := &SetupError{Stage: stage, Path: path, Err: err}
	errors.As(err, &se.Errno)
	return se
}

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

func fmtIndex(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
