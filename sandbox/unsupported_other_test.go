//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// The tests of this file run on systems other than Linux, where the package
// keeps its API and no sandbox starts.

func TestProbeNotSupported(t *testing.T) {
	r := Probe()
	if r.Sandbox.Available {
		t.Fatal("Probe says a sandbox starts on " + runtime.GOOS)
	}
	if !strings.HasPrefix(r.Sandbox.Detail, "not supported: stockade needs Linux") || !strings.Contains(r.Sandbox.Detail, runtime.GOOS) {
		t.Errorf("Sandbox.Detail %q does not say that Linux is needed", r.Sandbox.Detail)
	}
	for name, s := range map[string]Support{"UserNamespaces": r.UserNamespaces, "Cgroups": r.Cgroups, "Seccomp": r.Seccomp, "Landlock": r.Landlock} {
		if s.Available || s.Detail == "" {
			t.Errorf("%s: %+v, want not available, with the reason", name, s)
		}
	}
	if !strings.Contains(r.String(), "needs Linux") {
		t.Errorf("String() = %q", r.String())
	}
}

func TestRunNotSupported(t *testing.T) {
	ctx := context.Background()
	sb := New(Config{Args: []string{"true"}})
	_, err := sb.Run(ctx)
	var fe *FeatureError
	if !errors.Is(err, ErrNotSupported) || !errors.As(err, &fe) {
		t.Fatalf("Run: %v, want a *FeatureError matching ErrNotSupported", err)
	}
	if !strings.Contains(err.Error(), "Sandbox.Run") || !strings.Contains(err.Error(), runtime.GOOS) {
		t.Errorf("Run: %q names neither the method nor the system", err)
	}
	for name, err := range map[string]error{
		"Start":   sb.Start(ctx),
		"Kill":    sb.Kill(9),
		"Close":   sb.Close(),
		"Cleanup": Cleanup(ctx),
	} {
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: %v, want an error matching ErrNotSupported", name, err)
		}
	}
	if p, err := NewPool(Config{}, 1); p != nil || !errors.Is(err, ErrNotSupported) {
		t.Errorf("NewPool: %v, %v", p, err)
	}
}

// TestValidateOffLinux: the fields that need no kernel are checked as on
// Linux; a Config that passes them is not supported.
func TestValidateOffLinux(t *testing.T) {
	err := (&Config{Args: []string{"true"}, Dir: "relative"}).Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Dir" {
		t.Errorf("Validate with a relative Dir: %v, want a *ConfigError naming Dir", err)
	}
	if err := (&Config{Args: []string{"true"}}).Validate(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Validate: %v, want an error matching ErrNotSupported", err)
	}
}
