//go:build linux

package image

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var ctx = context.Background()

func twoImages(t *testing.T) (v1.Image, v1.Image) {
	a := imageOf(t, v1.Config{}, tarOf(t, file("which", "a\n")))
	b := imageOf(t, v1.Config{}, tarOf(t, file("which", "b\n")))
	return a, b
}

func readLayerFile(t *testing.T, s *Store, img *Image, rel string) string {
	t.Helper()
	dirs, err := s.Unpack(ctx, img, nil)
	require.NoError(t, err)
	b, err := readImageFile(dirs, rel)
	require.NoError(t, err)
	return string(b)
}

func TestImportLayoutByTagAndDigest(t *testing.T) {
	a, b := twoImages(t)
	src := t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"a": a, "b": b})
	s := openStore(t)

	img, err := s.Import(ctx, src, ImportOptions{Ref: "b"})
	require.NoError(t, err)
	assert.Equal(t, "b", img.Name)
	assert.Equal(t, "b\n", readLayerFile(t, s, img, "which"))

	da, err := a.Digest()
	require.NoError(t, err)
	img, err = s.Import(ctx, src, ImportOptions{Ref: da.String(), Name: "by-digest"})
	require.NoError(t, err)
	assert.Equal(t, da, img.Digest, "a layout's image keeps its manifest digest")
	assert.Equal(t, "a\n", readLayerFile(t, s, img, "which"))

	_, err = s.Import(ctx, src, ImportOptions{})
	assert.ErrorContains(t, err, "holds 2 images")
	_, err = s.Import(ctx, src, ImportOptions{Ref: "c"})
	assert.ErrorIs(t, err, ErrNotFound)

	list, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "b", list[0].Name)
	assert.Equal(t, "by-digest", list[1].Name)
	got, err := s.Get(ctx, da.String()[:15])
	require.NoError(t, err)
	assert.Equal(t, "by-digest", got.Name)
}

func TestImportDockerSave(t *testing.T) {
	a, b := twoImages(t)
	src := filepath.Join(t.TempDir(), "save.tar")
	writeDockerSave(t, src, map[string]v1.Image{"example.com/a:1": a, "b:latest": b})
	s := openStore(t)

	img, err := s.Import(ctx, src, ImportOptions{Ref: "b"})
	require.NoError(t, err)
	assert.Equal(t, "b\n", readLayerFile(t, s, img, "which"))
	assert.Equal(t, string("application/vnd.oci.image.layer.v1.tar"), img.Layers[0].MediaType)

	id, err := a.ConfigName()
	require.NoError(t, err)
	img, err = s.Import(ctx, src, ImportOptions{Ref: id.String()})
	require.NoError(t, err)
	assert.Equal(t, "example.com/a:1", img.Name, "the image is named as in the source")
	assert.Equal(t, "a\n", readLayerFile(t, s, img, "which"))

	_, err = s.Import(ctx, src, ImportOptions{})
	assert.ErrorContains(t, err, "holds 2 images")
}

func TestImportOCIArchive(t *testing.T) {
	a, _ := twoImages(t)
	dir := t.TempDir()
	writeLayout(t, filepath.Join(dir, "layout"), map[string]v1.Image{"latest": a})
	archive := filepath.Join(dir, "a.tar")
	require.NoError(t, tarDir(filepath.Join(dir, "layout"), archive))
	s := openStore(t)
	img, err := s.Import(ctx, archive, ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, "latest", img.Name)
	assert.Equal(t, "a\n", readLayerFile(t, s, img, "which"))
	tmp, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	require.NoError(t, err)
	assert.Empty(t, tmp, "the archive's temporary layout is removed")
}

// importOne imports an image of the given layers and returns its unpacked
// layer directories.
func importOne(t *testing.T, s *Store, layers ...[]byte) ([]string, error) {
	t.Helper()
	src := t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"x": imageOf(t, v1.Config{}, layers...)})
	img, err := s.Import(ctx, src, ImportOptions{NoUnpack: true})
	require.NoError(t, err)
	return s.Unpack(ctx, img, nil)
}

