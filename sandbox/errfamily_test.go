package sandbox_test

import (
	"errors"
	"testing"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/mount"
	"github.com/stockade/stockade/netns"
	"github.com/stockade/stockade/sandbox"
)

// The module has one error family: the sentinels are the same values in
// every package, and the field and feature errors the same types, so that
// errors.Is and errors.As match an error whichever package returned it.
func TestOneErrorFamily(t *testing.T) {
	for name, v := range map[string]error{"cgroup": cgroup.ErrNotSupported, "mount": mount.ErrNotSupported, "netns": netns.ErrNotSupported} {
		if v != sandbox.ErrNotSupported {
			t.Errorf("%s.ErrNotSupported is not sandbox.ErrNotSupported", name)
		}
	}
	for name, v := range map[string]error{"cgroup": cgroup.ErrInvalidConfig, "mount": mount.ErrInvalidConfig, "netns": netns.ErrInvalidConfig} {
		if v != sandbox.ErrInvalidConfig {
			t.Errorf("%s.ErrInvalidConfig is not sandbox.ErrInvalidConfig", name)
		}
	}

	// Each package's own validation, matched with sandbox's names.
	m := mount.Mount{Kind: mount.Bind, Source: "relative", Target: "/x"}
	nc := netns.Config{Ports: []netns.Port{{}}}
	for name, tc := range map[string]struct {
		err   error
		field string
	}{
		"cgroup": {cgroup.Config{Parent: "../out"}.Validate(), "Parent"},
		"mount":  {m.Validate(), "Source"},
		"netns":  {nc.Validate(), "Ports[0].Host"},
	} {
		var ce *sandbox.ConfigError
		if !errors.As(tc.err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: %v is not a *sandbox.ConfigError naming %s", name, tc.err, tc.field)
		}
		if !errors.Is(tc.err, sandbox.ErrInvalidConfig) || errors.Is(tc.err, sandbox.ErrNotSupported) {
			t.Errorf("%s: %v should match ErrInvalidConfig only", name, tc.err)
		}
	}
}

// A field that this host cannot serve is an invalid config that also
// matches ErrNotSupported, and holds a *FeatureError naming what is
// missing.
func TestFeatureErrorInConfigError(t *testing.T) {
	err := error(&sandbox.ConfigError{Field: "Limits.Memory", Err: &sandbox.FeatureError{Feature: "the memory controller"}})
	var fe *sandbox.FeatureError
	if !errors.Is(err, sandbox.ErrInvalidConfig) || !errors.Is(err, cgroup.ErrNotSupported) || !errors.As(err, &fe) {
		t.Errorf("%v: want ErrInvalidConfig, ErrNotSupported and a *FeatureError", err)
	}
	fe = &sandbox.FeatureError{Feature: "Landlock TCP rules", MinKernel: "6.7", Err: errors.New("ABI 3")}
	if got, want := fe.Error(), "stockade: Landlock TCP rules is not supported on this host (needs Linux 6.7): ABI 3"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(fe, netns.ErrNotSupported) || errors.Is(fe, sandbox.ErrInvalidConfig) {
		t.Errorf("%v should match ErrNotSupported only", fe)
	}
}
