//go:build linux

package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as a helper process instead of
// running tests; its value names what the helper does.
const helperEnv = testutil.HelperEnv

func TestMain(m *testing.M) {
	testutil.Run(m, testutil.Options{
		Helper: func(mode string) int { runHelper(mode); return 0 },
		Setup: func() error {
			// Processes that the tests orphan (a fork bomb's children, the
			// children of a killed owner) are re-parented to this process
			// instead of to pid 1, so that the tests can reap them and the
			// leak check sees any they miss.
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				return fmt.Errorf("become a child subreaper: %w", err)
			}
			return nil
		},
	})
}

// runHelper runs one of the helper programs. Every helper first waits for
// one byte on stdin, so that on cgroup v1 the test can move it into a group
// before it does anything.
func runHelper(mode string) {
	if mode != "owner" {
		var b [1]byte
		if _, err := os.Stdin.Read(b[:]); err != nil {
			os.Exit(3)
		}
	}
	switch mode {
	case "true":
	case "reexec-true":
		// A fresh image of this binary, started from inside the group, so
		// that all of its start-up memory is charged to the group.
		self, _ := os.Executable()
		r, w, _ := os.Pipe()
		w.Write([]byte{1})
		unix.Dup2(int(r.Fd()), 0)
		os.Setenv(helperEnv, "true")
		err := syscall.Exec(self, []string{self}, os.Environ())
		fmt.Fprintln(os.Stderr, "exec:", err)
		os.Exit(4)
	case "sleep":
		sleepForever()
	case "spin":
		// Burn the CPU time given in the environment, in user mode. CPU
		// time, not wall time: the machine may be busy.
		d, _ := time.ParseDuration(os.Getenv("SPIN"))
		x := 0
		for cpuTime() < d {
			for i := range 100000 {
				x += i * i
			}
		}
		if x == 42 {
			fmt.Println(x)
		}
	case "hog":
		// Touch memory in 1 MiB chunks and keep all of it until killed.
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	case "forkbomb":
		forkBomb()
	case "owner":
		ownerHelper()
	case "open":
		// Open the file OPEN names for reading; exit 5 when the kernel
		// refuses with EPERM (a device the group denies).
		f, err := os.Open(os.Getenv("OPEN"))
		if errors.Is(err, unix.EPERM) {
			os.Exit(5)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(6)
		}
		f.Close()
	case "cgroupns", "cgroupns-inner":
		cgroupNSHelper(mode)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", mode)
		os.Exit(2)
	}
}

// sleepForever blocks until the process is killed. A bare select{} would
// not do: with no goroutine that could wake it, the runtime declares a
// deadlock and exits.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// forkBomb ignores SIGTERM and forks as fast as it can: every child and
// every parent loops on clone(2) forever, whether clone succeeds or not.
// The raw system call is safe here because no process ever returns to Go
// code that could need the runtime's other threads: the loop neither
// allocates nor blocks.
func forkBomb() {
	signal.Ignore(syscall.SIGTERM)
	for {
		unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	}
}

// ownerHelper creates a group in the default parent, starts a sleeping helper in
// it, prints "<group name> <helper pid>" and waits to be killed.
func ownerHelper() {
	g, err := Create(Config{Limits: Limits{Pids: 32}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	cmd, stdin, err := helperCommand(g, "sleep")
	if err == nil {
		err = cmd.Start()
	}
	if err == nil {
		err = place(g, cmd)
	}
	if err == nil {
		_, err = stdin.Write([]byte{1})
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(g.Name(), cmd.Process.Pid)
	sleepForever()
}

// helperCommand prepares a helper process that starts inside g on cgroup
// v2; on v1 the caller must call place after Start.
func helperCommand(g *Group, mode string, env ...string) (*exec.Cmd, io.WriteCloser, error) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode)...)
	cmd.Stderr = os.Stderr
	if fd, ok := g.FD(); ok {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}
	stdin, err := cmd.StdinPipe()
	return cmd, stdin, err
}

// place moves a started helper into g where FD could not start it there.
func place(g *Group, cmd *exec.Cmd) error {
	if _, ok := g.FD(); ok {
		return nil
	}
	return g.AddProc(cmd.Process.Pid)
}

// helper is a running helper process in a group.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	once  sync.Once
	err   error
}

// startHelper starts a helper process in g and lets it go. The helper is
// killed and waited for when the test ends, if the test did not.
func startHelper(t *testing.T, g *Group, mode string, env ...string) *helper {
	t.Helper()
	cmd, stdin, err := helperCommand(g, mode, env...)
	require.NoError(t, err)
	return launch(t, g, cmd, stdin)
}

// launch starts a helper prepared by helperCommand in g and lets it go.
func launch(t *testing.T, g *Group, cmd *exec.Cmd, stdin io.WriteCloser) *helper {
	t.Helper()
	require.NoError(t, cmd.Start())
	h := &helper{cmd: cmd, stdin: stdin}
	started.Store(cmd.Process.Pid, struct{}{})
	t.Cleanup(h.stop)
	require.NoError(t, place(g, cmd))
	_, err := stdin.Write([]byte{1})
	require.NoError(t, err)
	return h
}

// wait waits for the helper to exit and returns what exec.Cmd.Wait did.
func (h *helper) wait() error {
	h.once.Do(func() {
		h.err = h.cmd.Wait()
		started.Delete(h.cmd.Process.Pid)
	})
	return h.err
}

// stop kills the helper if it still runs and waits for it.
func (h *helper) stop() {
	h.cmd.Process.Kill()
	h.wait()
}

// requireCgroups skips the test unless this process runs as root on a host
// with cgroups.
func requireCgroups(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t)
	if DetectMode() == Unavailable {
		testutil.Skip(t, "no cgroup file system is mounted at /sys/fs/cgroup", "mount cgroup2 (or the v1 controllers) there")
	}
}

// newGroup creates a group and removes it, after killing what is left in
// it, when the test ends.
func newGroup(t testing.TB, cfg Config) *Group {
	t.Helper()
	g, err := Create(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { destroy(t, g) })
	return g
}

func destroy(t testing.TB, g *Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Kill(ctx); err != nil {
		t.Errorf("kill: %v", err)
	}
	if err := g.Remove(); err != nil {
		t.Errorf("remove: %v", err)
	}
	reapOrphans(t)
}

// started holds the pids of the helpers that exec.Cmd values wait for, so
// that reapOrphans leaves them to their Wait.
var started sync.Map // int → struct{}

// reapOrphans waits for the children of this process that no exec.Cmd
// waits for (the orphans re-parented to this subreaper), giving them a few
// seconds to exit.
func reapOrphans(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []int
		for _, pid := range children() {
			if _, ok := started.Load(pid); ok {
				continue
			}
			var ws unix.WaitStatus
			if got, err := unix.Wait4(pid, &ws, unix.WNOHANG|unix.WALL, nil); got == 0 && err == nil {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("orphans still alive after 10 s: %v", left)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// children lists the children of every thread of this process, zombies
// included.
func children() []int {
	var pids []int
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// readLine reads one line of a helper's output with a timeout.
func readLine(t testing.TB, r io.Reader, timeout time.Duration) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		ch <- s
	}()
	select {
	case s := <-ch:
		return s
	case <-time.After(timeout):
		t.Fatalf("no output from the helper within %v", timeout)
		return ""
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
