//go:build linux

package sandbox

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/testutil"
)

// The tests of this file inject faults from outside the library (an init
// killed during Start, a seccomp policy that kills the init, a cgroup
// frozen by someone else) and check that every call returns within a bound
// with a typed error or the right verdict, leaving nothing behind.

// startWorst is the longest of three whole sandbox runs of true on this
// machine, measured once, when the first test asks.
func startWorst(t *testing.T) time.Duration {
	t.Helper()
	worstOnce.Do(func() {
		bb := testutil.Busybox(t)
		for range 3 {
			start := time.Now()
			_, err := New(testConfig(Config{Args: []string{bb, "true"}})).Run(context.Background())
			require.NoError(t, err)
			worst = max(worst, time.Since(start))
		}
	})
	return worst
}

var (
	worstOnce sync.Once
	worst     time.Duration
)

// faultSlack is how much longer than its own deadline an operation may take
// under a fault: ten times startWorst, plus the library's own grace
// periods.
func faultSlack(t *testing.T) time.Duration {
	t.Helper()
	return 10*startWorst(t) + drainGrace + closeGrace
}

// killTimeout is a Timeout for a test whose command must be running when
// the Timeout kills it: a Timeout counts the start too, so it is twenty
// times startWorst, and at least 300 ms.
func killTimeout(t *testing.T) time.Duration {
	t.Helper()
	return max(300*time.Millisecond, 20*startWorst(t))
}

// within runs f and fails the test unless it returns within bound.
func within[T any](t *testing.T, what string, bound time.Duration, f func() T) T {
	t.Helper()
	got := make(chan T, 1)
	go func() { got <- f() }()
	select {
	case v := <-got:
		return v
	case <-time.After(bound):
		t.Fatalf("%s did not return within %v", what, bound)
		panic("unreachable")
	}
}

// setStartHook makes Start call hook for the test's duration.
func setStartHook(t *testing.T, hook func(stage string, pid int)) {
	startHook = hook
	t.Cleanup(func() { startHook = nil })
}

// assertPidGone checks that the process pid has ended and been reaped.
func assertPidGone(t *testing.T, pid int) {
	t.Helper()
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	assert.True(t, os.IsNotExist(err), "process %d is still there", pid)
}

// TestStartInitKilled kills the init from outside while Start waits for
// it, before and after the go-ahead: Start returns a SetupError at once and
// leaves nothing behind. It used to wait forever, holding a copy of the
// init's end of the socket.
func TestStartInitKilled(t *testing.T) {
	onInitPath(t)
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	bound := faultSlack(t)
	for _, stage := range []string{"forked", "go"} {
		t.Run(stage, func(t *testing.T) {
			for range 5 {
				var initPid int
				setStartHook(t, func(s string, pid int) {
					if s == stage {
						initPid = pid
						unix.Kill(pid, unix.SIGKILL)
					}
				})
				// With a limit, so that there is a cgroup to remove too.
				sb := New(testConfig(Config{Args: []string{bb, "true"}, Limits: testLimits(Limits{Pids: 64})}))
				err := within(t, "Start", bound, func() error { return sb.Start(context.Background()) })
				var se *SetupError
				require.ErrorAs(t, err, &se)
				assert.Contains(t, err.Error(), "killed by SIGKILL")
				require.NotZero(t, initPid)
				assertPidGone(t, initPid)
				_, werr := sb.Wait()
				assert.Equal(t, err, werr)
			}
			assertNoChildren(t)
		})
	}
}

// testLimits returns l for a test that wants a cgroup: as an ordinary
// user, under the delegated cgroup STOCKADE_TEST_CGROUP_PARENT names (as
// .ci/rootless does), or no limits at all when none is named, since the
// user may create no cgroup elsewhere.
func testLimits(l Limits) Limits {
	if os.Geteuid() == 0 {
		return l
	}
	parent := os.Getenv("STOCKADE_TEST_CGROUP_PARENT")
	if parent == "" {
		return Limits{}
	}
	l.CgroupParent = parent
	return l
}

