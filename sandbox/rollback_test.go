//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

func TestRollbackUnwindsInReverse(t *testing.T) {
	var r rollback
	var got []int
	for i := range 3 {
		r.push(func() { got = append(got, i) })
	}
	r.unwind()
	assert.Equal(t, []int{2, 1, 0}, got)
	r.unwind()
	assert.Equal(t, []int{2, 1, 0}, got, "a second unwind runs nothing")

	got = nil
	r.push(func() { got = append(got, 9) })
	r.release()
	r.unwind()
	assert.Empty(t, got, "after release, unwind runs nothing")

	// An undo step may push no more, but it may run while others wait.
	r.push(func() { got = append(got, 1) })
	r.push(func() { got = append(got, 2) })
	r.unwind()
	assert.Equal(t, []int{2, 1}, got)
}

// rollbackSteps are the steps at which a start with a cgroup, a link, a
// piped stdin and output can fail, on each start path. Each must be
// reached by a start that succeeds.
var rollbackSteps = map[string][]string{
	"raw":  {"network", "cgroup", "spec", "compile", "sources", "stdio", "clone", "cloned", "handshake", "started"},
	"init": {"network", "cgroup", "spec", "socketpair", "output", "stdin", "fork", "forked", "handshake", "started"},
}

// TestStartFailsAtEveryStep fails a start at each of its setup steps in
// turn, on both start paths, and checks that Start returns the step's
// SetupError and that nothing it acquired is left on the host: no
// descriptor of the test process, no child process, no mount, no cgroup,
// no link or network namespace.
func TestStartFailsAtEveryStep(t *testing.T) {
	testutil.RequireRoot(t)
	requireNet(t)
	bb := testutil.Busybox(t)
	for _, path := range []string{"raw", "init"} {
		t.Run(path, func(t *testing.T) {
			if path == "init" {
				onInitPath(t)
			} else if rawPathOnly(t); !rawWanted() {
				testutil.RequireFeature(t, "raw start", errors.New("sandboxes start through the init stage here"), "see Probe")
			}
			// stdin blocks until the test ends: its feed must be closed by
			// the rollback, not by the end of the input.
			stdinR, stdinW := io.Pipe()
			t.Cleanup(func() { stdinW.Close() })
			cfg := func() Config {
				return Config{
					Args:    []string{bb, "cat"},
					Limits:  testLimits(Limits{Pids: 32}),
					Network: Network{Link: &Link{}},
					Stdin:   stdinR,
					Stdout:  &bytes.Buffer{},
				}
			}
			// A start that succeeds passes every step, and makes what
			// the process keeps for later starts (the reaper's memfd, the
			// network's bridge) before the snapshots.
			var reached []string
			faultHook = func(step string) error { reached = append(reached, step); return nil }
			t.Cleanup(func() { faultHook = nil })
			sb := New(cfg())
			require.NoError(t, sb.Start(context.Background()))
			require.NoError(t, sb.Kill(syscall.SIGKILL))
			sb.Wait()
			for _, step := range rollbackSteps[path] {
				assert.Contains(t, reached, step, "a start that succeeds reaches every step")
			}
			for _, step := range rollbackSteps[path] {
				t.Run(step, func(t *testing.T) {
					checks := slices.Concat(testutil.DefaultLeakChecks, testutil.NetworkLeakChecks,
						[]testutil.LeakCheck{{Name: "network namespace fd", Snapshot: testutil.NetnsFDs}})
					testutil.CheckAfter(t, 5*time.Second, checks...)
					injected := errors.New("injected fault")
					faultHook = func(s string) error {
						if s == step {
							return injected
						}
						return nil
					}
					sb := New(cfg())
					err := sb.Start(context.Background())
					faultHook = nil
					require.ErrorIs(t, err, injected)
					var se *SetupError
					require.ErrorAs(t, err, &se)
					assert.Equal(t, step, se.Stage)
					_, werr := sb.Wait()
					assert.ErrorIs(t, werr, injected, "Wait reports the failed start")
				})
			}
		})
	}
}
