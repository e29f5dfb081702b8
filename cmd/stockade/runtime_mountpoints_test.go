//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/sandbox"
)

// TestMakeMountPoints: the mount points a bundle's root lacks are made,
// directories or files as the mount needs, nothing inside the sandbox's
// own mounts, and nothing outside the root through a link.
func TestMakeMountPoints(t *testing.T) {
	host := t.TempDir()
	file := filepath.Join(host, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	root := filepath.Join(host, "rootfs")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "proc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "keep"), []byte("x"), 0o600))

	cfg := sandbox.Config{RootDir: root, Mounts: []sandbox.Mount{
		{Kind: sandbox.Bind, Source: host, Target: "/mnt/data"},
		{Kind: sandbox.Bind, Source: file, Target: "/etc/file"},
		{Kind: sandbox.Tmpfs, Target: "/scratch"},
		{Kind: sandbox.Tmpfs, Target: "/mnt/data/inside"},   // inside a mount: not on the root
		{Kind: sandbox.Tmpfs, Target: "/dev/mqueue"},        // inside the sandbox's /dev
		{Kind: sandbox.Bind, Source: file, Target: "/keep"}, // exists: left as it is
		{Kind: sandbox.Bind, Source: filepath.Join(host, "missing"), Target: "/missing"},
	}}
	require.NoError(t, makeMountPoints(&cfg))
	for _, d := range []string{"proc", "dev", "tmp", "mnt/data", "scratch"} {
		fi, err := os.Stat(filepath.Join(root, d))
		require.NoError(t, err, d)
		assert.True(t, fi.IsDir(), d)
	}
	fi, err := os.Stat(filepath.Join(root, "etc/file"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
	for _, p := range []string{"sys", "mnt/data/inside", "dev/mqueue", "missing"} {
		assert.NoFileExists(t, filepath.Join(root, p))
		assert.NoDirExists(t, filepath.Join(root, p))
	}
	assert.NoDirExists(t, filepath.Join(host, "inside"), "a mount point made in a bind's source")
	b, err := os.ReadFile(filepath.Join(root, "keep"))
	require.NoError(t, err)
	assert.Equal(t, "x", string(b))

	// A link in the root that points out of it is not followed.
	outside := filepath.Join(host, "outside")
	require.NoError(t, os.Mkdir(outside, 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "escape")))
	cfg.Mounts = []sandbox.Mount{{Kind: sandbox.Tmpfs, Target: "/escape/sub"}}
	assert.Error(t, makeMountPoints(&cfg))
	assert.NoDirExists(t, filepath.Join(outside, "sub"))

	// Without a root directory there is nothing to make.
	require.NoError(t, makeMountPoints(&sandbox.Config{}))
}
