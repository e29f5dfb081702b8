package sandbox

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/stockade/stockade/mount"
)

// Overlay is a root made of read-only layers and a writable upper layer of
// the sandbox's own (overlayfs), as a container image's root is. The
// layers are never written: what the sandbox changes goes to the upper
// layer, which Sandbox.Upper shows to the owner.
//
// Ownership. The overlay is mounted inside the sandbox's user namespace.
// For host root, whose sandboxes map their ids onto an unprivileged host
// range, every layer is an idmapped mount of its directory, so that a file
// a layer holds as id N on disk shows as id N inside the sandbox: an image
// unpacked by root (its files owned by 0) gives a root owned by the
// sandbox's root, which may then change it (apt, apk) through the upper
// layer. The upper layer is idmapped too, so that its files are stored
// with the sandbox's own ids again: a file root made inside is owned by
// 0 in Upper. For an ordinary user, whose sandbox maps its own uid and
// gid (see Config.IDMap), the layers' files, the caller's, show as the
// command's ids, or as root's with RunAsRoot; the upper layer's files are
// the caller's. With SubordinateIDs, the caller's files show as root's.
//
// Kernel: Linux 5.11 for an ordinary user; 5.19 for host root (idmapped
// layers); 6.3 for host root's upper layer on tmpfs (an idmapped tmpfs;
// with Dir on a file system that supports idmapped mounts, 5.19 does);
// user extended attributes on tmpfs, which the upper layer needs for an
// opaque directory, from 6.6. Start fails with a *FeatureError where the
// kernel lacks what is asked.
type Overlay struct {
	// Layers are host directories in overlayfs's own format, lowest first:
	// a whiteout is a character device 0:0, and an opaque directory
	// carries the extended attribute user.overlay.opaque="y" (the overlay
	// is mounted with userxattr, so trusted.overlay.* is not read). At
	// least one; at most mount.MaxLayers.
	Layers []string
	// Dir, if set, is a host directory under which the sandbox makes a
	// fresh directory of its own holding the upper layer ("upper") and
	// overlayfs's work directory ("work"); it must be on a file system
	// that supports idmapped mounts (ext4, xfs, btrfs, tmpfs ...) when the
	// caller is host root. Empty puts the upper layer on a tmpfs of the
	// sandbox's own, limited to Size bytes.
	Dir string
	// Size is the size limit in bytes of the upper layer's tmpfs: a write
	// beyond it fails with ENOSPC. Zero means DefaultOverlaySize. It must
	// be zero with Dir.
	Size int64
	// Keep leaves the upper layer (the directory under Dir) on disk when
	// the sandbox is closed. Only with Dir. False removes it at Close.
	Keep bool
}

// validate checks o, part of c, without touching the system, apart from
// looking at the named directories.
func (o *Overlay) validate(c *Config) error {
	if o == nil {
		return nil
	}
	if c.RootDir != "" {
		return configErr("Overlay", "must not be set with RootDir: the overlay is the root")
	}
	if len(o.Layers) == 0 {
		return configErr("Overlay.Layers", "must name at least one layer")
	}
	if len(o.Layers) > mount.MaxLayers {
		return configErr("Overlay.Layers", "holds %d layers; overlayfs takes at most %d", len(o.Layers), mount.MaxLayers)
	}
	for i, l := range o.Layers {
		if err := checkDir(l); err != nil {
			return &ConfigError{Field: fmtIndex("Overlay.Layers", i), Err: err}
		}
	}
	if o.Size < 0 {
		return configErr("Overlay.Size", "must not be negative")
	}
	if o.Dir == "" {
		if o.Keep {
			return configErr("Overlay.Keep", "needs Overlay.Dir: an upper layer on tmpfs ends with the sandbox")
		}
		return nil
	}
	if o.Size != 0 {
		return configErr("Overlay.Size", "limits the upper layer's tmpfs, and must be zero with Overlay.Dir")
	}
	if err := checkDir(o.Dir); err != nil {
		return &ConfigError{Field: "Overlay.Dir", Err: err}
	}
	return nil
}

// checkDir accepts an absolute, clean path to a directory.
func checkDir(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("must be an absolute, clean path, not %q", truncate(p))
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", p)
	}
	return nil
}

// hasDir reports whether the overlay's root would hold the directory
// name, as far as the layers tell without following links: the uppermost
// layer that has name decides; a whiteout hides it.
func (o *Overlay) hasDir(name string) bool {
	for i := len(o.Layers) - 1; i >= 0; i-- {
		fi, err := os.Lstat(filepath.Join(o.Layers[i], name))
		if err != nil {
			continue
		}
		return fi.IsDir()
	}
	return false
}
