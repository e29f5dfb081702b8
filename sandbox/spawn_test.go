//go:build linux

package sandbox

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
	// A first burst grows the runtime's own pool of threads, which it
	// keeps (newuidmap's waits, with subordinate ids, block threads for a
	// while): counted from after it, what the second leaves is ours.
	warm, sandboxes := make([]*Sandbox, n), make([]*Sandbox, n)
	t.Cleanup(func() { // a failed check leaves no sandbox
		for _, sb := range append(warm, sandboxes...) {
			if sb != nil {
				sb.Close()
			}
		}
	})
	concurrently(t, n, func(i int) error {
		warm[i] = New(testConfig(shell(t, "sleep 100")))
		return warm[i].Start(context.Background())
	})
	for _, sb := range warm {
		require.NoError(t, sb.Kill(unix.SIGKILL))
		sb.Wait()
	}
	// The warm-up's spawners retire.
	require.Eventually(t, func() bool { return idleSpawners() <= maxIdleSpawners() },
		20*sweepInterval, sweepInterval/10, "%d idle spawners after the warm-up", idleSpawners())
	before := threads(t)
	// One sandbox outlives the burst.
	keep := New(testConfig(shell(t, "sleep 100")))
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

// TestAwaitExitOfAnExitedChild: awaitExit returns for a child that has
// already exited. Its pidfd is readable from the start, and the poller may
// take that one readiness edge before the wait begins; awaitExit must look
// at the pidfd itself rather than wait for an edge that never comes again
// (the init then stayed a zombie, and Wait and Close hung).
func TestAwaitExitOfAnExitedChild(t *testing.T) {
	// The poller runs on other threads meanwhile, as in a busy program.
	stop := make(chan struct{})
	defer close(stop)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
	}
	for i := range 300 {
		cmd := exec.Command("/bin/true")
		require.NoError(t, cmd.Start())
		pid := cmd.Process.Pid
		// Until it is a zombie: waited for, but not reaped.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				require.NoError(t, err)
				break
			}
		}
		done := make(chan struct{})
		go func() {
			awaitExit(pid)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Wait() // ends awaitExit too, once the pidfd says the child is gone
			t.Fatalf("awaitExit did not return for a child that had exited (round %d)", i)
		}
		require.NoError(t, cmd.Wait())
	}
}

// TestSpawnersComeHome: a spawner that forked into a network namespace
// goes back to the one it came from, even while another spawner, which
// may run on the main thread, is inside a namespace of its own: /proc/self
// names the main thread's. Else a later sandbox sharing the host's network
// got a dead sandbox's namespace instead.
func TestSpawnersComeHome(t *testing.T) {
	testutil.RequireRoot(t)
	home, err := os.Readlink("/proc/thread-self/ns/net")
	require.NoError(t, err)
	nsFD := make(chan int, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			nsFD <- -1
			return
		}
		fd, _ := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		nsFD <- fd
	}()
	fd := <-nsFD
	require.GreaterOrEqual(t, fd, 0)
	defer unix.Close(fd)
	checked := 0
	for range 200 {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				onSpawner(fd, func() error { time.Sleep(200 * time.Microsecond); return nil })
			}()
		}
		wg.Wait()
		spawnMu.Lock()
		for _, s := range idle {
			got, err := os.Readlink("/proc/self/task/" + strconv.Itoa(s.tid) + "/ns/net")
			if err == nil && got != home {
				spawnMu.Unlock()
				t.Fatalf("spawner thread %d is in %s after its job, want %s", s.tid, got, home)
			}
			if err == nil {
				checked++
			}
		}
		spawnMu.Unlock()
	}
	require.Positive(t, checked, "no idle spawner's namespace could be read")
	t.Logf("%d idle spawners checked", checked)
}
