//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// longLived starts a sandbox without a command of its own and closes it
// when the test ends.
func longLived(t *testing.T, cfg Config) *Sandbox {
	t.Helper()
	testutil.RequireUserNamespaces(t)
	sb := New(testConfig(cfg))
	require.NoError(t, sb.Start(context.Background()))
	t.Cleanup(func() { sb.Close() })
	return sb
}

// execSh runs a busybox shell script in sb and returns its output.
func execSh(t *testing.T, sb *Sandbox, script string) (string, *Result, error) {
	t.Helper()
	var out strings.Builder
	res, err := sb.Exec(context.Background(), Cmd{Args: []string{testutil.Busybox(t), "sh", "-c", script}, Stdout: &out, Stderr: &out})
	return out.String(), res, err
}

func TestExecSharesState(t *testing.T) {
	sb := longLived(t, Config{Hostname: "box"})
	out, _, err := execSh(t, sb, `echo one > /work/state; hostname; echo $$`)
	require.NoError(t, err, out)
	l := lines(out)
	require.Len(t, l, 2)
	assert.Equal(t, "box", l[0])
	out, res, err := execSh(t, sb, `cat /work/state; id -u; pwd; sleep 100 >/dev/null 2>&1 & echo started`)
	require.NoError(t, err, out)
	assert.Equal(t, []string{"one", "1000", "/work", "started"}, lines(out))
	assert.Equal(t, Exited, res.Reason)
	// The background sleep of the previous Exec is still there.
	// The shell's child may not have become sleep yet: wait for it.
	out, _, err = execSh(t, sb, `for i in $(seq 100); do ps -o comm | grep -q sleep && break; sleep 0.05; done; ps -o comm | grep -c sleep`)
	require.NoError(t, err, out)
	assert.Equal(t, "1\n", out)

	var o strings.Builder
	res, err = sb.Exec(context.Background(), Cmd{Args: []string{"id", "-u"}, RunAsRoot: true, Stdout: &o})
	if os.Geteuid() != 0 && !testConfig(Config{}).SubordinateIDs {
		// An ordinary user's own ids map the command's id only.
		assert.ErrorIs(t, err, ErrInvalidConfig)
	} else {
		require.NoError(t, err)
		assert.Equal(t, "0\n", o.String())
	}
	res, err = sb.Exec(context.Background(), Cmd{Args: []string{"sh", "-c", "exit 3"}})
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, res.ExitCode)
	_, err = sb.Exec(context.Background(), Cmd{Args: []string{"no-such-program"}})
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, unix.ENOENT)

	require.NoError(t, sb.Close())
	res, err = sb.Wait()
	require.NoError(t, err)
	assert.Equal(t, Closed, res.Reason)
	assertGone(t, sb)
	_, err = sb.Exec(context.Background(), Cmd{Args: []string{"true"}})
	assert.ErrorIs(t, err, ErrFinished)
}

func TestExecConcurrent(t *testing.T) {
	sb := longLived(t, Config{})
	concurrently(t, 16, func(i int) error {
		var out strings.Builder
		_, err := sb.Exec(context.Background(), Cmd{
			Args:   []string{"sh", "-c", fmt.Sprintf("echo %d; cat", i)},
			Stdin:  strings.NewReader(fmt.Sprintf("in%d\n", i)),
			Stdout: &out,
		})
		if err == nil && out.String() != fmt.Sprintf("%d\nin%d\n", i, i) {
			err = fmt.Errorf("exec %d printed %q", i, out.String())
		}
		return err
	})
}

func TestExecTimeoutAndCancel(t *testing.T) {
	sb := longLived(t, Config{})
	res, err := sb.Exec(context.Background(), Cmd{Args: []string{"sleep", "100"}, Timeout: 200 * time.Millisecond})
	require.Error(t, err)
	assert.Equal(t, Timeout, res.Reason)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err = sb.Exec(ctx, Cmd{Args: []string{"sleep", "100"}})
	require.Error(t, err)
	assert.Equal(t, Cancelled, res.Reason)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	// The sandbox goes on.
	out, _, err := execSh(t, sb, "echo alive")
	require.NoError(t, err)
	assert.Equal(t, "alive\n", out)
}

func TestCloseKillsExecs(t *testing.T) {
	sb := longLived(t, Config{})
	done := make(chan *Result, 1)
	var out syncBuffer
	go func() {
		res, _ := sb.Exec(context.Background(), Cmd{Args: []string{"sh", "-c", "echo ready; exec sleep 100"}, Stdout: &out})
		done <- res
	}()
	_, _, err := execSh(t, sb, "sleep 100 >/dev/null 2>&1 & sleep 100 >/dev/null 2>&1 & true")
	require.NoError(t, err)
	// The first Exec runs.
	waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })
	require.NoError(t, sb.Close())
	select {
	case res := <-done:
		require.NotNil(t, res)
		assert.Equal(t, Signaled, res.Reason)
		assert.Equal(t, syscall.SIGKILL, res.Signal)
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after Close")
	}
	assertGone(t, sb)
	assertNoChildren(t)
}

