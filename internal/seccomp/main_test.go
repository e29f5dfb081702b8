//go:build linux

package seccomp

import (
	"testing"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Run(m, testutil.Options{Helper: runHelper}) }
