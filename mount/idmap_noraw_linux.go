//go:build linux && !amd64 && !arm64

package mount

import (
	"os"

	"github.com/stockade/stockade/internal/unsupported"
)

// IDMapSource is described in idmap_linux.go. Without a sysplan
// interpreter for this architecture, no user namespace for the mapping can
// be made without starting a program.
func IDMapSource(f *os.File, uid, gid uint32, owner Owner) error {
	return &Error{"idmap", f.Name(), unsupported.New("idmapped mounts on this architecture", nil)}
}
