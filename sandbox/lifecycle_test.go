//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

func TestExitStatus(t *testing.T) {
	o := run(t, shell(t, `exit 3`))
	var ee *ExitError
	require.ErrorAs(t, o.err, &ee)
	assert.Equal(t, Exited, o.res.Reason)
	assert.Equal(t, 3, o.res.ExitCode)
	assert.Same(t, o.res, ee.Result)
	assert.False(t, o.res.Success())

	o = run(t, shell(t, `true`))
	require.NoError(t, o.err)
	assert.True(t, o.res.Success())
	assert.Positive(t, o.res.Wall)
}

func TestSignaled(t *testing.T) {
	o := run(t, shell(t, `kill -SEGV $$`))
	require.Error(t, o.err)
	assert.Equal(t, Signaled, o.res.Reason)
	assert.Equal(t, syscall.SIGSEGV, o.res.Signal)
	assert.Equal(t, -1, o.res.ExitCode)
	assert.Equal(t, "killed by SIGSEGV", o.res.String())
}

func TestTimeout(t *testing.T) {
	cfg := shell(t, `sleep 100 & sleep 100`)
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	o := run(t, cfg)
	assert.Less(t, time.Since(start), 5*time.Second)
	require.Error(t, o.err)
	assert.Equal(t, Timeout, o.res.Reason)
	assert.Equal(t, syscall.SIGKILL, o.res.Signal)
	assert.GreaterOrEqual(t, o.res.Wall, 300*time.Millisecond)
}

func TestCancel(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	ctx, cancel := context.WithCancel(context.Background())
	// A process that ignores SIGTERM and a background child: both must go.
	var out syncBuffer
	sb := New(testConfig(Config{Args: []string{bb, "sh", "-c", `trap '' TERM; sleep 100 & echo ready; sleep 100`}, Stdin: blockingReader{}, Stdout: &out}))
	require.NoError(t, sb.Start(ctx))
	waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })
	start := time.Now()
	cancel()
	res, err := sb.Wait()
	assert.Less(t, time.Since(start), 2*time.Second, "Wait must return promptly after a cancel")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, Cancelled, res.Reason)
	assertGone(t, sb)
}

// blockingReader never returns: a stdin that must not hold up Wait.
type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { select {} }

// assertGone checks from the host that the sandbox's init, and so its whole
// pid namespace, has ended.
func assertGone(t *testing.T, sb *Sandbox) {
	t.Helper()
	pid := pid1(sb)
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	assert.True(t, os.IsNotExist(err), "the init (pid %d) is still there", pid)
}

