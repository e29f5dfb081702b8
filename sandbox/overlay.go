package sandbox

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/stockade/stockade/mount"
)

// Overlay is an image's root: read-only layers under an upper layer of its
// own (overlayfs). Linux 5.11, 5.19 for host root, else a *FeatureError.
type Overlay struct {
	Layers []string // host directories, never written, in overlayfs's format, lowest first; 1 to mount.MaxLayers
	Dir    string   // a host directory for the upper layer; empty: a tmpfs of Size bytes
	Size   int64    // zero: DefaultOverlaySize; must be zero with Dir
	Keep   bool     // with Dir: leave the upper layer on disk after Close
}

// Overlay's fields in detail (ownership and kernels: docs/sandbox-internals.md):
// Layers use overlayfs's format: a whiteout is a character device 0:0, an
// opaque directory carries user.overlay.opaque="y" (mounted with userxattr,
// so trusted.overlay.* is not read). Dir gets a fresh directory of the
// sandbox's own holding "upper" and "work", and must support idmapped
// mounts (ext4, xfs, btrfs, tmpfs ...) when the caller is host root. A write
// beyond Size fails with ENOSPC. Keep without Dir is refused; without Keep,
// Close removes the directory.

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
