//go:build linux

package mount

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// TestOpenSourceLinks: openSource follows the links root owns, wherever
// they are in the path, and refuses one that another user owns, the
// last component as an earlier one.
func TestOpenSourceLinks(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(target, "sub", "file"), nil, 0o644))
	link := func(name, to string, uid int) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.Symlink(to, p))
		require.NoError(t, os.Lchown(p, uid, uid))
		return p
	}
	rootAbs := link("root-abs", target, 0)
	rootRel := link("root-rel", "target/sub", 0)
	userAbs := link("user-abs", target, 1234)
	link("loop", "loop", 0)
	var want unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(target, "sub", "file"), &want))

	for _, tc := range []struct {
		path string
		err  error // nil: resolves to target/sub/file
	}{
		{filepath.Join(target, "sub", "file"), nil},
		{filepath.Join(rootAbs, "sub", "file"), nil},
		{filepath.Join(rootRel, "file"), nil},
		{rootRel + "/../sub/./file", nil},
		{filepath.Join(userAbs, "sub", "file"), ErrUntrustedLink},
		{userAbs, ErrUntrustedLink},
		{link("user-last", filepath.Join(target, "sub", "file"), 1234), ErrUntrustedLink},
		{filepath.Join(link("root-to-user", userAbs, 0), "sub", "file"), ErrUntrustedLink},
		{filepath.Join(dir, "loop"), unix.ELOOP},
		{filepath.Join(dir, "missing"), unix.ENOENT},
	} {
		fd, err := openSource(tc.path)
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, tc.path)
			assert.Equal(t, -1, fd, tc.path)
			continue
		}
		require.NoError(t, err, tc.path)
		var st unix.Stat_t
		require.NoError(t, unix.Fstat(fd, &st))
		unix.Close(fd)
		assert.Equal(t, [2]uint64{want.Dev, want.Ino}, [2]uint64{st.Dev, st.Ino}, tc.path)
	}
}
