package sandbox

import (
	"io/fs"

	"github.com/stockade/stockade/mount"
)

// MountKind says what a Mount is.
type MountKind string

// The kinds of Mount.
const (
	Bind  MountKind = "bind"
	Tmpfs MountKind = "tmpfs"
	// Mask hides Target (a file behind /dev/null, a directory behind an
	// empty read-only tmpfs); ReadOnlyPath makes the mount at or holding
	// Target read-only from there down. A missing Target is left alone.
	// Only Target is set, as an OCI spec's maskedPaths and readonlyPaths.
	Mask         MountKind = "mask"
	ReadOnlyPath MountKind = "readonly"
	// Symlink makes a link at Target whose text is Source (bwrap's
	// --symlink), in a tmpfs of the sandbox, never in a host directory; it
	// replaces no other entry, and none goes beneath it.
	Symlink MountKind = "symlink"
)

// Mount is an extra mount: a Bind of Source (read-only unless Writable), a
// Tmpfs, whose zero fields take the Config's sizes, 0755 and root, or a
// Symlink.
type Mount struct {
	Kind     MountKind   `json:"kind"`
	Source   string      `json:"source,omitempty"`
	Target   string      `json:"target"`
	Writable bool        `json:"writable,omitempty"`
	Device   bool        `json:"device,omitempty"` // Danger: device nodes usable, as --dev-bind
	ReadOnly bool        `json:"readOnly,omitempty"`
	Size     int64       `json:"size,omitempty"`
	Inodes   int64       `json:"inodes,omitempty"`
	Mode     fs.FileMode `json:"mode,omitempty"`
	UID      int         `json:"uid,omitempty"`
	GID      int         `json:"gid,omitempty"`
	// Owner owns what the command writes in a writable Bind, and its files
	// are the command's own there; nil means Source's owner, but for one of
	// host root's. Host root's sandbox gets an idmapped mount for it (see
	// the package doc on writable binds); NoIDMap binds Source as it is.
	Owner   *Owner `json:"owner,omitempty"`
	NoIDMap bool   `json:"noIDMap,omitempty"`
}

// Owner is a host user and group, the owner of a writable Bind.
type Owner struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// planMount returns m as an entry of the sandbox's mount plan; c has its
// defaults filled in.
func (c *Config) planMount(m Mount) mount.Mount {
	p := mount.Mount{
		Kind: mount.Kind(m.Kind), Source: m.Source, Target: m.Target,
		Writable: m.Writable, Device: m.Device, ReadOnly: m.ReadOnly,
		Size: m.Size, Inodes: m.Inodes, Mode: m.Mode, UID: m.UID, GID: m.GID,
		NoIDMap: m.NoIDMap,
	}
	if m.Owner != nil {
		p.Owner = &mount.Owner{UID: m.Owner.UID, GID: m.Owner.GID}
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
