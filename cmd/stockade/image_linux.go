//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/stockade/stockade/image"
)

const imageHelp = `Usage: stockade image [--store DIR] COMMAND ...

Manages the image store: OCI images whose layers are unpacked once each and
shared by every sandbox that runs them ('stockade run --image'). The store
is DIR, by default $XDG_CACHE_HOME/stockade/images (~/.cache/...), mode 0700.

Commands:
  ls                              list the images: name, digest, size, age
  import [--name NAME] SOURCE     import an OCI layout directory, an OCI
                                  archive or a docker save tar; SOURCE may
                                  end in :TAG or @sha256:DIGEST to pick one
                                  of several images
  save [--from IMAGE] [--uid N] [--gid N] UPPER NAME
                                  make the upper layer a sandbox left
                                  (run --image ... --keep-upper UPPER) a new
                                  image NAME on top of IMAGE; --uid/--gid: the
                                  ids the caller's files get (for an ordinary
                                  user: the sandbox's user, 0 for --as-root)
  export IMAGE DEST               write IMAGE as an OCI layout directory, or
                                  as an OCI archive when DEST ends in .tar
  rm NAME...                      remove images, and the layers no other
                                  image uses

Flags:
%s
Unpacking shows its progress on stderr when stderr is a terminal, or with
--progress.

Examples:
  docker save alpine:3.19 > alpine.tar          # elsewhere
  stockade image import alpine.tar:alpine:3.19
  stockade image ls
  stockade run --image alpine:3.19 -- /bin/sh -c 'apk info | head -3'
  stockade image export alpine:3.19 ./alpine-layout
`

// imageCommand is "stockade image".
func imageCommand(args []string, sio stdio) (int, error) {
	p := newParser("image")
	storeDir := p.fs.String("store", "", "the image store's directory")
	progress := p.fs.Bool("progress", false, "show the unpacking's progress even when stderr is no terminal")
	help := p.fs.BoolP("help", "h", false, "show this help")
	rest, err := p.parse(args)
	if err != nil {
		return exitUsage, err
	}
	if *help || len(rest) == 0 {
		fmt.Fprintf(sio.out, imageHelp, p.fs.FlagUsagesWrapped(100))
		if len(rest) == 0 && !*help {
			return exitUsage, nil
		}
		return 0, nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := image.Open(*storeDir)
	if err != nil {
		return 1, err
	}
	sub, rest := rest[0], rest[1:]
	switch sub {
	case "ls":
		if len(rest) > 0 {
			return exitUsage, usagef("ls takes no arguments")
		}
		imgs, err := st.List(ctx)
		if err != nil {
			return 1, err
		}
		tw := tabwriter.NewWriter(sio.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tDIGEST\tLAYERS\tSIZE\tCREATED")
		for _, img := range imgs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", img.Name, img.Digest.String()[:19], len(img.Layers), mib(img.Size()), ago(img.Created))
		}
		return 0, tw.Flush()
	case "import":
		ip := newParser("image import")
		name := ip.fs.String("name", "", "the image's name in the store (default: its tag, or the name the source gives it)")
		rest, err := ip.parse(rest)
		if err != nil {
			return exitUsage, err
		}
		if len(rest) != 1 {
			return exitUsage, usagef("import takes one SOURCE")
		}
		img, err := importImage(ctx, st, rest[0], *name, progressTo(sio.err, *progress))
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(sio.out, "%s %s\n", img.Name, img.Digest)
		return 0, nil
	case "save":
		sp := newParser("image save")
		from := sp.fs.String("from", "", "the image the upper layer was run on (default: none, an image of the layer alone)")
		uid := sp.fs.Int("uid", 1000, "the uid the caller's own files get, for an ordinary user")
		gid := sp.fs.Int("gid", 1000, "the gid the caller's own files get, for an ordinary user")
		rest, err := sp.parse(rest)
		if err != nil {
			return exitUsage, err
		}
		if len(rest) != 2 {
			return exitUsage, usagef("save takes UPPER and NAME")
		}
		var base *image.Image
		if *from != "" {
			if base, err = st.Get(ctx, *from); err != nil {
				return 1, err
			}
		}
		img, err := st.Save(ctx, base, rest[0], image.SaveOptions{Name: rest[1], UID: *uid, GID: *gid})
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(sio.out, "%s %s\n", img.Name, img.Digest)
		return 0, nil
	case "export":
		if len(rest) != 2 {
			return exitUsage, usagef("export takes IMAGE and DEST")
		}
		return 0, st.Export(ctx, rest[0], rest[1], "")
	case "rm":
		if len(rest) == 0 {
			return exitUsage, usagef("rm takes at least one NAME")
		}
		for _, n := range rest {
			if err := st.Remove(ctx, n); err != nil {
				return 1, err
			}
		}
		return 0, nil
	}
	return exitUsage, usagef("unknown image command %q", sub)
}

// splitSource splits SOURCE[:TAG] or SOURCE@DIGEST. A path that exists as
// it is has no tag.
func splitSource(src string) (string, string) {
	if _, err := os.Stat(src); err == nil {
		return src, ""
	}
	if i := strings.LastIndex(src, "@sha256:"); i > 0 {
		return src[:i], src[i+1:]
	}
	// The tag may itself hold a colon (alpine.tar:alpine:3.19): take the
	// longest prefix that exists.
	for i := 0; i < len(src); i++ {
		if src[i] != ':' {
			continue
		}
		if _, err := os.Stat(src[:i]); err == nil {
			return src[:i], src[i+1:]
		}
	}
	return src, ""
}

// importImage imports SOURCE[:TAG] into the store.
func importImage(ctx context.Context, st *image.Store, source, name string, progress func(image.Progress)) (*image.Image, error) {
	path, ref := splitSource(source)
	return st.Import(ctx, path, image.ImportOptions{Ref: ref, Name: name, Progress: progress})
}

// progressTo returns a progress printer for w when w is a terminal or
// force is set, else nil.
func progressTo(w io.Writer, force bool) func(image.Progress) {
	f, ok := w.(*os.File)
	if !force && (!ok || !term.IsTerminal(int(f.Fd()))) {
		return nil
	}
	last := time.Time{}
	return func(p image.Progress) {
		done := p.Done >= p.Total
		if !done && time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		state := "unpacking"
		if p.Cached {
			state = "unpacked already"
		}
		fmt.Fprintf(w, "\rlayer %d/%d %s %s %s/%s ", p.Layer+1, p.Layers, p.DiffID.String()[:19], state, mib(p.Done), mib(p.Total))
		if p.Stats != nil && len(p.Stats.Devices) > 0 {
			fmt.Fprintf(w, "\nlayer %d/%d: %d device nodes left out (a sandbox has its own /dev)", p.Layer+1, p.Layers, len(p.Stats.Devices))
		}
		if done {
			fmt.Fprintln(w)
		}
	}
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}
