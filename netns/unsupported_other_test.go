//go:build !linux

package netns

import (
	"errors"
	"testing"

	"github.com/stockade/stockade/internal/unsupported"
)

func TestNotSupported(t *testing.T) {
	if _, err := New(); !errors.Is(err, unsupported.ErrNotSupported) {
		t.Errorf("New: %v, want an error matching sandbox.ErrNotSupported", err)
	}
	if _, err := NewManager(ManagerConfig{}); !errors.Is(err, unsupported.ErrNotSupported) {
		t.Errorf("NewManager: %v, want an error matching sandbox.ErrNotSupported", err)
	}
}
