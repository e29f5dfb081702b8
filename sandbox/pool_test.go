//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

func newTestPool(t *testing.T, cfg Config, n int) *Pool {
	t.Helper()
	testutil.RequireRoot(t)
	p, err := NewPool(cfg, n)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPoolRunsInFreshSandboxes(t *testing.T) {
	p := newTestPool(t, Config{}, 2)
	run := func(script string) string {
		var out strings.Builder
		_, err := p.Run(context.Background(), Cmd{Args: []string{testutil.Busybox(t), "sh", "-c", script}, Stdout: &out})
		require.NoError(t, err, out.String())
		return out.String()
	}
	// A run that pollutes its sandbox with files, processes and memory...
	run(`echo secret > /work/left; echo tmp > /tmp/left; echo shm > /dev/shm/left
		setsid sleep 1000 >/dev/null 2>&1 < /dev/null &
		head -c 20000000 /dev/zero > /dev/shm/big || true`)
	// ...is never visible to the next.
	out := run(`ls -A /work /tmp /dev/shm | grep -v : | grep . ; ps -o comm | grep -c sleep; true`)
	assert.Equal(t, "0\n", out, "the next run sees a fresh sandbox")
	waitFor(t, func() bool { return p.Ready() == 2 })
}

func TestPoolConcurrent(t *testing.T) {
	p := newTestPool(t, Config{}, 4)
	concurrently(t, 16, func(i int) error {
		var out strings.Builder
		_, err := p.Run(context.Background(), Cmd{Args: []string{"sh", "-c", fmt.Sprintf("echo %d; echo $$ > /work/me", i)}, Stdout: &out})
		if err == nil && out.String() != fmt.Sprintf("%d\n", i) {
			err = fmt.Errorf("run %d printed %q", i, out.String())
		}
		return err
	})
}

func TestPoolTimeoutAndClose(t *testing.T) {
	p := newTestPool(t, Config{Timeout: 200 * time.Millisecond}, 1)
	time.Sleep(300 * time.Millisecond) // the wait in the pool does not count
	res, err := p.Run(context.Background(), Cmd{Args: []string{"true"}})
	require.NoError(t, err)
	assert.Equal(t, Exited, res.Reason)
	res, err = p.Run(context.Background(), Cmd{Args: []string{"sleep", "100"}})
	require.Error(t, err)
	assert.Equal(t, Timeout, res.Reason)
	require.NoError(t, p.Close())
	_, err = p.Run(context.Background(), Cmd{Args: []string{"true"}})
	assert.ErrorIs(t, err, ErrPoolClosed)
	assertNoChildren(t)
}

func TestPoolBadConfig(t *testing.T) {
	_, err := NewPool(Config{Args: []string{"true"}}, 1)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewPool(Config{}, 0)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewPool(Config{Dir: "relative"}, 1)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Dir", ce.Field)
}

// Output and CombinedOutput run a command from the pool as Run does and
// collect what it writes, as Sandbox's do.
func TestPoolOutput(t *testing.T) {
	p := newTestPool(t, Config{}, 1)
	ctx := context.Background()
	sh := func(script string) Cmd { return Cmd{Args: []string{testutil.Busybox(t), "sh", "-c", script}} }
	out, err := p.Output(ctx, sh("echo out; echo err >&2"))
	require.NoError(t, err)
	assert.Equal(t, "out\n", string(out))

	out, err = p.Output(ctx, sh("echo partial; echo why >&2; exit 3"))
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.Result.ExitCode)
	assert.Equal(t, "why\n", string(ee.Stderr), "the failed run's standard error")
	assert.Equal(t, "partial\n", string(out))

	out, err = p.CombinedOutput(ctx, sh("echo one; echo two >&2; echo three"))
	require.NoError(t, err)
	assert.Equal(t, "one\ntwo\nthree\n", string(out))

	var ce *ConfigError
	_, err = p.Output(ctx, Cmd{Args: []string{"true"}, Stdout: &strings.Builder{}})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Cmd.Stdout", ce.Field)
	_, err = p.CombinedOutput(ctx, Cmd{Args: []string{"true"}, Stderr: &strings.Builder{}})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Cmd.Stderr", ce.Field)
}
