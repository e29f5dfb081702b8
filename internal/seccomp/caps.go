//go:build linux

package seccomp

import (
	"fmt"

	"github.com/stockade/stockade/internal/linux"
)

// checkCaps returns an error naming the first entry of caps that is not a
// capability name.
func checkCaps(field string, caps []string) error {
	for i, c := range caps {
		if _, ok := linux.CapByName(c); !ok {
			return fmt.Errorf("%s[%d]: %q is not a capability name such as \"CAP_SYS_PTRACE\"", field, i, c)
		}
	}
	return nil
}
