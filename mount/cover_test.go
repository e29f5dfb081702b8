//go:build linux

package mount

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCover covers files of a read-only root directory with generated
// ones, through a symbolic link inside the root too, and leaves a missing
// target alone; the root's own files are unchanged.
func TestCover(t *testing.T) {
	root := worldDir(t)
	etc := filepath.Join(root, "etc")
	require.NoError(t, os.MkdirAll(etc, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "hosts"), []byte("old hosts\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "run", "resolv"), []byte("old resolv\n"), 0o644))
	require.NoError(t, os.Symlink("../run/resolv", filepath.Join(etc, "resolv.conf")))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "dir"), 0o755))
	p := Plan{Root: Root{Dir: root}, Mounts: []Mount{
		{Kind: Cover, Target: "/etc/hosts", Data: []byte("new hosts\n"), Mode: 0o644},
		{Kind: Cover, Target: "/etc/resolv.conf", Data: []byte("new resolv\n"), Mode: 0o644},
		{Kind: Cover, Target: "/etc/missing", Data: []byte("x"), Mode: 0o644},
	}}
	got := apply(t, p, "read:/etc/hosts", "stat:/etc/hosts", "write:/etc/hosts",
		"read:/etc/resolv.conf", "read:/run/resolv", "ls:/etc", "ls:/")
	assert.Equal(t, []string{
		`read /etc/hosts: "new hosts\n" ok`,
		"stat /etc/hosts: 644 0 ok",
		"write /etc/hosts: EROFS",
		`read /etc/resolv.conf: "new resolv\n" ok`,
		`read /run/resolv: "new resolv\n" ok`,
		"ls /etc: hosts resolv.conf ok",
		"ls /: dir etc run ok", // the scratch tmpfs is gone from the root
	}, got)
	b, err := os.ReadFile(filepath.Join(etc, "hosts"))
	require.NoError(t, err)
	assert.Equal(t, "old hosts\n", string(b), "the root's own file is unchanged")

	// A directory cannot be covered.
	got = apply(t, Plan{Root: Root{Dir: root}, Mounts: []Mount{{Kind: Cover, Target: "/dir", Data: []byte("x")}}})
	assert.Equal(t, []string{"apply error: op=cover path=/dir err=not a regular file"}, got)
}
