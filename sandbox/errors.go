package sandbox

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	"github.com/stockade/stockade/internal/unsupported"
)

// ErrInvalidConfig is matched by every error about a Config that was
// rejected before anything was created.
var ErrInvalidConfig = errors.New("invalid config")

// ConfigError is a Config field with a bad value. Field is the path of the
// field, such as "Mounts[2].Target".
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
	return "stockade: invalid config: " + e.Field + ": " + e.Err.Error()
}

func (e *ConfigError) Unwrap() error        { return e.Err }
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// ErrNotSupported is matched by every error about a kernel or host feature
// that the sandbox needs and this machine does not offer.
var ErrNotSupported = unsupported.ErrNotSupported

// FeatureError names a feature this kernel or host lacks.
type FeatureError struct {
	Feature string
	Err     error
}

func (e *FeatureError) Error() string {
	msg := "stockade: " + e.Feature + " is not supported on this host"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *FeatureError) Unwrap() error        { return e.Err }
func (e *FeatureError) Is(target error) bool { return target == ErrNotSupported }

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
