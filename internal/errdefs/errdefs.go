// Package errdefs is the one error family of the module. The sentinels
// ErrNotSupported and ErrInvalidConfig, the field error ConfigError and the
// feature error FeatureError are defined here once; the packages sandbox,
// cgroup, mount and netns re-export them (variables equal to the sentinels,
// aliases of the types), so that errors.Is and errors.As match an error
// whichever package returned it. It builds on every system.
package errdefs

import "errors"

var (
	// ErrNotSupported is matched by every error about a feature that this
	// kernel or host does not offer, Linux itself included.
	ErrNotSupported = errors.New("not supported")
	// ErrInvalidConfig is matched by every error about a configuration
	// that was rejected before anything was created.
	ErrInvalidConfig = errors.New("invalid config")
)

// ConfigError is a field of a configuration with a value that cannot be
// used. It matches ErrInvalidConfig, and whatever Err matches: a value
// this host cannot serve (a cgroup controller it lacks) holds a
// *FeatureError and matches ErrNotSupported too.
type ConfigError struct {
	// Field is the path of the field, such as "Mounts[2].Target".
	Field string
	// Err says what is wrong with it.
	Err error
}

// Error returns "stockade: invalid config: <Field>: <Err>".
func (e *ConfigError) Error() string {
	return "stockade: invalid config: " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// FeatureError is a feature this kernel or host lacks. It matches
// ErrNotSupported.
type FeatureError struct {
	// Feature names it: "time namespaces", "the memory controller".
	Feature string
	// MinKernel is the first Linux release that has it, such as "5.6";
	// empty when no release alone brings it (a controller not mounted, a
	// helper not installed).
	MinKernel string
	// Err says why it is off here, and what would turn it on; it may be
	// nil.
	Err error
}

// Error returns "stockade: <Feature> is not supported on this host (needs
// Linux <MinKernel>): <Err>".
func (e *FeatureError) Error() string {
	msg := "stockade: " + e.Feature + " is not supported on this host"
	if e.MinKernel != "" {
		msg += " (needs Linux " + e.MinKernel + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns Err.
func (e *FeatureError) Unwrap() error { return e.Err }

// Is matches ErrNotSupported.
func (e *FeatureError) Is(target error) bool { return target == ErrNotSupported }
