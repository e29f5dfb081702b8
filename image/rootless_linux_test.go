//go:build linux

package image

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// rootlessUserEnv names the ordinary user the rootless unpack runs as when
// the tests run as root (.ci/run creates it), as in the examples' tests.
const rootlessUserEnv = "STOCKADE_TEST_ROOTLESS_USER"

// rootlessSourceEnv hands the fixture layout to the copy of this test that
// runs as that user.
const rootlessSourceEnv = "STOCKADE_IMAGE_ROOTLESS_SOURCE"

func rootlessFixture(t *testing.T, dst string) {
	layer := tarOf(t,
		dir("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
		entry{name: "bin/su", typ: tar.TypeReg, mode: 0o4755, body: "#!"},
		entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1},
		entry{name: "ro", typ: tar.TypeDir, mode: 0o555}, file("ro/f", "f"),
		entry{name: "owned", typ: tar.TypeReg, mode: 0o644, body: "x", uid: 4242, gid: 4242},
	)
	top := tarOf(t, file("etc/.wh.passwd", ""), file("ro/.wh..wh..opq", ""), file("ro/g", "g"))
	writeLayout(t, dst, map[string]v1.Image{"r": imageOf(t, v1.Config{User: "1000"}, layer, top)})
}

// TestRootlessUnpack unpacks as an ordinary user: every file is the
// caller's, set-id bits and devices are dropped, whiteouts and opaque
// directories are still made, and the store can be removed again. As root
// it runs itself as STOCKADE_TEST_ROOTLESS_USER, with setpriv.
func TestRootlessUnpack(t *testing.T) {
	if os.Geteuid() == 0 {
		user := os.Getenv(rootlessUserEnv)
		if user == "" {
			testutil.Skip(t, rootlessUserEnv+" names no ordinary user to unpack as", "create one and set it, as .ci/run does")
		}
		dir, err := os.MkdirTemp("", "stockade-image-rootless-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		require.NoError(t, os.Chmod(dir, 0o755))
		rootlessFixture(t, filepath.Join(dir, "src"))
		require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				err = os.Chmod(p, fi.Mode().Perm()|0o444|(fi.Mode().Perm()&0o100)*0o11)
			}
			return err
		}))
		bin := filepath.Join(dir, "image.test")
		copyFile(t, os.Args[0], bin)
		cmd := exec.Command("setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "--reset-env",
			"env", rootlessSourceEnv+"="+filepath.Join(dir, "src"), testutil.RequirePrivilegedEnv+"=1",
			bin, "-test.run=^TestRootlessUnpack$", "-test.v")
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "--- PASS: TestRootlessUnpack")
		return
	}
	src := os.Getenv(rootlessSourceEnv)
	if src == "" {
		src = t.TempDir()
		rootlessFixture(t, src)
	}
	s := openStore(t)
	img, err := s.Import(ctx, src, ImportOptions{})
	require.NoError(t, err)
	dirs, err := s.Unpack(ctx, img, nil)
	require.NoError(t, err)
	require.NoError(t, filepath.Walk(dirs[0], func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		assert.EqualValues(t, os.Getuid(), st.Uid, p)
		assert.EqualValues(t, os.Getgid(), st.Gid, p)
		assert.Zero(t, st.Mode&(unix.S_ISUID|unix.S_ISGID), p)
		return nil
	}))
	_, err = os.Lstat(filepath.Join(dirs[0], "dev", "null"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	fi, err := os.Stat(filepath.Join(dirs[0], "ro"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o555), fi.Mode().Perm())
	assert.True(t, isWhiteout(t, filepath.Join(dirs[1], "etc", "passwd")), "an ordinary user makes whiteouts (Linux 5.8)")
	assert.True(t, opaque(filepath.Join(dirs[1], "ro")))
	rt, err := img.Runtime(dirs, false)
	require.NoError(t, err)
	assert.Equal(t, 1000, rt.UID)
	// The read-only directory does not stop the store from removing it.
	require.NoError(t, s.Remove(ctx, "r"))
	assert.Empty(t, names(t, filepath.Join(s.Dir(), "layers", "sha256")))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
