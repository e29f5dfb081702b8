//go:build linux

package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// idmapRoot returns a busybox root of host root's, as an OCI bundle's
// rootfs is, holding a directory "secret" of root's with mode 0700 and
// a file in it, and a directory "user" of 1000:1000 with a file of
// 1000:1000, mode 0644.
func idmapRoot(t *testing.T) string {
	t.Helper()
	root := testutil.BusyboxRoot(t)
	require.NoError(t, os.Chmod(root, 0o755))
	secret := filepath.Join(root, "secret")
	require.NoError(t, os.Mkdir(secret, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(secret, "data"), []byte("hidden\n"), 0o600))
	user := filepath.Join(root, "user")
	require.NoError(t, os.Mkdir(user, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(user, "f"), []byte("x\n"), 0o644))
	for _, p := range []string{user, filepath.Join(user, "f")} {
		require.NoError(t, os.Chown(p, 1000, 1000))
	}
	return root
}

// bbShell runs script with the busybox of an idmapRoot.
func bbShell(script string) []string {
	return []string{"/bin/busybox", "sh", "-c", script}
}

// TestRootIDMap: with RootIDMap, host root's RootDir shows its on-disk
// owners inside, on both start paths: what the sandbox's root writes
// lands on the host as 0:0; a root-owned 0700 directory is entered and is
// the working directory (through a bind from inside the root, as an OCI
// spec's process.cwd maps); a file of 1000:1000 is uid 1000's inside, and
// uid 1000 writes it. The processes keep their unprivileged host ids.
func TestRootIDMap(t *testing.T) {
	testutil.RequireRoot(t)
	bothPaths(t, func(t *testing.T) {
		root := idmapRoot(t)
		cfg := Config{
			Args: bbShell(`bb=/bin/busybox
				pwd; cat data; echo new > new
				$bb touch /made; $bb mkdir /madedir
				$bb stat -c %u:%g / /secret /user/f
				$bb awk '{print $2}' /proc/self/uid_map`),
			RootDir: root, WritableRoot: true, RootIDMap: true, RunAsRoot: true,
			Dir:    "/secret",
			Mounts: []Mount{{Kind: Bind, Source: filepath.Join(root, "secret"), Target: "/secret", Writable: true}},
		}
		out := lines(mustRun(t, cfg))
		require.Len(t, out, 6, "%q", out)
		assert.Equal(t, []string{"/secret", "hidden", "0:0", "0:0", "1000:1000"}, out[:5])
		assert.NotEqual(t, "0", out[5], "the sandbox's root is host root")
		for _, name := range []string{"made", "madedir", "secret/new"} {
			assert.Equal(t, [2]uint32{0, 0}, ownerOf(t, filepath.Join(root, name)), name)
		}

		// uid 1000 inside owns the file of 1000:1000.
		cfg = Config{
			Args:    bbShell(`bb=/bin/busybox; $bb id -u; $bb stat -c %u:%g /user/f; echo more >> /user/f; $bb touch /user/g`),
			RootDir: root, WritableRoot: true, RootIDMap: true, Dir: "/",
		}
		assert.Equal(t, "1000\n1000:1000\n", mustRun(t, cfg))
		data, err := os.ReadFile(filepath.Join(root, "user", "f"))
		require.NoError(t, err)
		assert.Equal(t, "x\nmore\n", string(data))
		assert.Equal(t, [2]uint32{1000, 1000}, ownerOf(t, filepath.Join(root, "user", "g")))

		// Read-only, the 0700 directory is still entered; nothing is
		// written.
		cfg = Config{
			Args:    bbShell(`cd /secret && cat data && if echo x > /secret/w 2>/dev/null; then echo written; fi`),
			RootDir: root, RootIDMap: true, RunAsRoot: true, Dir: "/",
		}
		assert.Equal(t, "hidden\n", mustRun(t, cfg))
		_, err = os.Stat(filepath.Join(root, "secret", "w"))
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
}

// TestRootIDMapOff: without RootIDMap host root's RootDir stays the
// overflow id's inside: the sandbox's root writes nothing in it, and
// cannot enter a 0700 directory of root's.
func TestRootIDMapOff(t *testing.T) {
	testutil.RequireRoot(t)
	bothPaths(t, func(t *testing.T) {
		root := idmapRoot(t)
		o := run(t, Config{
			Args:    bbShell(`/bin/busybox stat -c %u /; /bin/busybox touch /made`),
			RootDir: root, WritableRoot: true, RunAsRoot: true, Dir: "/",
		})
		require.Error(t, o.err)
		assert.Equal(t, "65534\n", o.stdout)
		assert.Contains(t, o.stderr, "Permission denied")
		_, err := os.Stat(filepath.Join(root, "made"))
		assert.ErrorIs(t, err, os.ErrNotExist)

		o = run(t, Config{Args: bbShell(`cd /secret`), RootDir: root, RunAsRoot: true, Dir: "/"})
		require.Error(t, o.err)
		assert.Contains(t, o.stderr, "Permission denied")
	})
}

// TestRootIDMapLinkStaysInRoot: a bind from inside a RootIDMap root is
// resolved within the root: a link the sandbox's root planted there
// (owned by root on the host, which CloneSource would trust) leads to the
// root's own directory of that name, never to the host's.
func TestRootIDMapLinkStaysInRoot(t *testing.T) {
	testutil.RequireRoot(t)
	root := idmapRoot(t)
	mustRun(t, Config{
		Args:    bbShell(`/bin/busybox ln -s /etc /l`),
		RootDir: root, WritableRoot: true, RootIDMap: true, RunAsRoot: true, Dir: "/",
	})
	assert.Equal(t, [2]uint32{0, 0}, ownerOf(t, filepath.Join(root, "l")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "mark"), []byte("root's own\n"), 0o644))
	out := mustRun(t, Config{
		Args:    bbShell(`cat /user/mark; /bin/busybox ls /user`),
		RootDir: root, RootIDMap: true, RunAsRoot: true, Dir: "/",
		Mounts: []Mount{{Kind: Bind, Source: filepath.Join(root, "l"), Target: "/user"}},
	})
	assert.Equal(t, "root's own\nmark\n", out)
}

// TestRootIDMapConfig: RootIDMap needs RootDir, and host root; a file
// system that cannot be idmapped fails Start with a *FeatureError that
// names RootDir. Nothing is left behind (the test main checks).
func TestRootIDMapConfig(t *testing.T) {
	err := (&Config{Args: []string{"x"}, RootIDMap: true}).Validate()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "RootIDMap", ce.Field)

	root := t.TempDir()
	err = (&Config{Args: []string{"x"}, RootDir: root, RootIDMap: true}).Validate()
	if os.Geteuid() != 0 {
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "RootIDMap", ce.Field)
		assert.Contains(t, err.Error(), "host root")
		// Start refuses it the same way, before any side effect.
		testutil.RequireUserNamespaces(t)
		sb := New(testConfig(Config{Args: []string{"/bin/true"}, RootDir: root, RootIDMap: true}))
		err = sb.Start(context.Background())
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "RootIDMap", ce.Field)
		return
	}
	require.NoError(t, err)

	bothPaths(t, func(t *testing.T) {
		// sysfs cannot be idmapped.
		o := run(t, Config{Args: []string{"/bin/true"}, RootDir: "/sys/kernel", RootIDMap: true, Dir: "/"})
		require.Error(t, o.err)
		var fe *FeatureError
		require.ErrorAs(t, o.err, &fe)
		assert.ErrorIs(t, o.err, ErrNotSupported)
		assert.Contains(t, o.err.Error(), "RootDir")
		assert.Contains(t, o.err.Error(), "sysfs")
		t.Log(o.err)
	})
}

