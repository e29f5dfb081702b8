//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// busyboxImage writes the busybox root of the run tests, with
// /srv/hello.txt, as an OCI layout image named "bb" whose command cats it
// in its working directory /srv.
func busyboxImage(t *testing.T) string {
	root := busyboxRoot(t)
	require.NoError(t, os.Mkdir(filepath.Join(root, "srv"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "srv", "hello.txt"), []byte("hello from the image\n"), 0o644))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link, _ := os.Readlink(p)
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name, _ = filepath.Rel(root, p)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			_, err = tw.Write(b)
		}
		return err
	}))
	require.NoError(t, tw.Close())
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	require.NoError(t, err)
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: l})
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Env: []string{"PATH=/bin"}, WorkingDir: "/srv", Cmd: []string{"cat", "hello.txt"}}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	require.NoError(t, err)
	require.NoError(t, lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "bb"})))
	return dir
}

// TestRunImage: run --image imports the image and runs its command; a run
// with --save keeps what it wrote as a new image, which runs by name.
func TestRunImage(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	src := busyboxImage(t)
	store := filepath.Join(t.TempDir(), "store")

	status, out, errs := stockadeRun(t, "--image-store", store, "--image", src+":bb")
	require.Equal(t, 0, status, "%s%s", out, errs)
	assert.Equal(t, "hello from the image\n", out)

	status, out, errs = stockadeRun(t, "--image-store", store, "--image", "bb", "--root", "--save", "bb:2",
		"--", "sh", "-c", "echo made > /srv/made && rm hello.txt && pwd")
	require.Equal(t, 0, status, "%s%s", out, errs)
	assert.Equal(t, "/srv\n", out)
	assert.Contains(t, errs, "saved bb:2 sha256:")

	status, out, errs = stockadeRun(t, "--image-store", store, "--image", "bb:2", "--", "ls", "/srv")
	require.Equal(t, 0, status, "%s%s", out, errs)
	assert.Equal(t, "made\n", out)

	status, _, errs = stockadeRun(t, "--image-store", store, "--image", "nosuch", "--", "true")
	assert.Equal(t, exitSetup, status)
	assert.Contains(t, errs, "no such image")
	status, _, errs = stockadeRun(t, "--save", "x", "--", "true")
	assert.Equal(t, exitUsage, status)
	assert.Contains(t, errs, "need --image")
}