func isWhiteout(t *testing.T, p string) bool {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(p, &st), p)
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func opaque(p string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(p, overlayOpaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestWhiteoutsAndOpaqueDirs(t *testing.T) {
	s := openStore(t)
	lower := tarOf(t, dir("d"), file("d/x", "x"), file("d/y", "y"), file("f", "f"), dir("e"), file("e/gone", "g"))
	upper := tarOf(t,
		file(".wh.f", ""),
		dir("d"), file("d/.wh.x", ""), // redundant once d is opaque
		file("d/.wh..wh..opq", ""), file("d/z", "z"),
		file("e/.wh.gone", ""),
		file("new/.wh..wh..opq", ""), // an opaque directory the tar never lists
	)
	dirs, err := importOne(t, s, lower, upper)
	require.NoError(t, err)
	top := dirs[1]
	assert.True(t, isWhiteout(t, filepath.Join(top, "f")))
	assert.True(t, isWhiteout(t, filepath.Join(top, "e", "gone")))
	assert.True(t, opaque(filepath.Join(top, "d")))
	assert.Equal(t, []string{"z"}, names(t, filepath.Join(top, "d")), "no whiteout inside an opaque directory")
	assert.True(t, opaque(filepath.Join(top, "new")))
	assert.False(t, opaque(filepath.Join(top, "e")))
	assert.Equal(t, []string{"d", "e", "f"}, names(t, dirs[0]))
	_, err = os.Stat(filepath.Join(top, ".wh.f"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// The image as overlayfs shows it: f and e/gone are gone, d holds z.
	_, err = readImageFile(dirs, "f")
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = readImageFile(dirs, "d/x")
	assert.ErrorIs(t, err, os.ErrNotExist)
	b, err := readImageFile(dirs, "d/z")
	require.NoError(t, err)
	assert.Equal(t, "z", string(b))
}

func TestHardLinks(t *testing.T) {
	s := openStore(t)
	dirs, err := importOne(t, s, tarOf(t, dir("a"), file("a/f", "data"), hardlink("a/g", "a/f"), hardlink("h", "/a/f")))
	require.NoError(t, err)
	var st1, st2, st3 unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dirs[0], "a/f"), &st1))
	require.NoError(t, unix.Lstat(filepath.Join(dirs[0], "a/g"), &st2))
	require.NoError(t, unix.Lstat(filepath.Join(dirs[0], "h"), &st3))
	assert.Equal(t, st1.Ino, st2.Ino)
	assert.Equal(t, st1.Ino, st3.Ino)
	assert.EqualValues(t, 3, st1.Nlink)

	// A hard link to something not in the layer is refused, however it is
	// spelled; the host's file is not linked.
	var host unix.Stat_t
	require.NoError(t, unix.Stat("/etc/passwd", &host))
	for _, target := range []string{"/etc/passwd", "../../../../../../etc/passwd", "missing"} {
		_, err := importOne(t, openStore(t), tarOf(t, hardlink("p", target)))
		assert.ErrorContains(t, err, "is not in this layer", target)
	}
	// Through a symbolic link of the layer: resolved inside the layer.
	_, err = importOne(t, openStore(t), tarOf(t, symlink("l", "/etc"), hardlink("p", "l/passwd")))
	assert.ErrorContains(t, err, "not in this layer")
	var after unix.Stat_t
	require.NoError(t, unix.Stat("/etc/passwd", &after))
	assert.Equal(t, host.Nlink, after.Nlink)
}

// TestLinksOutOfTheRoot plants symbolic links that point out of the layer
// and writes through them: every write stays inside the layer directory.
func TestLinksOutOfTheRoot(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "passwd"), []byte("host\n"), 0o644))
	s := openStore(t)
	dirs, err := importOne(t, s, tarOf(t,
		symlink("a", outside),
		file("a/passwd", "evil\n"),
		symlink("b", "../../../../../../../../.."+outside),
		file("b/new", "evil\n"),
		file("../../../../"+outside+"/dotdot", "evil\n"),
		dir("c"), symlink("c/up", "../../.."), file("c/up/"+outside+"/viaup", "evil\n"),
	))
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(outside, "passwd"))
	require.NoError(t, err)
	assert.Equal(t, "host\n", string(b), "a write through a link reached the host")
	assert.Equal(t, []string{"passwd"}, names(t, outside), "a file was created outside the layer")
	// What was written landed inside the layer: a link that resolves to
	// nothing inside it became a directory of the layer, and c/up resolves
	// to the layer's root.
	for _, p := range []string{"a/passwd", "b/new", outside + "/dotdot", outside + "/viaup"} {
		b, err := os.ReadFile(filepath.Join(dirs[0], p))
		require.NoError(t, err, p)
		assert.Equal(t, "evil\n", string(b), p)
	}
}

