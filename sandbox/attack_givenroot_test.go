//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// Attacks that come with a root directory the caller gives the sandbox
// (Config.RootDir), holding what host root or an earlier run left there.

// TestAttackSetuidBinary is the setuid row: a setuid copy of the program in
// a given root, owned by host root and by the id that is root inside,
// gives the command no other ids.
func TestAttackSetuidBinary(t *testing.T) {
	testutil.RequireRoot(t)
	root := attackRoot(t)
	for _, owner := range []struct {
		name string
		uid  int
	}{{"host-root", 0}, {"sandbox-root", int(rootIDMap().HostUID)}} {
		p := filepath.Join(root, "suid-"+owner.name)
		copyFile(t, attackProgram(t), p)
		require.NoError(t, os.Chown(p, owner.uid, owner.uid))
		require.NoError(t, os.Chmod(p, 0o4755|0o2000))
	}
	host := snapshotHost(t)
	for _, owner := range []string{"host-root", "sandbox-root"} {
		t.Run(owner, func(t *testing.T) {
			cfg := Config{Args: []string{"/suid-" + owner, "whoami"}, RootDir: root}
			st, o := runAttack(t, cfg)
			require.NoError(t, o.err)
			assert.Equal(t, "uid=1000 euid=1000 gid=1000 egid=1000", st["ids"][1])
		})
	}
	host.check(t)
}

// TestAttackDeviceNodeInGivenRoot: a given root holds a device node that
// host root made (here the harmless zero device, so that only the mount's
// nodev can be what refuses it); it cannot be opened inside.
func TestAttackDeviceNodeInGivenRoot(t *testing.T) {
	testutil.RequireRoot(t)
	root := attackRoot(t)
	require.NoError(t, unix.Mknod(filepath.Join(root, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
	host := snapshotHost(t)
	for _, writable := range []bool{false, true} {
		cfg := Config{Args: []string{"/attack", "read", "/zero", "/dev/zero"}, RootDir: root, WritableRoot: writable, RunAsRoot: true}
		mustAttack(t, cfg, map[string]string{"read-/zero": "EACCES", "read-/dev/zero": "ok"})
	}
	host.check(t)
}

// attackRoot makes a root directory with what the sandbox mounts on and
// the attack program at /attack.
func attackRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.Chmod(root, 0o755))
	for _, d := range []string{"proc", "dev", "tmp", "work"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	copyFile(t, attackProgram(t), filepath.Join(root, "attack"))
	return root
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}

// TestAttackSymlinkedMountTarget: a given, writable root holds a link to a
// host directory where a bind is to be mounted. The link is followed
// inside the root only: where the root has no such directory the start
// fails, and where it has one the bind lands there; the host directory is
// untouched either way.
func TestAttackSymlinkedMountTarget(t *testing.T) {
	testutil.RequireRoot(t)
	for _, inside := range []bool{false, true} {
		t.Run("target-inside-root="+strconv.FormatBool(inside), func(t *testing.T) {
			// Not under /tmp, which the sandbox covers with its own tmpfs.
			root, src := attackRoot(t), t.TempDir()
			hostDir, err := os.MkdirTemp("/var/tmp", "stockade-attack-")
			require.NoError(t, err)
			t.Cleanup(func() { os.RemoveAll(hostDir) })
			require.NoError(t, os.Chmod(src, 0o777))
			require.NoError(t, os.WriteFile(filepath.Join(hostDir, "marker"), []byte("host"), 0o644))
			require.NoError(t, os.Symlink(hostDir, filepath.Join(root, "data")))
			if inside {
				require.NoError(t, os.MkdirAll(filepath.Join(root, hostDir), 0o755))
			}
			host := snapshotHost(t)
			cfg := Config{
				Args: []string{"/attack", "write", "/data/pwned"}, RootDir: root, WritableRoot: true,
				Mounts: []Mount{{Kind: Bind, Source: src, Target: "/data", Writable: true}},
			}
			st, o := runAttack(t, cfg)
			if inside {
				require.NoError(t, o.err)
				st.expect(t, map[string]string{"write-/data/pwned": "ok"})
				// The bind went to the link's target inside the root.
				_, err := os.Stat(filepath.Join(src, "pwned"))
				assert.NoError(t, err)
			} else {
				var se *SetupError
				require.ErrorAs(t, o.err, &se)
				assert.Equal(t, "bind", se.Stage)
				assert.Equal(t, unix.ENOENT, se.Errno)
			}
			dirHolds(t, hostDir, "marker")
			host.check(t)
		})
	}
}