func TestCommandSandboxExec(t *testing.T) {
	// A sandbox with a command of its own takes Exec too, until the
	// command ends; then the sandbox ends.
	testutil.RequireRoot(t)
	sb := New(Config{Args: []string{"sleep", "100"}})
	require.NoError(t, sb.Start(context.Background()))
	out, _, err := execSh(t, sb, "for i in $(seq 100); do ps -o comm | grep -q sleep && break; sleep 0.05; done; ps -o comm | grep -c sleep")
	require.NoError(t, err)
	assert.Equal(t, "1\n", out)
	require.NoError(t, sb.Kill(syscall.SIGTERM))
	res, _ := sb.Wait()
	assert.Equal(t, syscall.SIGTERM, res.Signal)
	_, err = sb.Exec(context.Background(), Cmd{Args: []string{"true"}})
	assert.ErrorIs(t, err, ErrFinished)
}

func TestCopyInOut(t *testing.T) {
	if os.Geteuid() != 0 && testConfig(Config{}).SubordinateIDs {
		// The caller's own ids may not write into the command's
		// directories, which belong to its subordinate ids; CopyIn would
		// have to go through the init.
		t.Skip("CopyIn as an ordinary user with subordinate ids is not supported yet")
	}
	sb := longLived(t, Config{})
	dir := t.TempDir()
	src := filepath.Join(dir, "in")
	require.NoError(t, os.WriteFile(src, []byte("payload"), 0o640))
	require.NoError(t, sb.CopyIn(src, "/work/in"))
	out, _, err := execSh(t, sb, `cat /work/in; echo; stat -c '%u %a' /work/in; echo result > /work/out`)
	require.NoError(t, err, out)
	assert.Equal(t, []string{"payload", "1000 640"}, lines(out))
	dst := filepath.Join(dir, "out")
	require.NoError(t, sb.CopyOut("/work/out", dst))
	b, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, "result\n", string(b))

	// Read-only places stay read-only, and links made inside cannot send
	// the copy out of the sandbox.
	assert.ErrorIs(t, sb.CopyIn(src, "/usr/in"), unix.EROFS)
	_, _, err = execSh(t, sb, `ln -s /tmp /work/d; ln -s `+dir+` /work/hostdir; ln -s /etc/hostname /work/f`)
	require.NoError(t, err)
	require.NoError(t, sb.CopyIn(src, "/work/d/via-link"))
	out, _, _ = execSh(t, sb, `cat /tmp/via-link`)
	assert.Equal(t, "payload", out, "the link resolves inside the sandbox")
	err = sb.CopyIn(src, "/work/hostdir/escaped")
	assert.Error(t, err, "the host directory does not exist inside the sandbox")
	_, statErr := os.Stat(filepath.Join(dir, "escaped"))
	assert.True(t, errors.Is(statErr, os.ErrNotExist), "a copy went through a link onto the host")
	assert.ErrorIs(t, sb.CopyOut("/work/f", filepath.Join(dir, "x")), unix.ELOOP)
}

func TestExecBadInput(t *testing.T) {
	sb := longLived(t, Config{})
	for _, tt := range []struct {
		cmd   Cmd
		field string
	}{
		{Cmd{}, "Cmd.Args"},
		{Cmd{Args: []string{"true"}, Dir: "rel"}, "Cmd.Dir"},
		{Cmd{Args: []string{"true"}, Env: []string{"x"}}, "Cmd.Env[0]"},
		{Cmd{Args: []string{"true"}, RunAsRoot: true, UID: 3}, "Cmd.UID"},
		{Cmd{Args: []string{"true"}, UID: 1 << 20}, "Cmd.UID"},
		{Cmd{Args: []string{"true"}, Timeout: -1}, "Cmd.Timeout"},
	} {
		_, err := sb.Exec(context.Background(), tt.cmd)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, "%+v", tt.cmd)
		assert.Equal(t, tt.field, ce.Field)
	}
}

