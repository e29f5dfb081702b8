//go:build !linux

package cgroup

import (
	"errors"
	"testing"

	"github.com/stockade/stockade/internal/unsupported"
)

func TestNotSupported(t *testing.T) {
	_, err := Create(Config{})
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, unsupported.ErrNotSupported) {
		t.Errorf("Create: %v, want an error matching ErrNotSupported and sandbox.ErrNotSupported", err)
	}
	if m := DetectMode(); m != Unavailable {
		t.Errorf("DetectMode() = %v, want Unavailable", m)
	}
	if err := (Config{Parent: "../x"}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Validate with a bad Parent: %v, want an error matching ErrInvalidConfig", err)
	}
	if err := (Config{}).Validate(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Validate: %v, want an error matching ErrNotSupported", err)
	}
}
