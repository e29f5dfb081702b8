//go:build linux

package sandbox

import (
	"slices"
	"testing"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Run(m, testutil.Options{
		// Each helper reports whether testutil.HelperEnv names it.
		Helper: func(string) int {
			if ownerHelper() || usernsHelper() || limitHelper() || netOwnerHelper() || ownerTasksHelper() {
				return 0
			}
			return 2
		},
		After: func() {
			closeTestNetworking()
			closeUserNSCache()
			removeAttackDir()
		},
		Checks: slices.Concat(testutil.DefaultLeakChecks, testutil.NetworkLeakChecks),
	})
}
