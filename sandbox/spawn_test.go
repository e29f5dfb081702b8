package sandbox

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// threads returns how many threads this process has.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

func idleSpawners() int {
	spawnMu.Lock()
	defer spawnMu.Unlock()
	return len(idle)
}

// TestThreadsAfterBurst: a burst of concurrent sandboxes leaves no more
// threads behind than the idle spawners kept and the runtime's own: each
// sandbox's wait for its init holds no thread, and the spawners beyond
// maxIdleSpawners end once their sandboxes are gone. A spawner whose
// sandbox still runs stays, or the sandbox would die of its parent-death
// signal.
func TestThreadsAfterBurst(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	const n = 32
	before := threads(t)
	// One sandbox outlives the burst.
	keep := New(testConfig(shell(t, "sleep 100")))
	sandboxes := make([]*Sandbox, n)
	concurrently(t, n, func(i int) error {
		if i == 0 {
			sandboxes[i] = keep
		} else {
			sandboxes[i] = New(testConfig(shell(t, "sleep 100")))
		}
		return sandboxes[i].Start(context.Background())
	})
	peak := threads(t)
	for _, sb := range sandboxes[1:] {
		require.NoError(t, sb.Kill(unix.SIGKILL))
		sb.Wait()
	}
	// The sweep retires the spawners of the ended sandboxes.
	bound := before + maxIdleSpawners() + runtime.GOMAXPROCS(0) + 4
	assert.Eventually(t, func() bool { return threads(t) <= bound && idleSpawners() <= maxIdleSpawners() },
		20*sweepInterval, sweepInterval/10,
		"%d threads before the burst, %d at its peak, %d after (at most %d expected), %d idle spawners",
		before, peak, threads(t), bound, idleSpawners())
	t.Logf("threads: %d before the burst of %d sandboxes, %d at its peak, %d after; %d idle spawners",
		before, n, peak, threads(t), idleSpawners())

	// The sandbox that runs on was not killed by its spawner's end.
	select {
	case <-keep.done:
		res, err := keep.Wait()
		t.Fatalf("the sandbox that outlived the burst ended: %v %v", res, err)
	default:
	}
	require.NoError(t, keep.Kill(unix.SIGKILL))
	res, _ := keep.Wait()
	require.NotNil(t, res)
	assert.Equal(t, Signaled, res.Reason)
}
