//go:build linux

package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// sharedHostDir returns a host directory that is a tmpfs of its own,
// shared on the host: a clone of it that stayed its peer would pass mount
// events both ways. It is unmounted when the test ends.
func sharedHostDir(t *testing.T, subdirs ...string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, unix.Mount("propsrc", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=64k,mode=755"))
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	require.NoError(t, unix.Mount("", dir, "", unix.MS_SHARED, ""))
	for _, d := range subdirs {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	return dir
}

// mountInfo returns the optional fields of the mount at target in a
// mountinfo table ("shared:12", "unbindable" ...), and whether it is
// there; the last mount at target counts.
func mountInfo(table, target string) (string, bool) {
	var tags string
	found := false
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) < 7 || f[4] != target {
			continue
		}
		var opt []string
		for _, o := range f[6:] {
			if o == "-" {
				break
			}
			opt = append(opt, o)
		}
		tags, found = strings.Join(opt, " "), true
	}
	return tags, found
}

// execRoot runs a busybox shell script in sb as root and returns its
// output.
func execRoot(t *testing.T, sb *Sandbox, script string) (string, error) {
	t.Helper()
	var out strings.Builder
	_, err := sb.Exec(t.Context(), Cmd{Args: []string{testutil.Busybox(t), "sh", "-c", script}, RunAsRoot: true, Stdout: &out, Stderr: &out})
	return out.String(), err
}

// hostMountInfo returns the host's mount table.
func hostMountInfo(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	return string(b)
}

// A shared root and a shared bind of a host directory that is itself
// shared on the host: inside, they propagate to binds of them made inside
// (so "shared" is real); nothing mounted inside reaches the host, and
// nothing the host mounts under the source reaches inside.
func TestPropagationShared(t *testing.T) {
	testutil.RequireRoot(t)
	bothStarts(t, func(t *testing.T) {
		src := sharedHostDir(t, "in", "host", "peer")
		// A writable bind of a user's directory is idmapped (see
		// bindowner.go); a read-only tmpfs is sealed before it is shared.
		owned := t.TempDir()
		require.NoError(t, os.Chown(owned, 1000, 1000))
		sb := longLived(t, Config{
			RunAsRoot:       true,
			RootPropagation: "shared",
			Mounts: []Mount{
				{Kind: Bind, Source: src, Target: "/mnt/s", Propagation: "shared"},
				{Kind: Tmpfs, Target: "/mnt/t", Propagation: "shared"},
				{Kind: Bind, Source: owned, Target: "/mnt/w", Writable: true, Propagation: "shared"},
				{Kind: Tmpfs, Target: "/mnt/ro", ReadOnly: true, Propagation: "shared"},
			},
			Security: Security{Capabilities: []string{"CAP_SYS_ADMIN"}, Landlock: Landlock{Disabled: true}, SeccompUnconfined: true}, // both forbid mount(2)
		})

		out, err := execRoot(t, sb, `cat /proc/self/mountinfo`)
		require.NoError(t, err, out)
		for _, target := range []string{"/", "/mnt/s", "/mnt/t", "/mnt/w", "/mnt/ro"} {
			tags, ok := mountInfo(out, target)
			require.True(t, ok, "no mount at %s:\n%s", target, out)
			assert.Regexp(t, `^shared:\d+$`, tags, "%s is not shared (and only shared) inside:\n%s", target, out)
		}
		assert.Regexp(t, `(?m) /mnt/w [^ ]*\bidmapped\b`, out, "the writable bind is not idmapped")
		assert.Regexp(t, `(?m) /mnt/ro ro,`, out, "the read-only tmpfs is not read-only")
		// The other mounts stay private, those beneath the shared ones too.
		for _, target := range []string{"/proc", "/tmp", "/dev", "/usr"} {
			tags, ok := mountInfo(out, target)
			require.True(t, ok, "no mount at %s:\n%s", target, out)
			assert.Empty(t, tags, "%s is not private inside", target)
		}

		// Inside: mounts propagate between the shared mounts and binds of
		// them made inside.
		out, err = execRoot(t, sb, `set -e
			mkdir /tmp/r /tmp/b
			mount --bind / /tmp/r
			mount --bind /mnt/s /tmp/b
			mount -t tmpfs inbind /mnt/s/peer
			mount -t tmpfs inside /mnt/s/in
			echo x > /mnt/s/in/made-inside
			mount -t tmpfs inroot /mnt
			grep -c ' /tmp/r/mnt \| /tmp/b/peer ' /proc/self/mountinfo`)
		require.NoError(t, err, out)
		assert.Equal(t, "2\n", out, "a mount under a shared mount did not propagate to its bind inside")

		// The host sees none of it.
		host := hostMountInfo(t)
		for _, s := range []string{" inside ", " inbind ", " inroot "} {
			assert.False(t, strings.Contains(host, s), "a mount made inside (%s) is on the host", s)
		}
		for _, d := range []string{"in", "peer"} {
			_, ok := mountInfo(host, filepath.Join(src, d))
			assert.False(t, ok, "the host has a mount at %s", filepath.Join(src, d))
			ents, err := os.ReadDir(filepath.Join(src, d))
			require.NoError(t, err)
			assert.Empty(t, ents, "the host sees what was made inside")
		}

		// The host mounts under the source: inside sees none of it.
		hostSub := filepath.Join(src, "host")
		require.NoError(t, unix.Mount("hostside", hostSub, "tmpfs", 0, "size=16k"))
		t.Cleanup(func() { unix.Unmount(hostSub, unix.MNT_DETACH) })
		require.NoError(t, os.WriteFile(filepath.Join(hostSub, "made-on-host"), nil, 0o644))
		out, err = execRoot(t, sb, `echo $(grep -c hostside /proc/self/mountinfo) $(find /tmp/b/host -mindepth 1 | wc -l)`)
		require.NoError(t, err, out)
		assert.Equal(t, "0 0\n", out, "the host's mount under the source reached inside")
	})
}

