//go:build linux && (amd64 || arm64)

package mount

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// TestIDMapSource: on an idmapped copy of a directory, the owner's files
// appear owned by the ids named, and any other id's as the overflow id;
// the directory on the host is unchanged. The test's directory lives on
// the file system of the test binary's TMPDIR, which must support
// idmapped mounts (ext4 does from 5.12, tmpfs from 6.3).
func TestIDMapSource(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mine"), nil, 0o644))
	require.NoError(t, os.Chown(filepath.Join(dir, "mine"), 4321, 4322))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other"), nil, 0o644))
	require.NoError(t, os.Chown(filepath.Join(dir, "other"), 777, 777))

	f, err := CloneSource(Mount{Kind: Bind, Source: dir, Target: "/x", Writable: true})
	require.NoError(t, err)
	defer f.Close()
	err = IDMapSource(f, 100500, 100501, Owner{UID: 4321, GID: 4322})
	if errors.Is(err, unix.EINVAL) {
		testutil.RequireFeature(t, "idmapped mounts of "+dir, err, "run the test with TMPDIR on ext4 (or tmpfs from Linux 6.3)")
	}
	require.NoError(t, err)

	var st unix.Stat_t
	require.NoError(t, unix.Fstatat(int(f.Fd()), "mine", &st, 0))
	assert.Equal(t, [2]uint32{100500, 100501}, [2]uint32{st.Uid, st.Gid}, "the owner's file, seen through the idmapped mount")
	require.NoError(t, unix.Fstatat(int(f.Fd()), "other", &st, 0))
	assert.Equal(t, [2]uint32{65534, 65534}, [2]uint32{st.Uid, st.Gid}, "another id's file, seen through the idmapped mount")
	require.NoError(t, unix.Stat(filepath.Join(dir, "mine"), &st))
	assert.Equal(t, [2]uint32{4321, 4322}, [2]uint32{st.Uid, st.Gid}, "the file on the host")
}

// BenchmarkIDMapSource measures what an idmapped bind adds to a start:
// a user namespace for the mapping (a clone that exits at once) and the
// mount_setattr, on a clone of the test's directory.
func BenchmarkIDMapSource(b *testing.B) {
	testutil.RequireRoot(b)
	dir := b.TempDir()
	m := Mount{Kind: Bind, Source: dir, Target: "/x", Writable: true}
	for b.Loop() {
		f, err := CloneSource(m)
		require.NoError(b, err)
		require.NoError(b, IDMapSource(f, 100500, 100500, Owner{UID: 4321, GID: 4321}))
		f.Close()
	}
}