func TestDevicesAndSetID(t *testing.T) {
	s := openStore(t)
	dev := entry{name: "dev/sda", typ: tar.TypeBlock, mode: 0o666, major: 8}
	chr := entry{name: "dev/mem", typ: tar.TypeChar, mode: 0o666, major: 1}
	suid := entry{name: "bin/su", typ: tar.TypeReg, mode: 0o4755, body: "#!", uid: 0}
	owned := entry{name: "home/app/f", typ: tar.TypeReg, mode: 0o2640, body: "x", uid: 1234, gid: 2345}
	src := t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"x": imageOf(t, v1.Config{}, tarOf(t, dev, chr, suid, owned, entry{name: "fifo", typ: tar.TypeFifo, mode: 0o600}))})
	var stats *UnpackStats
	img, err := s.Import(ctx, src, ImportOptions{Progress: func(p Progress) {
		if p.Stats != nil {
			stats = p.Stats
		}
	}})
	require.NoError(t, err)
	require.NotNil(t, stats, "the last report of a fresh unpack carries its stats")
	assert.Equal(t, []string{"dev/sda", "dev/mem"}, stats.Devices, "the skipped devices are recorded")
	dirs, err := s.Unpack(ctx, img, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"bin", "fifo", "home"}, names(t, dirs[0]), "device nodes are never made")
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dirs[0], "bin/su"), &st))
	var own unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dirs[0], "home/app/f"), &own))
	if os.Geteuid() == 0 {
		assert.EqualValues(t, 0o4755, st.Mode&0o7777, "host root keeps set-id bits in its 0700 store")
		assert.EqualValues(t, 1234, own.Uid)
		assert.EqualValues(t, 2345, own.Gid)
		assert.EqualValues(t, 0o2640, own.Mode&0o7777)
	} else {
		assert.EqualValues(t, 0o755, st.Mode&0o7777, "a rootless unpack drops set-id bits")
		assert.EqualValues(t, os.Getuid(), own.Uid)
		assert.EqualValues(t, os.Getgid(), own.Gid)
		assert.EqualValues(t, 0o640, own.Mode&0o7777)
	}
	fi, err := os.Stat(s.Dir())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

func TestDigestsAreChecked(t *testing.T) {
	s := openStore(t)
	src := t.TempDir()
	lp := writeLayout(t, src, map[string]v1.Image{"x": imageOf(t, v1.Config{}, tarOf(t, file("f", "good")))})
	img, err := s.Import(ctx, src, ImportOptions{NoUnpack: true})
	require.NoError(t, err)
	_ = lp

	// A blob changed in the store after its import: the unpack fails and
	// leaves no layer and no temporary directory behind.
	blob := s.blobPath(img.Layers[0].Digest)
	require.NoError(t, os.Chmod(blob, 0o600))
	require.NoError(t, os.WriteFile(blob, []byte("not the layer"), 0o600))
	_, err = s.Unpack(ctx, img, nil)
	require.Error(t, err)
	_, err = os.Stat(s.LayerDir(img.Layers[0].DiffID))
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Empty(t, names(t, filepath.Join(s.Dir(), "tmp")))

	// A diff id that does not match the layer's content.
	bad := *img
	bad.Layers = append([]Layer{}, img.Layers...)
	s2 := openStore(t)
	img2, err := s2.Import(ctx, src, ImportOptions{NoUnpack: true})
	require.NoError(t, err)
	bad = *img2
	bad.Layers = []Layer{img2.Layers[0]}
	bad.Layers[0].DiffID = img2.Layers[0].Digest
	_, err = s2.Unpack(ctx, &bad, nil)
	assert.True(t, errors.Is(err, ErrDigest), "%v", err)

	// A source whose blob does not match its digest is refused at import.
	for _, e := range names(t, filepath.Join(src, "blobs", "sha256")) {
		p := filepath.Join(src, "blobs", "sha256", e)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		if len(b) > 0 && b[0] == 0x1f { // the gzip'd layer
			require.NoError(t, os.WriteFile(p, append(b, 0), 0o644))
		}
	}
	// One whose second layer is bad, after a good first one.
	two := imageOf(t, v1.Config{}, tarOf(t, file("a", "a")), tarOf(t, file("b", "b")))
	src = t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"two": two})
	ls, err := two.Layers()
	require.NoError(t, err)
	d, err := ls[1].Digest()
	require.NoError(t, err)
	p := filepath.Join(src, "blobs", "sha256", d.Hex)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, append(b, 0), 0o644))
	s3 := openStore(t)
	_, err = s3.Import(ctx, src, ImportOptions{})
	assert.ErrorIs(t, err, ErrDigest)
	assert.Empty(t, names(t, filepath.Join(s3.Dir(), "blobs", "sha256")), "a failed import leaves no blob behind")
	assert.Empty(t, names(t, filepath.Join(s3.Dir(), "tmp")))
}

