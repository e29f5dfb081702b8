//go:build linux

// Command image runs a container image in sandboxes: each run starts from
// the image as it was built, may write anywhere in its root, and leaves
// nothing behind unless its changes are saved as a new image.
//
// An OCI image is a stack of layers (tar files) and a configuration (the
// command, environment, working directory and user it wants). Package image
// keeps images in a store, a directory of the caller's: Import copies an
// image from an OCI layout, an OCI archive or a `docker save` tar, checking
// every digest, and unpacks each layer once into a directory of its own,
// shared by every image and every sandbox that uses it. A sandbox's root is
// then an overlay (overlayfs) of those read-only layers and an upper layer
// of the sandbox's own, on a tmpfs by default: whatever the command
// writes or deletes lands in the upper layer, and goes when the sandbox is
// closed. Store.Save turns an upper layer into one more layer, and the
// result into a new image, as `docker commit` does.
//
// This example has no registry to pull from, so it builds a one-layer image
// from the host's static busybox (with go-containerregistry, as a build
// tool would) and writes it as an OCI layout in a temporary directory;
// with Docker elsewhere, `docker save alpine:3.19 > alpine.tar` gives a
// file that Import takes as it is. Then it:
//
//  1. imports the image into a store (a temporary one here; image.Open("")
//     gives the default under ~/.cache);
//  2. runs the image's own command (its Cmd, opted in by asking Runtime
//     for it), in its working directory, as its user;
//  3. runs a shell as root inside (the image's files are root's there, as
//     a package manager wants them) that installs a "package" (writes
//     /opt/tool) and deletes a file of the image, then saves that as image
//     "box:tooled";
//  4. runs the new image, which has the tool and lacks the file, and the
//     old one again, which is as it was.
//
// Run it as root (an ordinary user's sandboxes work too, on Linux 5.11):
//
//	go run ./examples/image
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/stockade/stockade/image"
	"github.com/stockade/stockade/sandbox"
)

func main() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "stockade-image-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	src := filepath.Join(tmp, "layout")
	if err := buildImage(src); err != nil {
		log.Fatal(err)
	}
	store, err := image.Open(filepath.Join(tmp, "store"))
	if err != nil {
		log.Fatal(err)
	}
	defer removeStore(store)

	// 1. Import: copy, check, unpack once.
	img, err := store.Import(ctx, src, image.ImportOptions{Ref: "box:1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("imported %s (%s), %d layer(s)\n", img.Name, img.Digest.String()[:19], len(img.Layers))

	// 2. The image's own command.
	out, _ := run(ctx, store, img, nil, false, false)
	fmt.Printf("the image's command says: %s", out)

	// 3. Change the root, then save the upper layer as a new image.
	out, upper := run(ctx, store, img, []string{"/bin/sh", "-c",
		"mkdir -p /opt && echo 'tool 1.0' > /opt/tool && rm /etc/motd && echo root changed the image in $(pwd)"}, true, true)
	fmt.Print(out)
	saved, err := store.Save(ctx, img, upper.dir, image.SaveOptions{Name: "box:tooled", UID: upper.uid, GID: upper.gid})
	upper.close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("saved %s (%s), %d layers\n", saved.Name, saved.Digest.String()[:19], len(saved.Layers))

	// 4. The new image and the old.
	out, _ = run(ctx, store, saved, []string{"/bin/sh", "-c", "cat /opt/tool; cat /etc/motd 2>&1 || true"}, false, false)
	fmt.Printf("box:tooled: %s", out)
	out, _ = run(ctx, store, img, []string{"/bin/sh", "-c", "cat /opt/tool 2>/dev/null || echo no tool; cat /etc/motd"}, false, false)
	fmt.Printf("box:1 again: %s", out)
}

// upperLayer is a finished sandbox whose upper layer is still to be read.
type upperLayer struct {
	dir      string
	uid, gid int
	close    func()
}

// run runs args (nil: the image's command) in a sandbox on img and returns
// its output, as the image's user or as root (never host root, and with
// no capabilities); with keep, the sandbox is left unclosed so that its upper
// layer can be saved.
func run(ctx context.Context, store *image.Store, img *image.Image, args []string, asRoot, keep bool) (string, *upperLayer) {
	dirs, err := store.Unpack(ctx, img, nil) // already unpacked: just the paths
	if err != nil {
		log.Fatal(err)
	}
	rt, err := img.Runtime(dirs, args == nil)
	if err != nil {
		log.Fatal(err)
	}
	var out strings.Builder
	cfg := sandbox.Config{Args: args, Stdout: &out, Stderr: &out, Overlay: &sandbox.Overlay{}, RunAsRoot: asRoot}
	rt.Apply(&cfg) // Overlay.Layers, Env, Dir, the user (unless set), the command
	sb := sandbox.New(cfg)
	if _, err := sb.Run(ctx); err != nil {
		log.Fatalf("%v: %s", err, out.String())
	}
	if !keep {
		sb.Close() // the upper layer goes with it
		return out.String(), nil
	}
	dir, err := sb.Upper()
	if err != nil {
		log.Fatal(err)
	}
	uid, gid := cfg.UID, cfg.GID
	if cfg.RunAsRoot {
		uid, gid = 0, 0
	}
	return out.String(), &upperLayer{dir: dir, uid: uid, gid: gid, close: func() { sb.Close() }}
}

// buildImage writes an OCI layout holding "box:1": a static busybox with
// its shell, an /etc/motd, a user "app", and a command that greets.
func buildImage(dir string) error {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("this example needs a static /bin/busybox (apt-get install busybox-static): %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, typ byte, mode int64, body, link string) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: int64(len(body)), Linkname: link})
		io.WriteString(tw, body)
	}
	for _, d := range []string{"bin", "etc", "proc", "dev", "tmp", "work", "home", "home/app"} {
		add(d+"/", tar.TypeDir, 0o755, "", "")
	}
	add("bin/busybox", tar.TypeReg, 0o755, string(bb), "")
	for _, applet := range []string{"sh", "cat", "echo", "mkdir", "rm", "pwd", "id"} {
		add("bin/"+applet, tar.TypeSymlink, 0o777, "", "busybox")
	}
	add("etc/motd", tar.TypeReg, 0o644, "welcome to box\n", "")
	add("etc/passwd", tar.TypeReg, 0o644, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n", "")
	add("etc/group", tar.TypeReg, 0o644, "root:x:0:\napp:x:1000:\n", "")
	if err := tw.Close(); err != nil {
		return err
	}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		mutate.Addendum{Layer: static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer)})
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.RootFS.DiffIDs = []v1.Hash{mustHash(buf.Bytes())}
	cf.Config = v1.Config{
		Env:        []string{"PATH=/bin", "GREETING=hello from the image"},
		WorkingDir: "/home/app",
		User:       "app", // resolved through the image's own /etc/passwd
		Cmd:        []string{"/bin/sh", "-c", `echo "$GREETING, I am $(id -un) in $(pwd)"`},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return lp.AppendImage(img, layout.WithAnnotations(map[string]string{image.RefNameAnnotation: "box:1"}))
}

func mustHash(b []byte) v1.Hash {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		log.Fatal(err)
	}
	return h
}

// removeStore removes the example's store: its images, then the directory.
func removeStore(store *image.Store) {
	imgs, _ := store.List(context.Background())
	for _, img := range imgs {
		store.Remove(context.Background(), img.Name)
	}
	os.RemoveAll(store.Dir())
}