func TestStats(t *testing.T) {
	testutil.RequireRoot(t) // an ordinary user's long-lived sandbox has no group
	sb := longLived(t, Config{})
	before, err := sb.Stats()
	require.NoError(t, err)
	_, _, err = execSh(t, sb, `i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 100 >/dev/null 2>&1 & head -c 20000000 /dev/zero > /dev/shm/fill`)
	require.NoError(t, err)
	after, err := sb.Stats()
	require.NoError(t, err)
	assert.Greater(t, after.CPUUser+after.CPUSystem, before.CPUUser+before.CPUSystem+10*time.Millisecond)
	assert.GreaterOrEqual(t, after.MemoryPeak, int64(20_000_000), "the tmpfs pages count against the sandbox")
	assert.GreaterOrEqual(t, after.Pids, int64(2), "the init and the background sleep")
	require.NoError(t, sb.Close())
	_, err = sb.Stats()
	assert.ErrorIs(t, err, ErrFinished)

	// A sandbox with a command and no limit has no group: the default
	// caps lifted.
	cfg := Config{Args: []string{"sleep", "10"}}
	cfg.Limits.Memory, cfg.Limits.Pids = Unlimited, Unlimited
	one := New(cfg)
	require.NoError(t, one.Start(context.Background()))
	defer one.Close()
	_, err = one.Stats()
	assert.ErrorIs(t, err, ErrNoCgroup)
}

// TestStatsRacingTheEnd: Stats called while the sandbox ends returns its
// statistics or ErrFinished, never the error of a cgroup file that the
// teardown has just removed.
func TestStatsRacingTheEnd(t *testing.T) {
	testutil.RequireRoot(t) // an ordinary user's long-lived sandbox has no group
	for range 30 {
		sb := longLived(t, Config{})
		stop := make(chan struct{})
		errs := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				if _, err := sb.Stats(); err != nil {
					errs <- err
					return
				}
			}
		}()
		require.NoError(t, sb.Close())
		close(stop)
		if err := <-errs; err != nil && !errors.Is(err, ErrFinished) {
			t.Fatalf("Stats while the sandbox ended: %v; want its statistics or ErrFinished", err)
		}
	}
}

// TestExecRacingTheEndOfPid1: pid 1 is killed from outside while Exec
// starts a process, at every point of that start. Exec returns each time,
// and the caller survives: on cgroup v1 a thread of the caller is in the
// sandbox's group while it starts the process, and the kill of the group's
// processes must wait until it has left.
// TestExecStartKilledFromOutside kills Exec's start from outside, round
// after round: the child that joins the sandbox and the process before its
// exec, both still named as the owner. Exec returns an error or a verdict,
// the owner lives (a start that died without a report once left Exec with
// pid 0, and its kill of pid 0 ended the owner's process group), and the
// sandbox still runs the next Exec.
func TestExecStartKilledFromOutside(t *testing.T) {
	testutil.RequireRoot(t)
	rawPathOnly(t)
	sb := longLived(t, Config{})
	self, err := os.ReadFile("/proc/self/comm")
	require.NoError(t, err)
	stop := make(chan struct{})
	done := make(chan int, 1)
	halt := sync.OnceValue(func() int { close(stop); return <-done })
	defer halt()
	go func() {
		kills := 0
		for {
			select {
			case <-stop:
				done <- kills
				return
			default:
			}
			for _, pid := range children(os.Getpid()) {
				if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && string(comm) == string(self) {
					if unix.Kill(pid, unix.SIGKILL) == nil {
						kills++
					}
				}
			}
		}
	}()
	failed := 0
	for i := 0; i < 200; i++ {
		res, err := sb.Exec(context.Background(), Cmd{Args: []string{"/bin/true"}})
		var se *SetupError
		var ee *ExitError
		switch {
		case err == nil:
			require.Zero(t, res.ExitCode, "round %d", i)
		case errors.As(err, &ee):
			require.Equal(t, Signaled, ee.Reason, "round %d: %v", i, err)
			require.Equal(t, unix.SIGKILL, ee.Signal, "round %d: %v", i, err)
			failed++
		case errors.As(err, &se):
			failed++
		default:
			t.Fatalf("round %d: Exec returned %v (%T), not a SetupError or a verdict", i, err, err)
		}
	}
	kills := halt()
	t.Logf("%d kills, %d Execs failed", kills, failed)
	require.Positive(t, kills, "the start was never caught before its exec")
	res, err := sb.Exec(context.Background(), Cmd{Args: []string{"/bin/true"}})
	require.NoError(t, err)
	require.Zero(t, res.ExitCode)
}

func TestExecRacingTheEndOfPid1(t *testing.T) {
	testutil.RequireRoot(t)
	for i := 0; i < 60; i++ {
		sb := New(Config{})
		require.NoError(t, sb.Start(context.Background()))
		t.Cleanup(func() { sb.Close() }) // a failed round leaves no sandbox
		done := make(chan error, 1)
		go func() {
			_, err := sb.Exec(context.Background(), Cmd{Args: []string{"/bin/sleep", "30"}})
			done <- err
		}()
		time.Sleep(time.Duration(i%20) * 250 * time.Microsecond)
		require.NoError(t, unix.Kill(initPid(sb), unix.SIGKILL))
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("round %d: Exec succeeded in a sandbox that was killed", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Exec did not return after pid 1 was killed", i)
		}
		require.NoError(t, sb.Close())
		sb.Wait()
	}
}