func TestKill(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	var out syncBuffer
	sb := New(testConfig(Config{
		Args:   []string{bb, "sh", "-c", `trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done`},
		Stdout: &out,
	}))
	assert.ErrorIs(t, sb.Kill(syscall.SIGTERM), ErrNotStarted)
	require.NoError(t, sb.Start(context.Background()))
	waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })
	require.NoError(t, sb.Kill(syscall.SIGTERM))
	res, err := sb.Wait()
	require.Error(t, err)
	assert.Equal(t, Exited, res.Reason)
	assert.Equal(t, 42, res.ExitCode)
	assert.Contains(t, out.String(), "got-term")
	assert.ErrorIs(t, sb.Kill(syscall.SIGTERM), ErrFinished)

	sb = New(testConfig(Config{Args: []string{bb, "sleep", "100"}}))
	require.NoError(t, sb.Start(context.Background()))
	require.NoError(t, sb.Kill(syscall.SIGKILL))
	res, _ = sb.Wait()
	assert.Equal(t, Signaled, res.Reason)
	assert.Equal(t, syscall.SIGKILL, res.Signal)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEverythingEndsWithTheCommand(t *testing.T) {
	// A daemon left running in the background dies when the command exits,
	// and Wait does not wait for it.
	start := time.Now()
	mustRun(t, shell(t, `(trap '' TERM HUP; sleep 100) & (setsid sleep 100 &) ; exit 0`))
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestCPUTime(t *testing.T) {
	o := run(t, shell(t, `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done`))
	require.NoError(t, o.err)
	assert.Greater(t, o.res.UserTime+o.res.SystemTime, 20*time.Millisecond)
	assert.Less(t, o.res.UserTime+o.res.SystemTime, o.res.Wall+50*time.Millisecond)
	assert.Positive(t, o.res.MaxRSS)
}

func TestBadBindSource(t *testing.T) {
	cfg := shell(t, `true`)
	cfg.Mounts = []Mount{{Kind: "bind", Source: "/nonexistent/data", Target: "/data"}}
	o := run(t, cfg)
	require.Error(t, o.err)
	var se *SetupError
	require.ErrorAs(t, o.err, &se)
	assert.ErrorIs(t, o.err, ErrSetup)
	assert.ErrorIs(t, o.err, unix.ENOENT)
	assert.Equal(t, "bind", se.Stage)
	assert.Equal(t, "/nonexistent/data", se.Path)
	assert.Contains(t, o.err.Error(), "bind /nonexistent/data: ENOENT")
	assert.Nil(t, o.res)
	// No child is left: the leak check of TestMain also looks at mounts.
	assertNoChildren(t)
}

func TestCommandNotFound(t *testing.T) {
	o := run(t, Config{Args: []string{"no-such-command"}})
	var se *SetupError
	require.ErrorAs(t, o.err, &se)
	assert.Equal(t, "exec", se.Stage)
	assert.ErrorIs(t, o.err, unix.ENOENT)
	o = run(t, Config{Args: []string{"/bin/true"}, Dir: "/nope", Mounts: []Mount{{Kind: "tmpfs", Target: "/nope2", Size: 1 << 20}}})
	_ = o
}

func assertNoChildren(t *testing.T) {
	t.Helper()
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		assert.Empty(t, strings.TrimSpace(string(b)), "child processes left behind")
	}
}

func TestInvalidConfigCreatesNothing(t *testing.T) {
	sb := New(Config{Args: []string{"/bin/true"}, Mounts: []Mount{{Kind: "bind", Source: "relative", Target: "/x"}}})
	err := sb.Start(context.Background())
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Equal(t, "Mounts[0].Source", ce.Field)
	assert.Zero(t, pid1(sb), "nothing may be started for an invalid config")
	_, werr := sb.Wait() // returns the error at once, never waits
	assert.ErrorIs(t, werr, ErrInvalidConfig)
	assert.ErrorIs(t, sb.Start(context.Background()), ErrStarted)
}

func TestConcurrentSandboxes(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	concurrently(t, 16, func(i int) error {
		var out strings.Builder
		_, err := New(testConfig(Config{Args: []string{bb, "sh", "-c", "echo $0", strconv.Itoa(i)}, Stdout: &out})).Run(context.Background())
		if err == nil && out.String() != strconv.Itoa(i)+"\n" {
			err = fmt.Errorf("sandbox %d printed %q", i, out.String())
		}
		return err
	})
}

// TestMainNeverRunsInside starts this test binary the way a sandbox starts
// its init, but without the control socket: it must refuse, not fall
// through to the tests.
func TestMainNeverRunsInside(t *testing.T) {
	cmd := exec.Command("/proc/self/exe", "-test.run=.", "-test.v")
	cmd.Args[0] = "stockade-init"
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 125, ee.ExitCode())
	assert.NotContains(t, string(out), "=== RUN")
	assert.Contains(t, string(out), "without its control socket")
}

// ownerHelper, in a helper process started by TestParentDeath, starts a
// sandbox, prints the host pids of its init and command, and blocks
// forever. It reports whether this process is such a helper.
func ownerHelper() bool {
	if os.Getenv(testutil.HelperEnv) != "owner" {
		return false
	}
	bb := os.Getenv("STOCKADE_TEST_BUSYBOX")
	cfg := Config{Args: []string{bb, "sh", "-c", "sleep 1000 & sleep 1000"}}
	if os.Getenv("STOCKADE_TEST_OWNER_LIMITS") == "1" {
		cfg.Limits.Pids = 32 // a sandbox with a control group
	}
	sb := New(testConfig(cfg))
	if err := sb.Start(context.Background()); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	init := pid1(sb)
	var children []string
	for deadline := time.Now().Add(10 * time.Second); len(children) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Println("error: the sandbox's command did not start within 10s")
			os.Exit(1)
		}
		children = strings.Fields(readChildren(init))
	}
	fmt.Println("pids", init, strings.Join(children, " "))
	select {}
}

