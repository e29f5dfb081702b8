package sandbox

import (
	"io/fs"

	"github.com/stockade/stockade/mount"
)

// MountKind says what a Mount is.
type MountKind string

// The kinds of Mount.
const (
	Bind         MountKind = "bind"
	Tmpfs        MountKind = "tmpfs"
	Mask         MountKind = "mask"     // hides Target, as OCI maskedPaths
	ReadOnlyPath MountKind = "readonly" // Target read-only from there down, as OCI readonlyPaths
	Symlink      MountKind = "symlink"  // a link at Target to Source, only in the sandbox's own tmpfs
	Node         MountKind = "node"     // Danger: a device node (Mode's type, Rdev) or FIFO at Target; host root only
)

// Mount is an extra mount; a Bind is read-only unless Writable.
type Mount struct {
	Kind        MountKind   `json:"kind"`
	Source      string      `json:"source,omitempty"`
	Target      string      `json:"target"`
	Writable    bool        `json:"writable,omitempty"`
	Device      bool        `json:"device,omitempty"` // Danger: device nodes usable, as --dev-bind
	ReadOnly    bool        `json:"readOnly,omitempty"`
	Size        int64       `json:"size,omitempty"` // a Tmpfs's zero Size, Inodes, Mode, UID: the Config's sizes, 0755, root
	Inodes      int64       `json:"inodes,omitempty"`
	Mode        fs.FileMode `json:"mode,omitempty"`
	UID         int         `json:"uid,omitempty"`
	GID         int         `json:"gid,omitempty"`
	Owner       *Owner      `json:"owner,omitempty"`       // owns a writable Bind's writes (idmapped); nil: Source's, unless root's
	NoIDMap     bool        `json:"noIDMap,omitempty"`     // binds Source as it is
	Rdev        uint64      `json:"rdev,omitempty"`        // a Node's device number (unix.Mkdev)
	Propagation string      `json:"propagation,omitempty"` // a Bind's or Tmpfs's own, inside only: "shared" or "unbindable"; "": private
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
		NoIDMap: m.NoIDMap, Propagation: mount.Propagation(m.Propagation), Rdev: m.Rdev,
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
