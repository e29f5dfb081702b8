//go:build linux

package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// ownerOf returns the host owner of the file at name.
func ownerOf(t *testing.T, name string) [2]uint32 {
	t.Helper()
	fi, err := os.Lstat(name)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return [2]uint32{st.Uid, st.Gid}
}

// TestWritableBindOwner: what the sandbox's user (uid 1000 inside)
// creates in a writable bind of a private directory lands on the host
// owned by the directory's owner: as host root through an idmapped mount
// (for a directory of an ordinary user's), as an ordinary user with its
// own ids because the sandbox's user is the caller. A file of the owner's
// is the sandbox user's own there. With subordinate ids an ordinary
// user's sandbox is a stranger to the directory (documented: no idmap).
func TestWritableBindOwner(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "theirs"), []byte("x"), 0o600))
	want := [2]uint32{uint32(os.Geteuid()), uint32(os.Getegid())}
	if os.Geteuid() == 0 {
		want = [2]uint32{4321, 4322}
		require.NoError(t, os.Chown(dir, 4321, 4322))
		require.NoError(t, os.Chown(filepath.Join(dir, "theirs"), 4321, 4322))
	}
	bind := Mount{Kind: Bind, Source: dir, Target: "/src", Writable: true}
	cfg := shell(t, "touch /src/x && mkdir /src/d && echo ok > /src/d/y && echo more >> /src/theirs && stat -c %u:%g /src/theirs")
	cfg.Mounts = []Mount{bind}
	cfg.Dir = "/src"
	o := run(t, cfg)
	if os.Geteuid() != 0 && testConfig(cfg).SubordinateIDs {
		require.Error(t, o.err, "a subordinate id wrote into the caller's private directory")
		assert.Contains(t, o.stderr, "Permission denied")
		return
	}
	require.NoError(t, o.err, o.stderr)
	for _, name := range []string{"x", "d", "d/y", "theirs"} {
		assert.Equal(t, want, ownerOf(t, filepath.Join(dir, name)), name)
	}
	assert.Equal(t, "1000:1000\n", o.stdout, "the owner's file, seen by the sandbox's user")
	data, err := os.ReadFile(filepath.Join(dir, "theirs"))
	require.NoError(t, err)
	assert.Equal(t, "xmore\n", string(data))
}

// TestWritableBindRootOwner: host root's own directory is not mapped
// onto root unless the bind's Owner names root: the sandbox's user is a
// stranger to it (and a link it plants there in a directory open to all
// is no link of root's). Named, what it writes lands as root's.
func TestWritableBindRootOwner(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir() // root's, 0755
	cfg := shell(t, "touch /src/x")
	cfg.Mounts = []Mount{{Kind: Bind, Source: dir, Target: "/src", Writable: true}}
	o := run(t, cfg)
	require.Error(t, o.err)
	assert.Contains(t, o.stderr, "Permission denied")
	cfg.Mounts[0].Owner = &Owner{}
	mustRun(t, cfg)
	assert.Equal(t, [2]uint32{0, 0}, ownerOf(t, filepath.Join(dir, "x")))
}

// TestWritableBindNamedOwner: host root names the owner of what the
// sandbox writes in a bind (Mount.Owner), or binds it without an
// idmapping (Mount.NoIDMap), where the sandbox's user writes as its own
// host id, which is neither root's nor the owner's.
func TestWritableBindNamedOwner(t *testing.T) {
	testutil.RequireRoot(t)
	named := t.TempDir()
	require.NoError(t, os.Chown(named, 4321, 4322))
	plain := t.TempDir()
	require.NoError(t, os.Chmod(plain, 0o777))
	m1 := Mount{Kind: Bind, Source: named, Target: "/named", Writable: true, Owner: &Owner{UID: 4321, GID: 4322}}
	m2 := Mount{Kind: Bind, Source: plain, Target: "/plain", Writable: true, NoIDMap: true}
	cfg := shell(t, "touch /named/x /plain/x && stat -c %u /named")
	cfg.Mounts = []Mount{m1, m2}
	out := mustRun(t, cfg)
	assert.Equal(t, "1000\n", out, "the named owner's directory, seen by the sandbox's user")
	assert.Equal(t, [2]uint32{4321, 4322}, ownerOf(t, filepath.Join(named, "x")))
	got := ownerOf(t, filepath.Join(plain, "x"))
	assert.NotEqual(t, uint32(0), got[0], "without an idmapping, the sandbox's user wrote as host root")
	assert.NotEqual(t, uint32(4321), got[0])
}

// TestWritableBindNoIDMapFS: a writable bind of a file system that
// cannot be idmapped (sysfs) fails Start with an error that names the
// mount and the remedy, and matches ErrNotSupported; nothing starts.
func TestWritableBindNoIDMapFS(t *testing.T) {
	testutil.RequireRoot(t)
	cfg := shell(t, "true")
	cfg.Mounts = []Mount{
		{Kind: Bind, Source: t.TempDir(), Target: "/a", NoIDMap: true, Writable: true},
		{Kind: Bind, Source: "/sys/kernel", Target: "/k", Writable: true, Owner: &Owner{}},
	}
	o := run(t, cfg)
	require.Error(t, o.err)
	assert.ErrorIs(t, o.err, ErrNotSupported)
	var fe *FeatureError
	require.True(t, errors.As(o.err, &fe), "%T: %v", o.err, o.err)
	t.Log(o.err)
	assert.Contains(t, o.err.Error(), "Mounts[1]")
	assert.Contains(t, o.err.Error(), "Mounts[1].NoIDMap")
}

// TestWritableBindOwnerConfig: Owner and NoIDMap apply to writable binds
// only, and Owner needs host root.
func TestWritableBindOwnerConfig(t *testing.T) {
	owner := &Owner{UID: 5, GID: 5}
	for _, tc := range []struct {
		m     Mount
		field string
	}{
		{Mount{Kind: Bind, Source: "/x", Target: "/x", Owner: owner}, "Mounts[0].Owner"},
		{Mount{Kind: Bind, Source: "/x", Target: "/x", NoIDMap: true}, "Mounts[0].NoIDMap"},
		{Mount{Kind: Bind, Source: "/x", Target: "/x", Writable: true, NoIDMap: true, Owner: owner}, "Mounts[0].Owner"},
		{Mount{Kind: Bind, Source: "/x", Target: "/x", Writable: true, Device: true, Owner: owner}, "Mounts[0].Owner"},
	} {
		err := (&Config{Args: []string{"x"}, Mounts: []Mount{tc.m}}).Validate()
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%v", err)
		assert.Equal(t, tc.field, ce.Field)
	}
	if os.Geteuid() != 0 {
		d := (&Config{Args: []string{"x"}, Mounts: []Mount{{Kind: Bind, Source: "/x", Target: "/x", Writable: true, Owner: owner}}}).withDefaults()
		_, err := d.identity()
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%v", err)
		assert.Equal(t, "Mounts[0].Owner", ce.Field)
	}
}
