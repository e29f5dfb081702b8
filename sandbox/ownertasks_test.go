//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/testutil"
)

// ownerTasksEnv names the cgroup parent ownerTasksHelper starts its
// sandbox under ("default" for none).
const ownerTasksEnv = "STOCKADE_TEST_OWNER_TASKS"

// ownerThreads is how many threads ownerTasksHelper starts besides those
// it has.
const ownerThreads = 40

// ownerTasksHelper is the owner of TestOwnerKeepsTasks: in a cgroup with a
// low pids.max, it starts a sandbox without limits whose shell forks all
// it can, then starts threads of its own while the sandbox holds its
// tasks. It prints "threads N" and exits 0 if it could.
func ownerTasksHelper() bool {
	if os.Getenv(testutil.HelperEnv) != "owner-tasks" {
		return false
	}
	if os.Getenv(ownerTasksEnv+"_WAIT") != "" {
		io.Copy(io.Discard, os.Stdin) // until the test has moved us
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Println("executable:", err)
		os.Exit(1)
	}
	// A fork bomb (see limitHelper), as selfInSandbox runs it.
	cfg := Config{
		Args:    []string{"/box/" + filepath.Base(exe)},
		Env:     []string{limitHelperEnv + "=forkbomb"},
		Mounts:  []Mount{Mount{Kind: Bind, Source: filepath.Dir(exe), Target: "/box"}},
		Timeout: 30 * time.Second,
		Limits:  Limits{CgroupParent: os.Getenv(ownerTasksEnv)},
	}
	if cfg.Limits.CgroupParent == "default" {
		cfg.Limits.CgroupParent = ""
	}
	sb := New(testConfig(cfg))
	if err := sb.Start(context.Background()); err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	// Until the bomb holds all the tasks it can get.
	var peak int64
	for still, deadline := 0, time.Now().Add(20*time.Second); still < 20 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		st, _ := sb.Stats()
		if st.Pids > peak {
			peak, still = st.Pids, 0
		} else {
			still++
		}
	}
	// Each goroutine blocks its thread in a raw read, so the runtime must
	// start a new thread for every one.
	var p [2]int
	if err := unix.Pipe2(p[:], 0); err != nil {
		fmt.Println("pipe:", err)
		os.Exit(1)
	}
	const threads = ownerThreads
	done := make(chan struct{}, threads)
	for range threads {
		go func() {
			var b [1]byte
			unix.Read(p[0], b[:])
			done <- struct{}{}
		}()
	}
	// Until the runtime has a thread for each blocked read (or has
	// aborted, which fails the test).
	for deadline := time.Now().Add(10 * time.Second); threadCount() < threads && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("threads %d; the sandbox held %d tasks\n", threadCount(), peak)
	unix.Write(p[1], make([]byte, threads))
	for range threads {
		<-done
	}
	sb.Close()
	sb.Wait()
	os.Exit(0)
	return true
}

// TestOwnerKeepsTasks: the owner runs in a cgroup whose pids.max is low,
// and a sandbox without limits forks until it can no more. The sandbox's
// tasks are capped below the owner's limit (its group goes under a parent
// whose pids.max keeps a share for the owner), so the owner can still start
// threads; without the cap the Go runtime of the owner aborts when it
// cannot create a thread.
func TestOwnerKeepsTasks(t *testing.T) {
	testutil.RequireRoot(t)
	mode := cgroup.DetectMode()
	if mode == cgroup.Unavailable {
		testutil.Skip(t, "no cgroups on this host", "mount the cgroup file systems")
	}
	const limit = 160
	// The owner's own cgroup, with the limit. On cgroup v2 a cgroup with a
	// process has no child groups with controllers, so there the owner and
	// its sandboxes' parent are siblings under the limited cgroup; on v1
	// the sandboxes go below the owner's cgroup, the default.
	var top, ownerDir, parent string
	if mode == cgroup.Unified {
		top = "/sys/fs/cgroup/stockade-test-tasks-" + strconv.Itoa(os.Getpid())
		require.NoError(t, os.Mkdir(top, 0o755))
		t.Cleanup(func() { removeTree(top) })
		require.NoError(t, os.WriteFile(top+"/cgroup.subtree_control", []byte("+pids"), 0))
		ownerDir = top + "/owner"
		require.NoError(t, os.Mkdir(ownerDir, 0o755))
		parent = strings.TrimPrefix(top, "/sys/fs/cgroup") + "/sandboxes"
	} else {
		top = "/sys/fs/cgroup/pids/stockade-test-tasks-" + strconv.Itoa(os.Getpid())
		require.NoError(t, os.Mkdir(top, 0o755))
		t.Cleanup(func() { removeTree(top) })
		ownerDir, parent = top, "default"
	}
	require.NoError(t, os.WriteFile(top+"/pids.max", []byte(strconv.Itoa(limit)), 0))

	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), testutil.HelperEnv+"=owner-tasks", ownerTasksEnv+"="+parent)
	// Into the owner's cgroup before it runs: through a descriptor.
	dirFD, err := unix.Open(ownerDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(dirFD)
	if mode == cgroup.Unified {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: dirFD}
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if mode != cgroup.Unified {
		// v1: the helper is moved before it starts its threads and sandbox
		// (it waits for its stdin to close).
		cmd.Env = append(cmd.Env, ownerTasksEnv+"_WAIT=1")
	}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	if mode != cgroup.Unified {
		require.NoError(t, os.WriteFile(ownerDir+"/cgroup.procs", []byte(strconv.Itoa(cmd.Process.Pid)), 0))
	}
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the owner did not finish: %s", out.String())
	}
	require.NoError(t, err, "the owner failed: %s", out.String())
	t.Log(out.String())
	_, report, ok := strings.Cut(out.String(), "threads ")
	require.True(t, ok, "the owner did not report its threads")
	var threads, held int
	_, err = fmt.Sscanf(report, "%d; the sandbox held %d tasks", &threads, &held)
	require.NoError(t, err, report)
	assert.GreaterOrEqual(t, threads, ownerThreads, "the owner did not get a thread for each blocked read")
	// The bomb's share is at least half the limit (cgroup.ReservePids):
	// a quarter shows that it went off.
	assert.Greater(t, held, limit/4, "the sandbox's fork bomb did not take the tasks it could")
}

// removeTree removes a test's cgroup directory and the groups below it,
// deepest first.
func removeTree(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
}
