//go:build linux

package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// TestGivenRootWithoutWork checks that a read-only RootDir without /work
// runs with Dir unset: the working directory is then the root itself,
// with no tmpfs, instead of a mount point the root cannot hold (EROFS).
func TestGivenRootWithoutWork(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		root := testutil.BusyboxRoot(t)
		require.NoError(t, os.Remove(filepath.Join(root, "work")))
		cfg := Config{Args: []string{"/bin/sh", "-c", `pwd; echo "$HOME"; if touch x 2>/dev/null; then echo writable; fi`}, RootDir: root}
		assert.Equal(t, "/\n/\n", mustRun(t, cfg))
		_, err := os.Stat(filepath.Join(root, "work"))
		assert.True(t, errors.Is(err, os.ErrNotExist), "the root was changed: %v", err)

		// Exec's default working directory is the same.
		sb := New(testConfig(Config{RootDir: root}))
		require.NoError(t, sb.Start(testCtx(t)))
		defer sb.Close()
		out, err := sb.Command("/bin/sh", "-c", "pwd").Output(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "/\n", string(out))

		// With /work, the default stays a fresh tmpfs there.
		require.NoError(t, os.Mkdir(filepath.Join(root, "work"), 0o755))
		assert.Equal(t, "/work\n/work\nwritable\n", mustRun(t, cfg))
	})
}
