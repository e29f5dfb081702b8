//go:build linux

package sandbox

import (
	"errors"
	"testing"

	"github.com/stockade/stockade/cgroup"
)

// A cgroup controller the host lacks reaches the caller of Validate or
// Start as a *ConfigError named after the sandbox's field that matches
// ErrNotSupported as well as ErrInvalidConfig, with the *FeatureError
// that names the controller.
func TestCgroupConfigErrKeepsNotSupported(t *testing.T) {
	missing := &cgroup.ConfigError{Field: "Limits.Pids", Err: &cgroup.FeatureError{Feature: "the pids controller"}}
	noCgroups := &cgroup.ConfigError{Field: "Limits", Err: &cgroup.FeatureError{Feature: "cgroups"}}
	for _, tc := range []struct {
		in    error
		field string
	}{
		{errors.Join(missing, errors.New("second")), "Limits.Pids"},
		{noCgroups, "Limits.Memory"},
	} {
		err := cgroupConfigErr(tc.in, "Limits.Memory")
		var ce *ConfigError
		var fe *FeatureError
		if !errors.As(err, &ce) || ce.Field != tc.field || !errors.As(err, &fe) ||
			!errors.Is(err, ErrNotSupported) || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("cgroupConfigErr(%v): %v, want a *ConfigError naming %s with a *FeatureError", tc.in, err, tc.field)
		}
	}
}
