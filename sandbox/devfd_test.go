//go:build linux

package sandbox

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestDevStdioReopen checks that the command may open /dev/stdout,
// /dev/stderr, /dev/stdin and /dev/fd/N by name, as a shell redirection
// does: each reopens the descriptor through /proc/self/fd, which the
// kernel allows only if the sandbox's user may open the inode behind it.
// The pipes the owner makes for a writer or reader are such inodes.
func TestDevStdioReopen(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		// The caller's own pipe: its permissions decide, so the caller
		// makes it open to the sandbox's user (see Config.ExtraFiles).
		pr, pw, err := os.Pipe()
		require.NoError(t, err)
		defer pr.Close()
		require.NoError(t, unix.Fchmod(int(pr.Fd()), 0o666))
		_, err = pw.WriteString("three\n")
		require.NoError(t, err)
		pw.Close()
		// A pipe the caller left 0600 stays closed to the sandbox's user.
		// (Unless the sandbox's user is the caller: an ordinary user's
		// sandbox with its own ids.)
		closed, closedW, err := os.Pipe()
		require.NoError(t, err)
		defer closed.Close()
		closedW.Close()

		script := `echo hi > /dev/stdout && echo err > /dev/stderr && cat /dev/stdin && cat /dev/fd/3`
		if uid, _ := commandHostIDs(t, shell(t, "true")); int(uid) != os.Getuid() {
			script += ` && ! cat /dev/fd/4 2>/dev/null`
		}
		cfg := shell(t, script)
		cfg.Stdin = strings.NewReader("in\n")
		cfg.ExtraFiles = []*os.File{pr, closed}
		o := run(t, cfg)
		require.NoError(t, o.err, "stderr: %s", o.stderr)
		assert.Equal(t, "hi\nin\nthree\n", o.stdout)
		assert.Equal(t, "err\n", o.stderr)
	})
}
