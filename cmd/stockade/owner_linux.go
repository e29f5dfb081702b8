package main

import (
	"os"
	"syscall"

	"github.com/stockade/stockade/sandbox"
)

// ownRootBinds names host root as the Owner of every writable bind of a
// directory that root's user or group owns, when stockade runs as root. The
// library binds such a source as it is, a stranger to the sandbox's
// user; the person who runs stockade as root and binds a directory of
// theirs wants what the command writes there to be theirs, as it is with
// any other owner. The help of --bind says so.
func ownRootBinds(cfg *sandbox.Config) {
	if os.Geteuid() != 0 {
		return
	}
	for i := range cfg.Mounts {
		m := &cfg.Mounts[i]
		if m.Kind != sandbox.Bind || !m.Writable || m.NoIDMap || m.Device || m.Owner != nil {
			continue
		}
		fi, err := os.Stat(m.Source)
		if err != nil {
			continue // Start reports it
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.IsDir() && (st.Uid == 0 || st.Gid == 0) {
			m.Owner = &sandbox.Owner{UID: st.Uid, GID: st.Gid}
		}
	}
}
