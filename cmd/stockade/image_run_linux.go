//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stockade/stockade/image"
	"github.com/stockade/stockade/sandbox"
)

// imageRun holds the flags of "stockade run" that run an image.
type imageRun struct {
	image     string // --image PATH[:TAG] or a name in the store
	store     string // --image-store
	upperDir  string // --upper-dir
	upperSize int64  // --upper-size
	keep      bool   // --keep-upper
	save      string // --save NAME
	progress  bool   // --progress
	st        *image.Store
	img       *image.Image
}

func (ir *imageRun) define(p *parser) {
	fs := p.fs
	fs.StringVar(&ir.image, "image", "", "run the OCI image `IMAGE`: a name in the image store, or an OCI layout, OCI archive or docker save tar (PATH[:TAG], imported first); its root is an overlay of its layers and a writable upper layer, its Env, WorkingDir and User apply, and its Entrypoint and Cmd when no COMMAND is given")
	fs.StringVar(&ir.store, "image-store", "", "the image store's `DIR` (default $XDG_CACHE_HOME/stockade/images)")
	fs.StringVar(&ir.upperDir, "upper-dir", "", "with --image: keep the writable upper layer under `DIR` on disk instead of on a tmpfs")
	fs.Var(sizeValue{&ir.upperSize}, "upper-size", "with --image: the size of the upper layer's tmpfs (default 256m)")
	fs.BoolVar(&ir.keep, "keep-upper", false, "with --image and --upper-dir: leave the upper layer on disk at the end ('stockade image save' takes it)")
	fs.StringVar(&ir.save, "save", "", "with --image: when the command has ended, save the upper layer as a new image `NAME` in the store")
	fs.BoolVar(&ir.progress, "progress", false, "with --image: show the unpacking's progress even when stderr is no terminal")
}

// apply resolves the image, importing and unpacking it as needed, and
// makes c run it: with no COMMAND, the image's own.
func (ir *imageRun) apply(o *runOptions, c *sandbox.Config, sio stdio) error {
	if ir.image == "" {
		if ir.upperDir != "" || ir.upperSize != 0 || ir.keep || ir.save != "" {
			return usagef("--upper-dir, --upper-size, --keep-upper and --save need --image")
		}
		return nil
	}
	if c.RootDir != "" {
		return usagef("--rootfs and --image exclude each other")
	}
	if ir.keep && ir.upperDir == "" {
		return usagef("--keep-upper needs --upper-dir")
	}
	if ir.save != "" && o.tty {
		return usagef("--save does not work with --tty yet: keep the upper layer (--upper-dir, --keep-upper) and use 'stockade image save'")
	}
	st, err := image.Open(ir.store)
	if err != nil {
		return err
	}
	ctx := context.Background()
	progress := progressTo(sio.err, ir.progress)
	var img *image.Image
	if path, ref := splitSource(ir.image); fileExists(path) {
		img, err = st.Import(ctx, path, image.ImportOptions{Ref: ref, Progress: progress})
	} else if img, err = st.Get(ctx, ir.image); err == nil {
		_, err = st.Unpack(ctx, img, progress)
	}
	if err != nil {
		return err
	}
	dirs, err := st.Unpack(ctx, img, nil)
	if err != nil {
		return err
	}
	rt, err := img.Runtime(dirs, len(c.Args) == 0)
	if err != nil {
		return usagef("--image: %v", err)
	}
	ov := &sandbox.Overlay{Size: ir.upperSize, Keep: ir.keep}
	if ir.upperDir != "" {
		if ov.Dir, err = filepath.Abs(ir.upperDir); err != nil {
			return usagef("--upper-dir: %v", err)
		}
	}
	c.Overlay = ov
	if !o.clearenv {
		c.Env = mergeEnv(rt.Env, o.env)
	}
	rt.Apply(c)
	ir.st, ir.img = st, img
	return nil
}

// afterRun saves the upper layer of the ended sandbox with --save, and
// names a kept one.
func (ir *imageRun) afterRun(sb *sandbox.Sandbox, c *sandbox.Config, sio stdio) error {
	if ir.save == "" && !ir.keep {
		return nil
	}
	upper, err := sb.Upper()
	if err != nil {
		return err
	}
	if ir.save != "" {
		uid, gid := c.UID, c.GID
		if c.RunAsRoot {
			uid, gid = 0, 0
		}
		img, err := ir.st.Save(context.Background(), ir.img, upper, image.SaveOptions{Name: ir.save, UID: uid, GID: gid})
		if err != nil {
			return err
		}
		fmt.Fprintf(sio.err, "stockade run: saved %s %s\n", img.Name, img.Digest)
	}
	if ir.keep {
		fmt.Fprintf(sio.err, "stockade run: the upper layer is kept in %s\n", upper)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// given reports whether --image was given: then COMMAND may be left out.
func (ir *imageRun) given() bool { return ir.image != "" }
