//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// bothPaths runs f once per start path: raw, and the init stage.
func bothPaths(t *testing.T, f func(t *testing.T)) {
	for _, p := range []string{"raw", "init"} {
		t.Run(p, func(t *testing.T) {
			t.Setenv(startEnv, p)
			f(t)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newSandbox returns an unstarted sandbox for cfg, for the test.
func newSandbox(t *testing.T, cfg Config) *Sandbox {
	t.Helper()
	testutil.RequireUserNamespaces(t)
	sb := New(testConfig(cfg))
	t.Cleanup(func() { sb.Close() })
	return sb
}

func TestSandboxOutput(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		out, err := newSandbox(t, shell(t, `echo out; echo err >&2`)).Output(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, "out\n", string(out))

		// A failure: the *ExitError holds the standard error, and Wait the
		// same Result.
		sb := newSandbox(t, shell(t, `echo partial; echo why >&2; exit 3`))
		out, err = sb.Output(testCtx(t))
		assert.Equal(t, "partial\n", string(out))
		var ee *ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 3, ee.ExitCode)
		assert.Equal(t, "why\n", string(ee.Stderr))
		res, werr := sb.Wait()
		assert.Same(t, ee.Result, res)
		assert.Equal(t, err, werr)

		// A Stderr of the caller's keeps it: Stderr stays nil.
		var stderr bytes.Buffer
		cfg := shell(t, `echo why >&2; exit 1`)
		cfg.Stderr = &stderr
		_, err = newSandbox(t, cfg).Output(testCtx(t))
		require.ErrorAs(t, err, &ee)
		assert.Nil(t, ee.Stderr)
		assert.Equal(t, "why\n", stderr.String())
	})
}

func TestSandboxOutputMisuse(t *testing.T) {
	cfg := Config{Args: []string{"true"}, Stdout: io.Discard}
	sb := New(cfg)
	_, err := sb.Output(context.Background())
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Stdout", ce.Field)
	_, err = sb.Wait()
	assert.ErrorIs(t, err, ErrNotStarted, "nothing was started")

	_, err = New(Config{Args: []string{"true"}, Stderr: io.Discard}).CombinedOutput(context.Background())
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Stderr", ce.Field)

	sb = New(Config{Args: []string{"true"}, Stdin: strings.NewReader("")})
	_, err = sb.StdinPipe()
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Stdin", ce.Field)
	_, err = New(Config{Args: []string{"true"}, Stderr: io.Discard}).StderrPipe()
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Stderr", ce.Field)

	// A sandbox without a command is refused, and its config kept.
	sb = New(Config{})
	_, err = sb.Output(context.Background())
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Args", ce.Field)
	assert.Nil(t, sb.cfg.Stdout)
	_, err = sb.CombinedOutput(context.Background())
	require.ErrorAs(t, err, &ce)
	assert.Nil(t, sb.cfg.Stderr)

	// After Start, as in os/exec.
	sb = newSandbox(t, shell(t, `true`))
	require.NoError(t, sb.Start(testCtx(t)))
	_, err = sb.StdoutPipe()
	assert.ErrorIs(t, err, ErrStarted)
	_, err = sb.Output(testCtx(t))
	assert.ErrorIs(t, err, ErrStarted)
	_, err = sb.Wait()
	assert.NoError(t, err)
}

func TestSandboxCombinedOutput(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		out, err := newSandbox(t, shell(t, `echo 1; echo 2 >&2; echo 3; echo 4 >&2; exit 5`)).CombinedOutput(testCtx(t))
		var ee *ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 5, ee.ExitCode)
		assert.Equal(t, "1\n2\n3\n4\n", string(out), "one pipe keeps the order")
	})
}

// TestSandboxPipes feeds a command through StdinPipe and reads it through
// StdoutPipe and StderrPipe, with and without an output limit (which puts
// a counting copy between the command and the pipe).
func TestSandboxPipes(t *testing.T) {
	for _, limit := range []int64{0, 1 << 20} {
		t.Run(map[bool]string{true: "limit", false: "nolimit"}[limit > 0], func(t *testing.T) {
			bothPaths(t, func(t *testing.T) {
				cfg := shell(t, `tr a-z A-Z; echo done >&2`)
				cfg.Limits.Output = limit
				stdin := checkPipes(t, newSandbox(t, cfg))
				// A second Close of stdin says nothing new.
				assert.NoError(t, stdin.Close())
			})
		})
	}
}

