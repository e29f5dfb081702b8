package sandbox

import (
	"testing"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) {
	if ownerHelper() || usernsHelper() || limitHelper() {
		return
	}
	testutil.MainThen(m, removeAttackDir)
}
