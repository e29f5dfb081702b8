//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// TestAttackProcfsRedirection is the procfs redirection row (runc
// CVE-2019-16884, CVE-2025-52881): a given root prepares a fake /proc, or
// makes /proc a link elsewhere, so that what the runtime means to mask or
// to write lands on a file of the attacker's choosing. The sandbox mounts
// a fresh procfs whatever the root holds there, resolves /proc and every
// masked path inside the root, and masks with the host's verified
// /dev/null; the files the root prepared are left as they were.
func TestAttackProcfsRedirection(t *testing.T) {
	const script = `
		grep -q '^Name:' /proc/self/status && echo real-proc
		echo "keys:$(head -c 16 /proc/keys 2>&1)"
		cat /proc/kcore /proc/self/status 2>/dev/null | grep -q fake && echo saw-fake
		(echo x > /proc/sysrq-trigger) 2>/dev/null && echo wrote-sysrq
		(echo '|/pwn' > /proc/sys/kernel/core_pattern) 2>/dev/null && echo wrote-core-pattern
		true`
	for _, tc := range []struct {
		name string
		// prepare makes /proc in the root.
		prepare func(t *testing.T, root string)
	}{
		{"fake files in /proc", func(t *testing.T, root string) {
			fakeProc(t, filepath.Join(root, "proc"))
		}},
		{"/proc a link to a fake", func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(root, "proc")))
			fakeProc(t, filepath.Join(root, "fake"))
			require.NoError(t, os.Symlink("/fake", filepath.Join(root, "proc")))
		}},
		{"/proc a link up and out", func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(root, "proc")))
			fakeProc(t, filepath.Join(root, "fake"))
			require.NoError(t, os.Symlink("../../../../../../fake", filepath.Join(root, "proc")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := testutil.BusyboxRoot(t)
			for _, app := range []string{"grep", "head"} {
				require.NoError(t, os.Symlink("busybox", filepath.Join(root, "bin", app)))
			}
			tc.prepare(t, root)
			before := treeSums(t, root)
			host := snapshotHost(t)

			cfg := Config{Args: []string{"/bin/sh", "-c", script}, RootDir: root, WritableRoot: true, RunAsRoot: true}
			o := run(t, cfg)
			require.NoError(t, o.err, o.stderr)
			assert.Equal(t, []string{"real-proc", "keys:"}, lines(o.stdout),
				"a fresh procfs with /proc/keys masked, sysrq-trigger and core_pattern read-only")
			assert.Equal(t, before, treeSums(t, root), "a file the root prepared changed")
			host.check(t)
		})
	}
}

// fakeProc fills dir with files named like the ones a sandbox masks or
// makes read-only.
func fakeProc(t *testing.T, dir string) {
	t.Helper()
	for name, data := range map[string]string{
		"kcore":                   "fake-kcore",
		"keys":                    "fake-keys",
		"sysrq-trigger":           "",
		"sys/kernel/core_pattern": "core\n",
		"self/status":             "Fake: yes\n",
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o666))
	}
}

// treeSums maps every regular file below root, but for the sandbox's
// writable tmpfs mount points, to its content.
func treeSums(t *testing.T, root string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || filepath.Base(p) == "busybox" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sums[p] = string(b)
		return nil
	})
	require.NoError(t, err)
	return sums
}