// piped is what Sandbox and Cmd share of os/exec's pipes.
type piped interface {
	StdinPipe() (io.WriteCloser, error)
	StdoutPipe() (io.ReadCloser, error)
	StderrPipe() (io.ReadCloser, error)
	Start(context.Context) error
	Wait() (*Result, error)
}

// checkPipes starts p, whose command upper-cases its stdin and then
// writes "done" to its stderr, feeds it through its stdin pipe, checks
// what its stdout and stderr pipes read, that it exited, and that Wait
// closed the pipes. It returns the stdin pipe, closed.
func checkPipes(t *testing.T, p piped) io.WriteCloser {
	t.Helper()
	stdin, err := p.StdinPipe()
	require.NoError(t, err)
	stdout, err := p.StdoutPipe()
	require.NoError(t, err)
	stderr, err := p.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.Start(testCtx(t)))
	_, err = io.WriteString(stdin, "hello\n")
	require.NoError(t, err)
	require.NoError(t, stdin.Close())
	out, err := io.ReadAll(stdout)
	require.NoError(t, err)
	assert.Equal(t, "HELLO\n", string(out))
	errOut, err := io.ReadAll(stderr)
	require.NoError(t, err)
	assert.Equal(t, "done\n", string(errOut))
	res, err := p.Wait()
	require.NoError(t, err)
	assert.Equal(t, Exited, res.Reason)
	_, err = stdout.Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrClosed, "Wait closes the pipes")
	return stdin
}

// TestSandboxPipesStartFails: the pipes of a sandbox whose start fails are
// closed, so that a reader is not left waiting.
func TestSandboxPipesStartFails(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		sb := newSandbox(t, Config{Args: []string{"no-such-command"}})
		stdout, err := sb.StdoutPipe()
		require.NoError(t, err)
		stdin, err := sb.StdinPipe()
		require.NoError(t, err)
		require.Error(t, sb.Start(testCtx(t)))
		_, err = stdout.Read(make([]byte, 1))
		assert.ErrorIs(t, err, os.ErrClosed)
		_, err = stdin.Write([]byte("x"))
		assert.ErrorIs(t, err, os.ErrClosed)
	})
}

// TestNotFoundNamesCommand: a command that is not found fails Start with
// an error naming it, on both paths, for the sandbox's command and for
// Exec; one looked up in PATH matches exec.ErrNotFound, as in os/exec.
func TestNotFoundNamesCommand(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		check := func(t *testing.T, err error, name string, lookedUp bool) {
			t.Helper()
			require.Error(t, err)
			assert.Contains(t, err.Error(), name)
			assert.ErrorIs(t, err, unix.ENOENT)
			assert.ErrorIs(t, err, ErrSetup)
			if lookedUp {
				assert.ErrorIs(t, err, exec.ErrNotFound)
				assert.Contains(t, err.Error(), "not found in $PATH")
			} else {
				assert.NotErrorIs(t, err, exec.ErrNotFound)
			}
		}
		_, err := newSandbox(t, Config{Args: []string{"no-such-command"}}).Run(testCtx(t))
		check(t, err, "no-such-command", true)
		_, err = newSandbox(t, Config{Args: []string{"/bin/no-such-command"}}).Run(testCtx(t))
		check(t, err, "/bin/no-such-command", false)

		sb := longLived(t, Config{})
		_, err = sb.Exec(testCtx(t), Cmd{Args: []string{"no-such-exec"}})
		check(t, err, "no-such-exec", true)
		err = sb.Command("no-such-cmd", "x").Start(testCtx(t))
		check(t, err, "no-such-cmd", true)
		_, err = sb.Command("/no/such").Output(testCtx(t))
		check(t, err, "/no/such", false)
	})
}

