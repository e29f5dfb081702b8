//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// blockingWriter is a Stdout whose Write blocks until the test ends.
type blockingWriter struct {
	release chan struct{}
	calls   atomic.Int64
}

func newBlockingWriter(t *testing.T) *blockingWriter {
	w := &blockingWriter{release: make(chan struct{})}
	t.Cleanup(func() { close(w.release) })
	return w
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.calls.Add(1)
	<-w.release
	return len(p), nil
}

// failingWriter is a Stdout whose every Write fails.
type failingWriter struct{ calls atomic.Int64 }

var errWriterBroken = errors.New("writer broken")

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls.Add(1)
	return 0, errWriterBroken
}

// returnsWithin calls f and fails the test unless it returns within
// bound; it then returns what f returned. bound is a guard against a
// hang, not a measure of speed.
func returnsWithin[T any](t *testing.T, bound time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(bound):
		t.Fatalf("%s did not return within %v", what, bound)
		panic("unreachable")
	}
}

type runResult struct {
	res  *Result
	err  error
	wall time.Duration
}

// hangGuard is how much longer than Timeout plus WaitDelay a test lets a
// run take before it calls it hung: generous, for a loaded machine.
const hangGuard = 20 * time.Second

// TestRunBlockingWriter: a Stdout that blocks keeps neither Run past
// Timeout plus WaitDelay, nor its verdict from being Timeout.
func TestRunBlockingWriter(t *testing.T) {
	w := newBlockingWriter(t)
	cfg := shell(t, `echo hello; sleep 100`)
	cfg.Stdout = w
	testutil.RequireUserNamespaces(t)
	cfg.Timeout = killTimeout(t)
	cfg.WaitDelay = 200 * time.Millisecond
	cfg = testConfig(cfg)
	r := returnsWithin(t, cfg.Timeout+cfg.WaitDelay+hangGuard, "Run", func() runResult {
		start := time.Now()
		res, err := New(cfg).Run(context.Background())
		return runResult{res, err, time.Since(start)}
	})
	require.NotNil(t, r.res, "%v", r.err)
	assert.Equal(t, Timeout, r.res.Reason, "%v", r.err)
	assert.GreaterOrEqual(t, r.wall, cfg.Timeout+cfg.WaitDelay, "Run did not wait WaitDelay for the output")
	assert.Positive(t, w.calls.Load(), "the writer was never called")
	t.Logf("Run returned after %v", r.wall)
}

// TestExecBlockingWriter: the same for Exec, with Cmd.Timeout.
func TestExecBlockingWriter(t *testing.T) {
	w := newBlockingWriter(t)
	sb := longLived(t, Config{WaitDelay: 200 * time.Millisecond})
	cmd := Cmd{Args: []string{"sh", "-c", "echo hello; sleep 100"}, Stdout: w, Timeout: killTimeout(t)}
	r := returnsWithin(t, cmd.Timeout+200*time.Millisecond+hangGuard, "Exec", func() runResult {
		start := time.Now()
		res, err := sb.Exec(context.Background(), cmd)
		return runResult{res, err, time.Since(start)}
	})
	require.NotNil(t, r.res, "%v", r.err)
	assert.Equal(t, Timeout, r.res.Reason, "%v", r.err)
	assert.Positive(t, w.calls.Load(), "the writer was never called")
	t.Logf("Exec returned after %v", r.wall)

	// A process that ends well while the writer blocks: the Result says
	// so, and the error is ErrWaitDelay.
	r = returnsWithin(t, 200*time.Millisecond+hangGuard, "Exec", func() runResult {
		res, err := sb.Exec(context.Background(), Cmd{Args: []string{"echo", "hello"}, Stdout: w})
		return runResult{res: res, err: err}
	})
	require.NotNil(t, r.res, "%v", r.err)
	assert.Equal(t, Exited, r.res.Reason)
	assert.ErrorIs(t, r.err, ErrWaitDelay)
}

// TestExecFailingWriter: a Stdout that fails does not leave the process
// blocked on a full pipe: it runs to its end, and Exec reports the write
// error with the Result.
func TestExecFailingWriter(t *testing.T) {
	sb := longLived(t, Config{})
	var w failingWriter
	cmd := Cmd{
		Args:    []string{"sh", "-c", "head -c 4000000 /dev/zero; echo done"},
		Stdout:  &w,
		Timeout: 15 * time.Second, // before the fix, the process blocked until then
	}
	res, err := sb.Exec(context.Background(), cmd)
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, Exited, res.Reason, "%v", res)
	assert.Equal(t, 0, res.ExitCode)
	var oe *OutputError
	require.ErrorAs(t, err, &oe)
	assert.ErrorIs(t, err, errWriterBroken)
	assert.Equal(t, int64(1), w.calls.Load(), "the writer was called again after it failed")
}

// TestRunFailingWriter: the same for Run.
func TestRunFailingWriter(t *testing.T) {
	var w failingWriter
	cfg := shell(t, `head -c 4000000 /dev/zero; echo done`)
	cfg.Stdout = &w
	cfg.Timeout = 15 * time.Second
	o := run(t, cfg)
	require.NotNil(t, o.res, "%v", o.err)
	assert.Equal(t, Exited, o.res.Reason, "%v", o.res)
	assert.ErrorIs(t, o.err, errWriterBroken)
}

// combinedScript writes n numbered lines to each of stdout and stderr,
// alternating.
func combinedScript(n int) string {
	return fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo out$i; echo err$i >&2; i=$((i+1)); done`, n)
}

// checkCombined checks that every line of combinedScript(n) arrived once.
func checkCombined(t *testing.T, n int, got string) {
	t.Helper()
	l := lines(got)
	assert.Equal(t, 2*n, len(l), "lines lost or garbled")
	seen := map[string]bool{}
	for _, s := range l {
		seen[s] = true
	}
	for i := range n {
		if !seen[fmt.Sprintf("out%d", i)] || !seen[fmt.Sprintf("err%d", i)] {
			t.Errorf("line %d is missing", i)
			return
		}
	}
}

// TestExecCombinedOutput: one bytes.Buffer as Stdout and Stderr, os/exec's
// idiom for combined output, is written from one goroutine only: no
// panic, no line lost.
func TestExecCombinedOutput(t *testing.T) {
	sb := longLived(t, Config{})
	const n = 2000
	for range 5 {
		var buf bytes.Buffer
		_, err := sb.Exec(context.Background(), Cmd{Args: []string{"sh", "-c", combinedScript(n)}, Stdout: &buf, Stderr: &buf})
		require.NoError(t, err)
		checkCombined(t, n, buf.String())
	}
}

// TestPoolCombinedOutput: the same through Pool.Run, and Run.
func TestPoolCombinedOutput(t *testing.T) {
	p := newTestPool(t, Config{}, 1)
	const n = 2000
	for range 3 {
		var buf bytes.Buffer
		_, err := p.Run(context.Background(), Cmd{Args: []string{"sh", "-c", combinedScript(n)}, Stdout: &buf, Stderr: &buf})
		require.NoError(t, err)
		checkCombined(t, n, buf.String())
	}
	var buf bytes.Buffer
	cfg := shell(t, combinedScript(n))
	cfg.Stdout, cfg.Stderr = &buf, &buf
	o := run(t, cfg)
	require.NoError(t, o.err)
	checkCombined(t, n, buf.String())
}

// countingWriter counts what it is given and keeps its first bytes.
type countingWriter struct {
	n    atomic.Int64
	head strings.Builder
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.head.Len() < 64 {
		w.head.Write(p[:min(len(p), 64)])
	}
	w.n.Add(int64(len(p)))
	return len(p), nil
}