func readChildren(pid int) string {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var all []string
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		all = append(all, strings.TrimSpace(string(b)))
	}
	return strings.Join(all, " ")
}

// startOwner starts ownerHelper with env added, and returns it and the
// host pids it printed: the init's, then the command's.
func startOwner(t *testing.T, env ...string) (*exec.Cmd, []string) {
	t.Helper()
	bb := testutil.Busybox(t)
	owner := exec.Command("/proc/self/exe")
	owner.Env = append(os.Environ(), append(env, testutil.HelperEnv+"=owner", "STOCKADE_TEST_BUSYBOX="+bb)...)
	stdout, err := owner.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, owner.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	fields := strings.Fields(line)
	require.Equal(t, "pids", fields[0], line)
	require.GreaterOrEqual(t, len(fields), 3, "the init and the command")
	return owner, fields
}

func TestParentDeath(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	owner, fields := startOwner(t)
	killOwner(t, owner, fields[1:])
}

// killOwner kills an owner started by startOwner with SIGKILL and waits
// until the processes of its sandbox, pids, have died with it.
func killOwner(t *testing.T, owner *exec.Cmd, pids []string) {
	t.Helper()
	require.NoError(t, owner.Process.Kill())
	owner.Wait()
	for _, p := range pids {
		pid, err := strconv.Atoi(p)
		require.NoError(t, err)
		waitFor(t, func() bool { return !alive(pid) })
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestErrorsMatch(t *testing.T) {
	err := error(&SetupError{Stage: "bind", Path: "/data", Errno: unix.ENOENT})
	assert.ErrorIs(t, err, ErrSetup)
	assert.ErrorIs(t, err, unix.ENOENT)
	assert.False(t, errors.Is(err, ErrInvalidConfig))
	assert.Equal(t, "stockade: setup: bind /data: ENOENT (no such file or directory)", err.Error())
	ferr := error(&FeatureError{Feature: "time namespaces"})
	assert.ErrorIs(t, ferr, ErrNotSupported)
}

// TestSmoke runs one sandbox through its whole life and checks the main
// promises at once. CI also runs it in the cgroup v2 VM on an older kernel.
func TestSmoke(t *testing.T) {
	cfg := shell(t, `echo pid $$; hostname; id -u; cat /proc/self/uid_map; ls /; touch /usr/x 2>/dev/null || echo ro; exit 7`)
	cfg.Hostname = "smoke"
	o := run(t, cfg)
	require.Error(t, o.err, o.stderr)
	require.Equal(t, Exited, o.res.Reason, o.stderr)
	assert.Equal(t, 7, o.res.ExitCode)
	l := lines(o.stdout)
	require.GreaterOrEqual(t, len(l), 5, o.stdout)
	assert.Regexp(t, `^pid \d+$`, l[0])
	assert.Equal(t, "smoke", l[1])
	assert.Equal(t, "1000", l[2])
	assert.NotRegexp(t, `^0\s+0\s`, l[3])
	assert.Equal(t, "ro", l[len(l)-1])
	assertNoChildren(t)
}

// TestPid checks that Pid names a process in the sandbox's namespaces
// while it runs (a sandbox without Args too, whose pid 1 waits for
// Execs), and 0 before and after.
func TestPid(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	for _, args := range [][]string{{bb, "sleep", "100"}, nil} {
		sb := New(testConfig(Config{Args: args}))
		assert.Zero(t, sb.Pid(), "before Start")
		require.NoError(t, sb.Start(context.Background()))
		pid := sb.Pid()
		require.Positive(t, pid)
		for _, ns := range []string{"pid", "mnt", "user", "net", "ipc", "uts"} {
			mine, err := os.Readlink("/proc/self/ns/" + ns)
			require.NoError(t, err)
			its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
			require.NoError(t, err)
			assert.NotEqual(t, mine, its, "%s namespace of pid %d", ns, pid)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^NSpid:\s+\d+\s+1$`, string(status), "pid 1 of its namespace")
		require.NoError(t, sb.Close())
		assert.Zero(t, sb.Pid(), "after Close")
	}
}
