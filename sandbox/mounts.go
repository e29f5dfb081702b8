package sandbox

import (
	"io/fs"

	"github.com/stockade/stockade/mount"
)

// MountKind says what a Mount places at its target.
type MountKind string

// The kinds of Mount.
const (
	// Bind mounts the host path Source at Target.
	Bind MountKind = "bind"
	// Tmpfs mounts a fresh, empty tmpfs at Target.
	Tmpfs MountKind = "tmpfs"
)

// Mount is an extra mount of a Config (Config.Mounts). Fields that do not
// apply to its Kind must be zero.
type Mount struct {
	Kind MountKind `json:"kind"`
	// Source is the host path of a Bind.
	Source string `json:"source,omitempty"`
	// Target is the absolute path inside the sandbox.
	Target string `json:"target"`
	// Writable makes a Bind writable; it is read-only by default.
	Writable bool `json:"writable,omitempty"`
	// Device leaves the device nodes under a Bind usable (not nodev), as
	// bwrap's --dev-bind. Danger: the sandbox reaches those devices.
	Device bool `json:"device,omitempty"`
	// ReadOnly makes a Tmpfs read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Size and Inodes limit a Tmpfs; zero means Config.TmpfsSize and
	// Config.TmpfsInodes.
	Size   int64 `json:"size,omitempty"`
	Inodes int64 `json:"inodes,omitempty"`
	// Mode is the permission bits of a Tmpfs's root; zero means 0755.
	Mode fs.FileMode `json:"mode,omitempty"`
	// UID and GID own a Tmpfs's root, as ids inside the sandbox; zero
	// means root.
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
}

// planMount returns m as an entry of the sandbox's mount plan; c has its
// defaults filled in.
func (c *Config) planMount(m Mount) mount.Mount {
	p := mount.Mount{
		Kind: mount.Kind(m.Kind), Source: m.Source, Target: m.Target,
		Writable: m.Writable, Device: m.Device, ReadOnly: m.ReadOnly,
		Size: m.Size, Inodes: m.Inodes, Mode: m.Mode, UID: m.UID, GID: m.GID,
	}
	if m.Kind == Tmpfs {
		if p.Size == 0 {
			p.Size = c.TmpfsSize
		}
		if p.Inodes == 0 {
			p.Inodes = c.TmpfsInodes
		}
		if p.Mode == 0 {
			p.Mode = 0o755
		}
	}
	return p
}