// TestRootIDMapFailedStarts fails a RootIDMap start at each step after
// its root is cloned, on both paths, and checks that nothing is left: no
// descriptor (of the idmapped clones, of their user namespace), no child
// (the one that held the namespace), no mount.
func TestRootIDMapFailedStarts(t *testing.T) {
	testutil.RequireRoot(t)
	root := idmapRoot(t)
	cfg := Config{Args: bbShell("true"), RootDir: root, WritableRoot: true, RootIDMap: true, Dir: "/"}
	bothPaths(t, func(t *testing.T) {
		var reached []string
		faultHook = func(step string) error { reached = append(reached, step); return nil }
		t.Cleanup(func() { faultHook = nil })
		mustRun(t, cfg)
		faultHook = nil
		require.NotEmpty(t, reached)
		for _, step := range reached {
			t.Run(step, func(t *testing.T) {
				testutil.CheckAfter(t, 5*time.Second, testutil.DefaultLeakChecks...)
				injected := errors.New("injected fault")
				faultHook = func(s string) error {
					if s == step {
						return injected
					}
					return nil
				}
				sb := New(cfg)
				err := sb.Start(context.Background())
				faultHook = nil
				require.ErrorIs(t, err, injected)
				sb.Wait()
			})
		}
	})
}

// BenchmarkRootIDMap is the cost of RootIDMap: a start on a writable
// busybox RootDir of root's, with and without it (the user namespace for
// the idmap and the idmapped clone).
func BenchmarkRootIDMap(b *testing.B) {
	testutil.RequireRoot(b)
	root := testutil.BusyboxRoot(b)
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			benchRun(b, Config{Args: []string{"/bin/true"}, RootDir: root, WritableRoot: true, RootIDMap: on, Dir: "/"})
		})
	}
}
