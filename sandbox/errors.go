package sandbox

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	"github.com/stockade/stockade/internal/errdefs"
)

// ErrInvalidConfig is matched by every *ConfigError, in every package.
var ErrInvalidConfig = errdefs.ErrInvalidConfig

// ErrNotSupported is matched by every error about what this host lacks.
var ErrNotSupported = errdefs.ErrNotSupported

// ConfigError names a bad field, "Mounts[2].Target"; matches ErrInvalidConfig.
type ConfigError = errdefs.ConfigError

// FeatureError names what this host lacks; it matches ErrNotSupported.
type FeatureError = errdefs.FeatureError

// Errors of methods called out of order or on what has no such thing.
var (
	ErrStarted    = errors.New("stockade: sandbox already started")
	ErrNotStarted = errors.New("stockade: sandbox not started")
	ErrFinished   = errors.New("stockade: sandbox has finished")
	ErrPoolClosed = errors.New("stockade: pool closed")
	ErrNoCgroup   = errors.New("stockade: the sandbox has no control group (set a limit in Config.Limits)")
)

// ErrSetup is matched by every *SetupError.
var ErrSetup = errors.New("sandbox setup failed")

// SetupError is a setup step that failed, with its file and errno.
type SetupError struct {
	Stage string
	Path  string
	Errno syscall.Errno
	Err   error
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

// Is matches ErrSetup, and exec.ErrNotFound for a command not in PATH.
func (e *SetupError) Is(target error) bool {
	return target == ErrSetup || target == exec.ErrNotFound && e.notFound()
}

// notFound reports whether e is a command looked up in PATH that was not
// found there.
func (e *SetupError) notFound() bool {
	return e.Stage == "exec" && e.Errno == syscall.ENOENT && e.Path != "" && !strings.Contains(e.Path, "/")
}

// ExitError is a Result other than status 0, with Output's Stderr (64 KiB).
type ExitError struct {
	*Result
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