// An unbindable root and bind: mountinfo shows it, and a bind of either
// fails inside with EINVAL.
func TestPropagationUnbindable(t *testing.T) {
	bothStarts(t, func(t *testing.T) {
		src := t.TempDir()
		sb := longLived(t, Config{
			RunAsRoot:       true,
			RootPropagation: "unbindable",
			Mounts:          []Mount{{Kind: Bind, Source: src, Target: "/mnt/u", Propagation: "unbindable"}},
			Security:        Security{Capabilities: []string{"CAP_SYS_ADMIN"}, Landlock: Landlock{Disabled: true}, SeccompUnconfined: true},
		})
		out, err := execRoot(t, sb, `cat /proc/self/mountinfo`)
		require.NoError(t, err, out)
		for _, target := range []string{"/", "/mnt/u"} {
			tags, ok := mountInfo(out, target)
			require.True(t, ok, "no mount at %s:\n%s", target, out)
			assert.Equal(t, "unbindable", tags, "%s inside:\n%s", target, out)
		}
		out, err = execRoot(t, sb, `mkdir /tmp/r /tmp/u
			mount --rbind / /tmp/r 2>&1 && echo root bound || echo root refused
			mount --bind /mnt/u /tmp/u 2>&1 && echo bind bound || echo bind refused
			mount --bind /tmp /tmp/u && echo other bound || echo other refused`)
		require.NoError(t, err, out)
		l := lines(out)
		assert.Contains(t, l, "root refused", out)
		assert.Contains(t, l, "bind refused", out)
		assert.Contains(t, l, "other bound", out)
		assert.Contains(t, out, "Invalid argument", out)
	})
}

// A bad propagation is refused before anything is made, naming the field.
func TestPropagationRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{RootPropagation: "slave"}, "RootPropagation"},
		{Config{RootPropagation: "rshared"}, "RootPropagation"},
		{Config{Mounts: []Mount{{Kind: Bind, Source: "/usr", Target: "/u", Propagation: "slave"}}}, "Mounts[0].Propagation"},
		{Config{Mounts: []Mount{{Kind: Tmpfs, Target: "/t", Propagation: "shared,unbindable"}}}, "Mounts[0].Propagation"},
		{Config{Mounts: []Mount{{Kind: Mask, Target: "/etc/passwd", Propagation: "shared"}}}, "Mounts[0].Propagation"},
	} {
		tc.cfg.Args = []string{"/bin/true"}
		err := tc.cfg.Validate()
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%+v: %v", tc.cfg, err)
		assert.Equal(t, tc.field, ce.Field, "%v", err)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		// Start refuses it the same, before any side effect (the test
		// main checks that nothing is left on the host).
		err = New(tc.cfg).Start(t.Context())
		require.True(t, errors.As(err, &ce), "%v", err)
		assert.Equal(t, tc.field, ce.Field)
	}
	// Private may be spelled out.
	cfg := Config{Args: []string{"/bin/true"}, RootPropagation: "private", Mounts: []Mount{{Kind: Tmpfs, Target: "/t", Propagation: "private"}}}
	assert.NoError(t, cfg.Validate())
}