// TestStartSeccompKillsTheInit starts a sandbox whose seccomp policy kills
// every system call: the init dies as soon as the filter is on, before it
// reports, and Start says so with a SetupError.
func TestStartSeccompKillsTheInit(t *testing.T) {
	onInitPath(t)
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	cfg := testConfig(Config{Args: []string{bb, "true"}})
	cfg.Security.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}
	sb := New(cfg)
	err := within(t, "Start", faultSlack(t), func() error { return sb.Start(context.Background()) })
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "init", se.Stage)
	assert.Contains(t, err.Error(), "killed by SIGSYS", "the filter's kill")
	assertNoChildren(t)
}

// freeze freezes the sandbox's group from outside, as an operator would:
// through the v1 freezer of the cgroup that /proc says its init is in.
// It returns the function that thaws it again.
func freeze(t *testing.T, sb *Sandbox) (thaw func()) {
	t.Helper()
	pid := pid1(sb)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	require.NoError(t, err)
	var state string
	for line := range strings.Lines(string(b)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) == 3 && parts[1] == "freezer" {
			state = "/sys/fs/cgroup/freezer" + parts[2] + "/freezer.state"
		}
	}
	if state == "" {
		testutil.Skip(t, "no v1 freezer hierarchy", "mount the freezer controller")
	}
	require.NoError(t, os.WriteFile(state, []byte("FROZEN"), 0))
	waitFor(t, func() bool {
		s, _ := os.ReadFile(state)
		return strings.TrimSpace(string(s)) == "FROZEN"
	})
	return func() { os.WriteFile(state, []byte("THAWED"), 0) }
}

// frozenSandbox starts cfg (with a limit, so that it has a group) and
// freezes it from outside; the sandbox is thawed and closed when the test
// ends, whatever happens.
func frozenSandbox(t *testing.T, ctx context.Context, cfg Config) *Sandbox {
	t.Helper()
	testutil.RequireRoot(t)
	cfg.Limits.Pids = 64
	sb := New(testConfig(cfg))
	require.NoError(t, sb.Start(ctx))
	thaw := freeze(t, sb)
	t.Cleanup(func() {
		thaw()
		sb.Close()
	})
	return sb
}

// TestFrozenFromOutside freezes a sandbox's cgroup from outside and then
// ends it every way there is: each returns within its bound, with the
// verdict it would have without the freeze. SIGKILL reaches the tasks of a
// frozen v1 group only once it is thawed, so these used to hang until
// someone thawed it.
func TestFrozenFromOutside(t *testing.T) {
	bb := testutil.Busybox(t)
	sleep := []string{bb, "sleep", "1000"}
	bound := faultSlack(t)
	const timeout = 300 * time.Millisecond

	t.Run("Timeout", func(t *testing.T) {
		sb := frozenSandbox(t, context.Background(), Config{Args: sleep, Timeout: timeout})
		res := within(t, "Wait", timeout+bound, func() *Result { r, _ := sb.Wait(); return r })
		require.NotNil(t, res)
		assert.Equal(t, Timeout, res.Reason, res.String())
		assertGone(t, sb)
	})
	t.Run("Cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		sb := frozenSandbox(t, ctx, Config{Args: sleep})
		cancel()
		res := within(t, "Wait", bound, func() *Result { r, _ := sb.Wait(); return r })
		require.NotNil(t, res)
		assert.Equal(t, Cancelled, res.Reason, res.String())
		assertGone(t, sb)
	})
	t.Run("Kill", func(t *testing.T) {
		sb := frozenSandbox(t, context.Background(), Config{Args: sleep})
		require.NoError(t, sb.Kill(syscall.SIGKILL))
		res := within(t, "Wait", bound, func() *Result { r, _ := sb.Wait(); return r })
		require.NotNil(t, res)
		assert.Equal(t, Signaled, res.Reason, res.String())
		assert.Equal(t, syscall.SIGKILL, res.Signal)
		assertGone(t, sb)
	})
	t.Run("Close", func(t *testing.T) {
		sb := frozenSandbox(t, context.Background(), Config{})
		require.NoError(t, within(t, "Close", bound, sb.Close))
		res, err := sb.Wait()
		require.NoError(t, err)
		assert.Equal(t, Closed, res.Reason)
		assertGone(t, sb)
	})
	t.Run("Exec", func(t *testing.T) {
		sb := frozenSandbox(t, context.Background(), Config{})
		type result struct {
			res *Result
			err error
		}
		r := within(t, "Exec with a Timeout", timeout+bound, func() result {
			res, err := sb.Exec(context.Background(), Cmd{Args: sleep, Timeout: timeout})
			return result{res, err}
		})
		require.Error(t, r.err)
		require.NotNil(t, r.res, r.err.Error())
		assert.Equal(t, Timeout, r.res.Reason, r.res.String())

		freeze(t, sb)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		r = within(t, "Exec with a context", timeout+bound, func() result {
			res, err := sb.Exec(ctx, Cmd{Args: sleep})
			return result{res, err}
		})
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
		require.NotNil(t, r.res)
		assert.Equal(t, Cancelled, r.res.Reason, r.res.String())
		require.NoError(t, within(t, "Close", bound, sb.Close))
	})
}