func TestCmdOutput(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		sb := longLived(t, Config{})
		bb := testutil.Busybox(t)
		out, err := sb.Command(bb, "sh", "-c", `echo out; echo err >&2`).Output(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, "out\n", string(out))

		out, err = sb.Command(bb, "sh", "-c", `echo out; echo why >&2; exit 2`).Output(testCtx(t))
		assert.Equal(t, "out\n", string(out))
		var ee *ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 2, ee.ExitCode)
		assert.Equal(t, "why\n", string(ee.Stderr))

		out, err = sb.Command(bb, "sh", "-c", `echo 1; echo 2 >&2; echo 3`).CombinedOutput(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, "1\n2\n3\n", string(out))

		// The Cmd's fields apply, as with Exec.
		c := sb.Command(bb, "sh", "-c", `echo $X; pwd`)
		c.Env, c.Dir = []string{"X=y"}, "/tmp"
		out, err = c.Output(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, "y\n/tmp\n", string(out))

		// Misuse.
		c = sb.Command(bb, "true")
		c.Stdout = io.Discard
		_, err = c.Output(testCtx(t))
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "Cmd.Stdout", ce.Field)
		c = sb.Command(bb, "true")
		_, err = c.Run(testCtx(t))
		require.NoError(t, err)
		assert.ErrorIs(t, c.Start(testCtx(t)), ErrStarted)
		_, err = c.StdinPipe()
		assert.ErrorIs(t, err, ErrStarted)
		_, err = sb.Command(bb, "true").Wait()
		assert.ErrorIs(t, err, ErrNotStarted)
		_, err = (&Cmd{Args: []string{"true"}}).Output(testCtx(t))
		assert.ErrorIs(t, err, errNoSandbox)
	})
}

func TestCmdPipes(t *testing.T) {
	for _, limit := range []int64{0, 1 << 20} {
		t.Run(map[bool]string{true: "limit", false: "nolimit"}[limit > 0], func(t *testing.T) {
			bothPaths(t, func(t *testing.T) {
				sb := longLived(t, Config{Limits: Limits{Output: limit}})
				c := sb.Command(testutil.Busybox(t), "sh", "-c", `tr a-z A-Z; echo done >&2`)
				checkPipes(t, c)
			})
		})
	}
}

// TestCmdStartReturnsWhileRunning: Start returns once the process runs,
// not when it ends; cancelling its ctx kills it, as with Exec.
func TestCmdStartReturnsWhileRunning(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		sb := longLived(t, Config{})
		ctx, cancel := context.WithCancel(testCtx(t))
		c := sb.Command(testutil.Busybox(t), "sleep", "100")
		stdout, err := c.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx))
		select {
		case <-c.run.done:
			t.Fatal("the process ended before Start returned")
		default:
		}
		cancel()
		_, err = io.ReadAll(stdout)
		require.NoError(t, err)
		res, err := c.Wait()
		var ee *ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, Cancelled, res.Reason)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestHeadTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"empty", nil, ""},
		{"short", []string{"ab", "cd"}, "abcd"},
		{"exactly head", []string{strings.Repeat("h", headTailSize)}, strings.Repeat("h", headTailSize)},
		{"head and tail", []string{strings.Repeat("h", headTailSize), strings.Repeat("t", headTailSize)},
			strings.Repeat("h", headTailSize) + strings.Repeat("t", headTailSize)},
		{"omits the middle", []string{strings.Repeat("h", headTailSize), "mmm", strings.Repeat("t", headTailSize)},
			strings.Repeat("h", headTailSize) + "\n... omitting 3 bytes ...\n" + strings.Repeat("t", headTailSize)},
		{"one large write", []string{strings.Repeat("h", headTailSize) + strings.Repeat("m", 10) + strings.Repeat("t", headTailSize-1) + "z"},
			strings.Repeat("h", headTailSize) + "\n... omitting 10 bytes ...\n" + strings.Repeat("t", headTailSize-1) + "z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h headTail
			for _, w := range tc.writes {
				n, err := h.Write([]byte(w))
				require.NoError(t, err)
				require.Equal(t, len(w), n)
			}
			assert.Equal(t, tc.want, string(h.Bytes()))
		})
	}
	// Many small writes wrap the ring: the tail ends with the last bytes.
	var h headTail
	for i := 0; i < 3*headTailSize; i++ {
		h.Write([]byte{byte('a' + i%26)})
	}
	b := h.Bytes()
	last := byte('a' + (3*headTailSize-1)%26)
	assert.Equal(t, last, b[len(b)-1])
	assert.Contains(t, string(b), "omitting 32768 bytes")
}
