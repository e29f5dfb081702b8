//go:build linux

package landlock

import (
	"testing"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