// TestLateReaderKeepsTheFinalReport: when the reader of the init's socket
// runs only after watch's deadline has passed (a loaded machine), the
// final report that is queued still counts. It used to be dropped, and a
// normal exit was reported as a SetupError "exit status 0".
func TestLateReaderKeepsTheFinalReport(t *testing.T) {
	parent, child, err := socketPair()
	require.NoError(t, err)
	defer unix.Close(child)
	sb := New(Config{})
	sb.conn = os.NewFile(uintptr(parent), "test-control")
	defer sb.conn.Close()
	require.NoError(t, proto.Send(child, &proto.Report{Kind: proto.Exited}))
	// The deadline watch sets once the init has exited, already passed.
	require.NoError(t, sb.conn.SetReadDeadline(time.Unix(1, 0)))
	sb.readLoop()
	require.NotNil(t, sb.final, "the final report was lost")
	assert.Equal(t, proto.Exited, sb.final.Kind)
}

// TestReportOfAnInitThatLeftRequestsUnread: an init that exits with a
// request of the parent unread (a Close or an Exec racing its end) makes
// the kernel fail the parent's next read with ECONNRESET, ahead of the
// reports still queued. Those still count: the final report used to be
// lost, and a normal exit reported as a SetupError "exit status 0".
func TestReportOfAnInitThatLeftRequestsUnread(t *testing.T) {
	parent, child, err := socketPair()
	require.NoError(t, err)
	sb := New(Config{})
	sb.conn = os.NewFile(uintptr(parent), "test-control")
	defer sb.conn.Close()
	require.NoError(t, send(sb.conn, &proto.Request{Close: true}))
	require.NoError(t, proto.Send(child, &proto.Report{Kind: proto.Exited}))
	require.NoError(t, unix.Close(child)) // the init exits, the request unread
	sb.readLoop()
	require.NotNil(t, sb.final, "the final report was lost")
	assert.Equal(t, proto.Exited, sb.final.Kind)
}

// TestRawStartPid1Killed kills the sandbox's pid 1 from outside before
// its exec, on the raw path, as it waits for the release and as it is
// released: Start says that it was killed by SIGKILL, rather than naming
// a step it happened to be at or reporting a start, and leaves nothing
// behind.
func TestRawStartPid1Killed(t *testing.T) {
	rawPathOnly(t)
	if !rawWanted() {
		testutil.RequireFeature(t, "raw start", errors.New("sandboxes start through the init stage here"), "see Probe")
	}
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	bound := faultSlack(t)
	for _, stage := range []string{"forked", "go"} {
		t.Run(stage, func(t *testing.T) {
			testutil.CheckAfter(t, 5*time.Second, testutil.DefaultLeakChecks...)
			for range 10 {
				var pid1 int
				setStartHook(t, func(s string, pid int) {
					if s == stage && pid > 0 {
						pid1 = pid
						unix.Kill(pid, unix.SIGKILL)
					}
				})
				sb := New(testConfig(Config{Args: []string{bb, "true"}, Limits: testLimits(Limits{Pids: 64})}))
				err := within(t, "Start", bound, func() error { return sb.Start(context.Background()) })
				require.Error(t, err, "a sandbox whose pid 1 was killed before its exec started")
				var se *SetupError
				require.ErrorAs(t, err, &se)
				assert.ErrorIs(t, err, ErrSetup)
				assert.Contains(t, err.Error(), "killed by SIGKILL")
				require.NotZero(t, pid1)
				assertPidGone(t, pid1)
				_, werr := sb.Wait()
				assert.Equal(t, err, werr)
			}
		})
	}
}
