//go:build linux

package sandbox

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// startTTYSandbox starts a sandbox without a command whose processes may
// have terminals (Config.TTY); it is closed when the test ends.
func startTTYSandbox(t *testing.T) *Sandbox {
	t.Helper()
	testutil.RequireUserNamespaces(t)
	s := New(testConfig(Config{TTY: &TTY{}}))
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { s.Close() })
	return s
}

// A process of Sandbox.Command with Cmd.TTY gets a pty of the sandbox's
// own devpts, of the size asked for, as its controlling terminal; the
// caller gets the master from Cmd.Terminal, job control and Ctrl-C work
// on it, and Cmd.Resize sets its size. Two such shells run at once, each
// on its own terminal.
func TestExecTTY(t *testing.T) {
	bothStarts(t, func(t *testing.T) {
		s := startTTYSandbox(t)
		shell := func(rows, cols uint16) (*Cmd, *term) {
			cmd := s.Command(testutil.Busybox(t), "sh")
			cmd.Env = append(DefaultEnv("sandbox", "/work"), "PS1=$ ", "TERM=vt100")
			cmd.TTY = &TTY{Rows: rows, Cols: cols}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			t.Cleanup(cancel)
			require.NoError(t, cmd.Start(ctx))
			m := cmd.Terminal()
			require.NotNil(t, m)
			t.Cleanup(func() { m.Close() })
			return cmd, newTerm(t, m)
		}
		cmd, tm := shell(24, 80)
		other, tm2 := shell(30, 90)

		tm.ownDevpts()

		tm.typ("tty; stty size; echo o''k\n")
		tm.expect("/dev/pts/")
		tm.expect("24 80")
		tm.expect("ok")
		tm2.typ("stty size\n")
		tm2.expect("30 90")

		jobControl(t, tm)

		require.NoError(t, cmd.Resize(40, 100))
		tm.typ("stty size\n")
		tm.expect("40 100")

		tm.exit7(cmd.Wait)
		// The other shell still runs on its own terminal.
		tm2.typ("echo still''here; exit\n")
		tm2.expect("stillhere")
		_, err := other.Wait()
		require.NoError(t, err)
	})
}

// Cmd.TTY is refused, naming the field, where the master could not be
// handed out or the sandbox's filter would not let the process use its
// terminal; and a sandbox with TTY takes no terminal of the caller's from
// a Cmd.
func TestExecTTYConfig(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	ctx := context.Background()
	plain := New(testConfig(Config{}))
	require.NoError(t, plain.Start(ctx))
	defer plain.Close()
	withTTY := startTTYSandbox(t)
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	defer master.Close()

	check := func(field string, err error) {
		t.Helper()
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, field, ce.Field, "%v", err)
	}
	_, err = withTTY.Exec(ctx, Cmd{Args: []string{"true"}, TTY: &TTY{}})
	check("Cmd.TTY", err)
	cmd := plain.Command("true")
	cmd.TTY = &TTY{}
	check("Cmd.TTY", cmd.Start(ctx))
	cmd = withTTY.Command("true")
	cmd.TTY, cmd.Stdout = &TTY{}, os.Stderr
	check("Cmd.TTY", cmd.Start(ctx))
	_, err = withTTY.Exec(ctx, Cmd{Args: []string{"true"}, Stdin: master})
	check("Cmd.Stdin", err)
	_, err = withTTY.Exec(ctx, Cmd{Args: []string{"true"}, ExtraFiles: []*os.File{master}})
	check("Cmd.ExtraFiles[0]", err)

	cmd = withTTY.Command("true")
	check("Cmd.TTY", cmd.Resize(1, 1))
	cmd.TTY = &TTY{}
	assert.ErrorIs(t, cmd.Resize(1, 1), ErrNotStarted)
	assert.Nil(t, cmd.Terminal())
	check("TTY", withTTY.Resize(1, 1)) // no command, no terminal of its own
}
