//go:build linux

package sandbox

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The limits of a sandbox bind the processes Exec runs in it, with the
// same verdicts as for its own command.

// TestExecOutputLimit: Limits.Output cuts an Exec'd process's output at
// the limit, kills the process, and the verdict is OutputLimit; the
// sandbox goes on. Pool.Run too.
func TestExecOutputLimit(t *testing.T) {
	requireCgroup(t)
	const limit = 1 << 20
	cmd := Cmd{Args: []string{"yes", "flood"}, Timeout: 20 * time.Second}
	check := func(t *testing.T, res *Result, err error, w *countingWriter) {
		t.Helper()
		require.NotNil(t, res, "%v", err)
		assert.Equal(t, OutputLimit, res.Reason, "%v", res)
		assert.Equal(t, syscall.SIGKILL, res.Signal)
		var ee *ExitError
		assert.ErrorAs(t, err, &ee)
		assert.Equal(t, int64(limit), w.n.Load())
		assert.True(t, strings.HasPrefix(w.head.String(), "flood\nflood\n"), "%q", w.head.String())
	}
	sb := longLived(t, Config{Limits: Limits{Output: limit}})
	var w countingWriter
	cmd.Stdout = &w
	res, err := sb.Exec(context.Background(), cmd)
	check(t, res, err, &w)
	out, _, err := execSh(t, sb, "echo alive")
	require.NoError(t, err)
	assert.Equal(t, "alive\n", out)

	p := newTestPool(t, Config{Limits: Limits{Output: limit}}, 1)
	var pw countingWriter
	cmd.Stdout, cmd.Stderr = &pw, &pw
	res, err = p.Run(context.Background(), cmd)
	check(t, res, err, &pw)
}

// TestExecCPUTimeLimit: when an Exec'd process uses up the sandbox's
// Limits.CPUTime, the sandbox is killed and the verdict of the Exec is
// CPUTimeLimit, not a bare SIGKILL.
func TestExecCPUTimeLimit(t *testing.T) {
	requireCgroup(t)
	p := newTestPool(t, Config{Limits: Limits{CPUTime: 300 * time.Millisecond}}, 1)
	res, err := p.Run(context.Background(), Cmd{Args: []string{"sh", "-c", "while :; do :; done"}, Timeout: 30 * time.Second})
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, CPUTimeLimit, res.Reason, "%v", res)
	assert.Equal(t, syscall.SIGKILL, res.Signal)
}

// TestExecOOM: an Exec'd process that the OOM killer kills at
// Limits.Memory gets the verdict OOMKilled, from the group's counter.
func TestExecOOM(t *testing.T) {
	requireCgroup(t)
	sb := longLived(t, Config{Limits: Limits{Memory: 32 << 20}})
	res, err := sb.Exec(context.Background(), Cmd{
		Args:    []string{"awk", `BEGIN { s = "xxxxxxxxxxxxxxxx"; while (1) s = s s }`},
		Timeout: 30 * time.Second,
	})
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, OOMKilled, res.Reason, "%v", res)
	assert.Positive(t, res.OOMKills)
	// A SIGKILL from elsewhere is no OOM verdict.
	res, _ = sb.Exec(context.Background(), Cmd{Args: []string{"sh", "-c", "kill -9 $$"}})
	require.NotNil(t, res)
	assert.Equal(t, Signaled, res.Reason, "%v", res)
}
