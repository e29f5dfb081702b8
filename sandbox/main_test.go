//go:build linux

package sandbox

import (
	"slices"
	"testing"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) {
	if ownerHelper() || usernsHelper() || limitHelper() || netOwnerHelper() || ownerTasksHelper() {
		return
	}
	testutil.MainThen(m, func() {
		closeTestNetworking()
		closeUserNSCache()
		removeAttackDir()
	}, slices.Concat(testutil.DefaultLeakChecks, testutil.NetworkLeakChecks)...)
}