func TestRuntimeConfig(t *testing.T) {
	s := openStore(t)
	src := t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"bb": busyboxImage(t)})
	img, err := s.Import(ctx, src, ImportOptions{})
	require.NoError(t, err)
	dirs, err := s.Unpack(ctx, img, nil)
	require.NoError(t, err)

	rt, err := img.Runtime(dirs, false)
	require.NoError(t, err)
	assert.Nil(t, rt.Args, "the image's command only on request")
	assert.Equal(t, []string{"PATH=/bin", "GREETING=hi"}, rt.Env)
	assert.Equal(t, "/srv", rt.Dir)
	assert.True(t, rt.Root, "no User is root")
	rt, err = img.Runtime(dirs, true)
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/cat", "hello.txt"}, rt.Args)

	for user, want := range map[string][2]int{"app": {1234, 2345}, "1234": {1234, 2345}, "app:staff": {1234, 50}, "77:88": {77, 88}, "77": {77, 0}} {
		img.Config.Config.User = user
		rt, err := img.Runtime(dirs, false)
		require.NoError(t, err, user)
		assert.Equal(t, want, [2]int{rt.UID, rt.GID}, user)
		assert.False(t, rt.Root)
	}
	for _, user := range []string{"nobody", "app:wheel"} {
		img.Config.Config.User = user
		_, err := img.Runtime(dirs, false)
		assert.ErrorContains(t, err, "no ", user)
	}
}

// TestPasswdLinkIsNotFollowed: an image whose /etc/passwd is a symbolic
// link out of it cannot make the store read a host file.
func TestPasswdLinkIsNotFollowed(t *testing.T) {
	s := openStore(t)
	dirs, err := importOne(t, s, tarOf(t, dir("etc"), symlink("etc/passwd", "/etc/passwd")))
	require.NoError(t, err)
	_, _, err = resolveUser(dirs, "root")
	assert.ErrorContains(t, err, "not a plain file")
}

func TestRemoveCollects(t *testing.T) {
	s := openStore(t)
	a, b := twoImages(t)
	src := t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"a": a, "b": b})
	ia, err := s.Import(ctx, src, ImportOptions{Ref: "a"})
	require.NoError(t, err)
	ib, err := s.Import(ctx, src, ImportOptions{Ref: "b"})
	require.NoError(t, err)
	_, err = s.Import(ctx, src, ImportOptions{Ref: "a", Name: "a2"})
	require.NoError(t, err)
	require.NoError(t, s.Remove(ctx, "a"))
	_, err = os.Stat(s.LayerDir(ia.Layers[0].DiffID))
	assert.NoError(t, err, "a2 still uses the layer")
	require.NoError(t, s.Remove(ctx, "a2"))
	_, err = os.Stat(s.LayerDir(ia.Layers[0].DiffID))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(s.LayerDir(ib.Layers[0].DiffID))
	assert.NoError(t, err)
	assert.ErrorIs(t, s.Remove(ctx, "a"), ErrNotFound)
	blobs := names(t, filepath.Join(s.Dir(), "blobs", "sha256"))
	assert.Len(t, blobs, 3, "b's manifest, config and layer: %s", strings.Join(blobs, " "))
}

// TestImportPicksThePlatform: an index for several platforms gives the
// image of this host's.
func TestImportPicksThePlatform(t *testing.T) {
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	mine := imageOf(t, v1.Config{}, tarOf(t, file("which", "mine\n")))
	theirs := imageOf(t, v1.Config{}, tarOf(t, file("which", "theirs\n")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: theirs, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	src := t.TempDir()
	lp, err := layout.Write(src, empty.Index)
	require.NoError(t, err)
	require.NoError(t, lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: "multi"})))
	s := openStore(t)
	img, err := s.Import(ctx, src, ImportOptions{Ref: "multi"})
	require.NoError(t, err)
	assert.Equal(t, "mine\n", readLayerFile(t, s, img, "which"))

	// An index without this host's platform is refused by name.
	only := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: theirs, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}})
	src2 := t.TempDir()
	lp, err = layout.Write(src2, empty.Index)
	require.NoError(t, err)
	require.NoError(t, lp.AppendIndex(only))
	_, err = s.Import(ctx, src2, ImportOptions{})
	assert.ErrorContains(t, err, "no image for linux/"+runtime.GOARCH)
}
