//go:build linux

package sandbox

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/testutil"
)

// TestDefaultCapsForkBomb: the zero Limits stop a fork bomb at
// DefaultPids, with the verdict in the Result: forks refused, a peak at
// the cap.
func TestDefaultCapsForkBomb(t *testing.T) {
	requireCgroup(t)
	testutil.RequireUserNamespaces(t)
	cfg := selfInSandbox(t, "forkbomb")
	// Run the bomb until the cap refuses a fork, however long a loaded
	// machine takes to reach it (bounded), rather than for a fixed time.
	cfg.Timeout = time.Minute
	sb := New(cfg)
	t.Cleanup(func() { sb.Close() }) // a failed check leaves no bomb running
	require.NoError(t, sb.Start(context.Background()))
	for {
		st, err := sb.Stats()
		require.NoError(t, err)
		if st.ForksRefused > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond) // polls a counter; Timeout bounds it
	}
	require.NoError(t, sb.Kill(syscall.SIGKILL))
	res, err := sb.Wait()
	require.Error(t, err)
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, Signaled, res.Reason, "%v", err)
	assert.Positive(t, res.ForksRefused, "no fork was refused")
	assert.LessOrEqual(t, res.PidsPeak, int64(DefaultPids))
	t.Logf("%d forks refused, peak %d", res.ForksRefused, res.PidsPeak)
	assertNoGroup(t, sb)
	assertNoChildren(t)
}

// TestDefaultCapsMemory: the zero Limits stop a process that grows
// without end at DefaultMemory.
func TestDefaultCapsMemory(t *testing.T) {
	requireCgroup(t)
	if (cgroup.Config{Limits: cgroup.Limits{Memory: DefaultMemory}}).Validate() != nil {
		t.Skip("no memory controller: the default memory cap is RLIMIT_DATA here")
	}
	cfg := shell(t, `awk 'BEGIN { s = "xxxxxxxxxxxxxxxx"; while (1) s = s s }'`)
	sb, res, err := runLimited(t, cfg)
	require.Error(t, err)
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, OOMKilled, res.Reason, "%v", res)
	assert.LessOrEqual(t, res.MemoryPeak, int64(DefaultMemory)+1<<20)
	assertNoGroup(t, sb)
}

// countWriter counts what is written to it and keeps nothing.
type countWriter struct{ n atomic.Int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

// TestDefaultCapsOutput: output that the calling process copies ends at
// DefaultOutput with OutputLimit; Unlimited lifts it; output written to
// an *os.File directly is not limited by default.
func TestDefaultCapsOutput(t *testing.T) {
	n := DefaultOutput + 1<<20
	script := "head -c " + strconv.Itoa(n) + " /dev/zero"

	var w countWriter
	cfg := shell(t, script)
	cfg.Stdout = &w
	o := run(t, cfg)
	require.Error(t, o.err)
	require.NotNil(t, o.res, "%v", o.err)
	assert.Equal(t, OutputLimit, o.res.Reason, "%v", o.res)
	assert.Equal(t, int64(DefaultOutput), w.n.Load())

	var all countWriter
	cfg.Stdout = &all
	cfg.Limits.Output = Unlimited
	o = run(t, cfg)
	require.NoError(t, o.err, o.stderr)
	assert.Equal(t, int64(n), all.n.Load())

	f, err := os.Create(os.DevNull)
	require.NoError(t, err)
	defer f.Close()
	cfg.Stdout = f
	cfg.Limits.Output = 0
	o = run(t, cfg)
	require.NoError(t, o.err, "output to an *os.File has no default limit: %s", o.stderr)
}

// TestDefaultCapsLifted: DefaultPids refuses the 1100th task of a
// sandbox; a higher Limits.Pids, or Unlimited, lets it run. Without a
// group (an ordinary user) RLIMIT_NPROC stands in for it.
func TestDefaultCapsLifted(t *testing.T) {
	script := `i=0; while [ $i -lt 1100 ]; do sleep 30 & i=$((i+1)); done 2>/dev/null; echo started $i; kill $(jobs -p) 2>/dev/null; wait`
	cfg := shell(t, script)
	cfg.Timeout = 30 * time.Second
	o := run(t, cfg)
	assert.NotContains(t, o.stdout, "started 1100", "DefaultPids let 1100 tasks run")

	for _, pids := range []int64{2048, Unlimited} {
		cfg.Limits.Pids = pids
		if pids > 0 && os.Geteuid() != 0 {
			// An ordinary user raises the rlimit instead.
			cfg.Limits.Pids, cfg.Limits.Rlimits.Processes = 0, pids
		}
		o = run(t, cfg)
		assert.Contains(t, o.stdout, "started 1100", "Pids %d: %s", pids, o.stderr)
	}
}

// TestDefaultCapsPlan: where host root may have a group, the default caps
// are the group's; a field set or lifted takes its own way.
func TestDefaultCapsPlan(t *testing.T) {
	requireCgroup(t)
	var none Limits
	g := none.cgroupConfig()
	d := defaultCaps(&none, &g)
	assert.ElementsMatch(t, []string{"Limits.Pids", "Limits.Memory"}, d.inGroup)
	assert.Empty(t, d.rlimits)
	assert.Equal(t, int64(DefaultPids), g.Limits.Pids)
	assert.Equal(t, int64(DefaultMemory), g.Limits.Memory)

	lifted := Limits{Pids: Unlimited, Memory: Unlimited}
	g = lifted.cgroupConfig()
	d = defaultCaps(&lifted, &g)
	assert.Empty(t, d.inGroup)
	assert.Empty(t, d.rlimits)
	assert.Zero(t, g.Limits.Pids)
	assert.Zero(t, g.Limits.Memory)
}
