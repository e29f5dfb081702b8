//go:build linux

package image

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// layerNames lists the entry names of a stored gzip'd layer.
func layerNames(t *testing.T, s *Store, l Layer) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(s.blobPath(l.Digest))
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	out := map[string]*tar.Header{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		out[hdr.Name] = hdr
	}
	return out
}

// TestSaveRoundTrip saves an upper layer in overlayfs format (as a
// sandbox leaves it) on top of the fixture, checks the OCI form of the new
// layer, unpacks it again, and exports and re-imports the image.
func TestSaveRoundTrip(t *testing.T) {
	s := openStore(t)
	src := t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"bb": busyboxImage(t)})
	base, err := s.Import(ctx, src, ImportOptions{})
	require.NoError(t, err)

	upper := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(upper, "srv", "out"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(upper, "srv", "out", "result"), []byte("42\n"), 0o640))
	require.NoError(t, os.Link(filepath.Join(upper, "srv", "out", "result"), filepath.Join(upper, "srv", "out", "again")))
	require.NoError(t, unix.Mknod(filepath.Join(upper, "srv", "hello.txt"), unix.S_IFCHR|0o600, 0)) // deleted
	require.NoError(t, os.Mkdir(filepath.Join(upper, "etc"), 0o755))
	require.NoError(t, unix.Setxattr(filepath.Join(upper, "etc"), overlayOpaqueXattr, []byte("y"), 0)) // replaced
	require.NoError(t, os.WriteFile(filepath.Join(upper, "etc", "motd"), []byte("new\n"), 0o644))
	require.NoError(t, os.Symlink("/srv/out/result", filepath.Join(upper, "latest")))

	// Saved through a /proc/self/fd link, as Sandbox.Upper names a tmpfs
	// upper layer.
	fd, err := os.Open(upper)
	require.NoError(t, err)
	defer fd.Close()
	saved, err := s.Save(ctx, base, fmt.Sprintf("/proc/self/fd/%d", fd.Fd()), SaveOptions{Name: "bb:saved", UID: 1000, GID: 1000})
	require.NoError(t, err)
	require.Len(t, saved.Layers, len(base.Layers)+1)
	assert.Equal(t, base.Layers, saved.Layers[:len(base.Layers)], "the base's layers are shared")
	assert.Equal(t, base.Config.Config.Cmd, saved.Config.Config.Cmd)
	assert.Equal(t, "stockade save", saved.Config.History[len(saved.Config.History)-1].CreatedBy)

	entries := layerNames(t, s, saved.Layers[len(saved.Layers)-1])
	var got []string
	for n := range entries {
		got = append(got, n)
	}
	sort.Strings(got)
	assert.Equal(t, []string{"etc/", "etc/.wh..wh..opq", "etc/motd", "latest", "srv/", "srv/.wh.hello.txt", "srv/out/", "srv/out/again", "srv/out/result"}, got)
	assert.Equal(t, byte(tar.TypeLink), entries["srv/out/result"].Typeflag, "the second name of a file is a hard link")
	assert.Equal(t, "srv/out/again", entries["srv/out/result"].Linkname)
	if os.Geteuid() != 0 {
		assert.Equal(t, 1000, entries["etc/motd"].Uid, "the caller's files are the sandbox user's")
	}

	// Unpacked again, the new layer is the upper layer.
	dirs, err := s.Unpack(ctx, saved, nil)
	require.NoError(t, err)
	top := dirs[len(dirs)-1]
	assert.True(t, isWhiteout(t, filepath.Join(top, "srv", "hello.txt")))
	assert.True(t, opaque(filepath.Join(top, "etc")))
	b, err := readImageFile(dirs, "srv/out/result")
	require.NoError(t, err)
	assert.Equal(t, "42\n", string(b))
	_, err = readImageFile(dirs, "etc/passwd")
	assert.ErrorIs(t, err, os.ErrNotExist, "the opaque /etc hides the base's")
	_, err = readImageFile(dirs, "srv/hello.txt")
	assert.ErrorIs(t, err, os.ErrNotExist)

	// Exported as a layout and as an archive, it imports elsewhere with the
	// same digest.
	out := t.TempDir()
	for _, dst := range []string{filepath.Join(out, "layout"), filepath.Join(out, "saved.tar")} {
		require.NoError(t, s.Export(ctx, "bb:saved", dst, ""))
		other := openStore(t)
		img, err := other.Import(ctx, dst, ImportOptions{Ref: "bb:saved"})
		require.NoError(t, err, dst)
		assert.Equal(t, saved.Digest, img.Digest, dst)
		b, err := readImageFile(mustUnpack(t, other, img), "etc/motd")
		require.NoError(t, err)
		assert.Equal(t, "new\n", string(b))
	}
}

func mustUnpack(t *testing.T, s *Store, img *Image) []string {
	t.Helper()
	dirs, err := s.Unpack(ctx, img, nil)
	require.NoError(t, err)
	return dirs
}
