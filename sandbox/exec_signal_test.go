//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// TestExecSignals checks that signals sent on Cmd.Signals reach the
// Exec'd process: a handled SIGTERM and SIGUSR1 run its traps, and an
// unhandled SIGHUP ends it as a signal, while the sandbox goes on.
func TestExecSignals(t *testing.T) {
	sb := longLived(t, Config{})
	bb := testutil.Busybox(t)
	pr, pw := io.Pipe()
	defer pr.Close()
	sigs := make(chan syscall.Signal, 1)
	done := make(chan struct{})
	var res *Result
	var execErr error
	go func() {
		defer close(done)
		defer pw.Close()
		res, execErr = sb.Exec(context.Background(), Cmd{
			Args: []string{bb, "sh", "-c", `
				trap 'echo usr1' USR1
				trap 'echo term; exit 3' TERM
				echo ready
				while :; do sleep 0.05; done`},
			Stdout:  pw,
			Signals: sigs,
			Timeout: 20 * time.Second,
		})
	}()
	r := bufio.NewReader(pr)
	line := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			<-done
			t.Fatalf("read: %v; exec: %v %+v", err, execErr, res)
		}
		return l
	}
	require.Equal(t, "ready\n", line())
	sigs <- syscall.SIGUSR1
	assert.Equal(t, "usr1\n", line())
	sigs <- syscall.SIGTERM
	assert.Equal(t, "term\n", line())
	<-done
	require.Error(t, execErr) // an *ExitError: it exited with 3
	assert.Equal(t, 3, res.ExitCode)

	// An unhandled signal ends the process with that signal.
	sigs = make(chan syscall.Signal, 1)
	sigs <- syscall.SIGHUP // before it starts: delivered once it runs
	res, _ = sb.Exec(context.Background(), Cmd{
		Args: []string{bb, "sh", "-c", `while :; do sleep 0.05; done`}, Signals: sigs, Timeout: 20 * time.Second,
	})
	require.NotNil(t, res)
	assert.Equal(t, Signaled, res.Reason)
	assert.Equal(t, syscall.SIGHUP, res.Signal)

	out, _, err := execSh(t, sb, `echo still-here`)
	require.NoError(t, err)
	assert.Equal(t, "still-here\n", out)
}
