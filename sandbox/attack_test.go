package sandbox

import (
	"crypto/sha256"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostBinaryUnreachable is the runc CVE-2019-5736 class: root inside
// the sandbox tries to reach the host binary through the init's
// /proc/1/exe (this test binary, which the sandbox re-executes as its init)
// to read it or overwrite it.
func TestHostBinaryUnreachable(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	before := fileSum(t, self)
	cfg := shell(t, `
		try() { if (eval "$2") 2>/dev/null; then echo "ATTACK $1 succeeded"; else echo "blocked $1"; fi; }
		try readlink 'readlink /proc/1/exe'
		try read 'head -c 4 /proc/1/exe >/dev/null'
		try write 'echo x >> /proc/1/exe'
		try truncate 'echo x > /proc/1/exe'
		try fd-reopen 'exec 3</proc/1/exe && echo x > /proc/self/fd/3'
		try map_files 'ls /proc/1/map_files/ | head -1 | grep .'
		try mem 'head -c 1 /proc/1/mem >/dev/null'
		try environ 'head -c 1 /proc/1/environ | grep .'
		try cwd 'ls /proc/1/cwd/'
		try root 'ls /proc/1/root/'
		true`)
	cfg.RunAsRoot = true
	out := mustRun(t, cfg)
	assert.NotContains(t, out, "ATTACK", out)
	assert.Len(t, lines(out), 10)
	assert.Equal(t, before, fileSum(t, self), "the host binary changed")
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}
