//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/imagetest"
	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(unpackHelper(dir, os.Getenv(helperRefEnv)))
	}
	testutil.Main(m)
}

// entry is one tar entry of a test layer.
type entry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
	uid, gid   int
	major      int64
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) entry { return entry{name: name, typ: tar.TypeLink, link: target} }

// tarOf writes entries as a tar stream.
func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body)),
			Uid: e.uid, Gid: e.gid, Devmajor: e.major, ModTime: time.Unix(1700000000, 0)}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if hdr.Size > 0 {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// tarOfDir writes a directory tree (the busybox root) as a tar stream, as
// root-owned entries.
func tarOfDir(t testing.TB, root string) []byte {
	t.Helper()
	data, err := imagetest.TarDir(root)
	require.NoError(t, err)
	return data
}

// imageOf stacks tar streams (lowest first) into an OCI image for this host.
func imageOf(t testing.TB, cfg v1.Config, layers ...[]byte) v1.Image {
	t.Helper()
	img, err := imagetest.Image(cfg, layers...)
	require.NoError(t, err)
	return img
}

// writeLayout writes the images, named by their keys, as an OCI layout.
func writeLayout(t testing.TB, dir string, imgs map[string]v1.Image) layout.Path {
	t.Helper()
	lp, err := imagetest.WriteLayout(dir, imgs)
	require.NoError(t, err)
	return lp
}

// writeDockerSave writes the images, named by their keys, as docker save
// does.
func writeDockerSave(t testing.TB, file string, imgs map[string]v1.Image) {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for n, img := range imgs {
		tag, err := name.NewTag(n)
		require.NoError(t, err)
		refs[tag] = img
	}
	require.NoError(t, tarball.MultiRefWriteToFile(file, refs))
}

// busyboxImage is the test fixture: the busybox root of the other tests as
// one layer, with an /etc/passwd and a second layer on top.
func busyboxImage(t testing.TB) v1.Image {
	t.Helper()
	root := testutil.BusyboxRoot(t)
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "passwd"),
		[]byte("root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644))
	top := tarOf(t, dir("srv"), file("srv/hello.txt", "hello from the image\n"))
	return imageOf(t, v1.Config{
		Env:        []string{"PATH=/bin", "GREETING=hi"},
		WorkingDir: "/srv",
		Cmd:        []string{"/bin/cat", "hello.txt"},
	}, tarOfDir(t, root), top)
}

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "store"))
	require.NoError(t, err)
	// A rootless unpack's read-only directories would stop TempDir's
	// removal.
	t.Cleanup(func() { removeAll(s.Dir()) })
	return s
}
