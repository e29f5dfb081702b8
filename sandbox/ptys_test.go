//go:build linux

package sandbox

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDevptsMax checks that the sandbox's devpts holds at most Ptys
// pseudo-terminals, DefaultPtys unless set, so that one sandbox cannot
// take the host's: opening /dev/ptmx once more fails with ENOSPC.
func TestDevptsMax(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, n := range []int64{0, 5, DefaultPtys + 36} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				cfg := attack(t, "ptys")
				cfg.RunAsRoot = false
				cfg.Ptys = n
				want := n
				if n == 0 {
					want = DefaultPtys
				}
				s, o := runAttack(t, cfg)
				assert.NoError(t, o.err)
				assert.Equal(t, [2]string{"ENOSPC", fmt.Sprint(want)}, s["ptmx"])
			})
		}
	})
}
