//go:build !linux

package mount

import (
	"errors"
	"testing"

	"github.com/stockade/stockade/internal/unsupported"
)

func TestNotSupported(t *testing.T) {
	if err := Apply(&Plan{}); !errors.Is(err, unsupported.ErrNotSupported) {
		t.Errorf("Apply: %v, want an error matching sandbox.ErrNotSupported", err)
	}
}
