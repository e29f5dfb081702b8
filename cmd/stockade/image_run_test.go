//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/imagetest"
	"github.com/stockade/stockade/internal/testutil"
)

// busyboxImage writes the busybox root of the run tests, with
// /srv/hello.txt, as an OCI layout image named "bb" whose command cats it
// in its working directory /srv.
func busyboxImage(t *testing.T) string {
	root := busyboxRoot(t)
	require.NoError(t, os.Mkdir(filepath.Join(root, "srv"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "srv", "hello.txt"), []byte("hello from the image\n"), 0o644))
	layer, err := imagetest.TarDir(root)
	require.NoError(t, err)
	img, err := imagetest.Image(v1.Config{Env: []string{"PATH=/bin"}, WorkingDir: "/srv", Cmd: []string{"cat", "hello.txt"}}, layer)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "layout")
	_, err = imagetest.WriteLayout(dir, map[string]v1.Image{"bb": img})
	require.NoError(t, err)
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
