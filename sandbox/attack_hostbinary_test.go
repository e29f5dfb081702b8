//go:build linux

package sandbox

import (
	"crypto/sha256"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostBinaryUnreachable is the runc CVE-2019-5736 row: root inside
// the sandbox reaches for the init's /proc/1/exe (this test binary, which
// the sandbox re-executes as its init) to read it or overwrite it, and for
// the init's other /proc files. The init is not dumpable: its /proc files
// belong to host root, which is not mapped, and ptrace access checks fail.
func TestHostBinaryUnreachable(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	before, host := fileSum(t, self), snapshotHost(t)
	mustAttack(t, attack(t, "procexe"), map[string]string{
		"readlink": "EACCES", "open-read": "EACCES", "open-write": "EACCES",
		"open-path": "EACCES", "mem": "EACCES", "environ": "EACCES",
		"map-files": "EACCES", "root": "EACCES", "cwd": "EACCES",
	})
	assert.Equal(t, before, fileSum(t, self), "the host binary changed")
	host.check(t)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}
