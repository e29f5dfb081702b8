//go:build linux

package image

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/sandbox"
)

// runImage runs args in a sandbox on img, as root inside, and returns its
// output and the sandbox (ended, not closed).
func runImage(t *testing.T, s *Store, img *Image, ov sandbox.Overlay, args ...string) (string, *sandbox.Sandbox) {
	t.Helper()
	dirs, err := s.Unpack(ctx, img, nil)
	require.NoError(t, err)
	rt, err := img.Runtime(dirs, len(args) == 0)
	require.NoError(t, err)
	var out bytes.Buffer
	cfg := sandbox.Config{Args: args, Overlay: &ov, Stdout: &out, Stderr: &out}
	rt.Apply(&cfg)
	sb := sandbox.New(cfg)
	t.Cleanup(func() { sb.Close() })
	res, err := sb.Run(ctx)
	require.NoError(t, err, "%s", out.String())
	require.Equal(t, 0, res.ExitCode, "%s", out.String())
	return out.String(), sb
}

// TestRunSaveRun is the whole round: the fixture image runs with a
// writable root, writes a file and deletes one of the image's; Save keeps
// that as a new image; the new image runs and sees both changes, and the
// old one is as it was.
func TestRunSaveRun(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	s := openStore(t)
	src := t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"bb": busyboxImage(t)})
	img, err := s.Import(ctx, src, ImportOptions{})
	require.NoError(t, err)

	out, _ := runImage(t, s, img, sandbox.Overlay{})
	assert.Equal(t, "hello from the image\n", out, "the image's own command, in its WorkingDir")

	var dir string
	if os.Geteuid() == 0 {
		dir = t.TempDir() // an upper layer on disk, for root
	}
	out, sb := runImage(t, s, img, sandbox.Overlay{Dir: dir}, "/bin/sh", "-c",
		"echo made > /srv/made && rm /srv/hello.txt && mkdir -p /etc && echo ok && id -u && pwd && echo $GREETING")
	assert.Equal(t, "ok\n0\n/srv\nhi\n", out)
	upper, err := sb.Upper()
	require.NoError(t, err)
	saved, err := s.Save(ctx, img, upper, SaveOptions{Name: "bb:saved"})
	require.NoError(t, err)
	require.NoError(t, sb.Close())

	out, _ = runImage(t, s, saved, sandbox.Overlay{}, "/bin/sh", "-c", "cat /srv/made; ls /srv")
	assert.Equal(t, "made\nmade\n", out, "the saved image holds the new file and not the deleted one")
	out, _ = runImage(t, s, img, sandbox.Overlay{}, "/bin/ls", "/srv")
	assert.Equal(t, "hello.txt\n", out, "the base image is unchanged")
	_, err = os.Stat(filepath.Join(s.LayerDir(saved.Layers[len(saved.Layers)-1].DiffID), "srv", "made"))
	assert.NoError(t, err)
}
