//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/oci"
)

// rtHarness drives the real binary as containerd's runc shim does: from a
// child subreaper (this test process), with a state directory of its own.
type rtHarness struct {
	t    *testing.T
	bin  string
	root string
	log  string
	// monitors are the pids this process has to wait for, as the shim.
	monitors map[int]bool
}

func newRTHarness(t *testing.T) *rtHarness {
	testutil.RequireUserNamespaces(t)
	bin := buildStockade(t)
	root, err := os.MkdirTemp("", "stk-rt-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	h := &rtHarness{t: t, bin: bin, root: filepath.Join(root, "state"), log: filepath.Join(root, "log"), monitors: map[int]bool{}}
	t.Cleanup(h.close)
	return h
}

// close stops being a subreaper and reaps what was reparented to this
// process: the sandboxes' processes of a monitor killed from outside die
// as its orphans. A child still alive is a leak, which the test main
// reports.
func (h *rtHarness) close() {
	// A test that failed half-way leaves containers: they are a failure,
	// and are deleted all the same.
	entries, _ := os.ReadDir(h.root)
	assert.Empty(h.t, entries, "containers left in the state directory")
	for _, e := range entries {
		h.run("delete", "--force", e.Name())
	}
	for pid := range h.monitors {
		var ws unix.WaitStatus
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if p, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); p != 0 {
				break
			}
		}
	}
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	for _, pid := range children() {
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && procState(st) == "Z" {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

func procState(stat []byte) string {
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return f[0]
}

// children lists the pids of this process's children.
func children() []int {
	var out []int
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		for _, f := range strings.Fields(string(b)) {
			p, _ := strconv.Atoi(f)
			out = append(out, p)
		}
	}
	return out
}

// run runs the runtime with args and returns its status and output.
func (h *rtHarness) run(args ...string) (int, string, string) {
	h.t.Helper()
	return h.runWith(nil, nil, args...)
}

func (h *rtHarness) runWith(stdout, stderr *os.File, args ...string) (int, string, string) {
	h.t.Helper()
	cmd := exec.Command(h.bin, append([]string{"--root", h.root, "--log", h.log, "--log-format", "json"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdout != nil {
		cmd.Stdout, cmd.Stderr = stdout, stderr
	}
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		h.t.Fatalf("run %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// bundle makes a bundle the way a user of runc does: "spec" writes the
// config, edit changes it, and the root is busybox.
func (h *rtHarness) bundle(edit func(s map[string]any)) string {
	h.t.Helper()
	dir := h.t.TempDir()
	status, _, stderr := h.run("spec", "--bundle", dir)
	require.Equal(h.t, 0, status, stderr)
	require.NoError(h.t, os.Symlink(busyboxRoot(h.t), filepath.Join(dir, "rootfs")))
	var s map[string]any
	b, err := os.ReadFile(filepath.Join(dir, oci.ConfigFile))
	require.NoError(h.t, err)
	require.NoError(h.t, json.Unmarshal(b, &s))
	edit(s)
	b, err = json.Marshal(s)
	require.NoError(h.t, err)
	require.NoError(h.t, os.WriteFile(filepath.Join(dir, oci.ConfigFile), b, 0o644))
	return dir
}

// withArgs is an edit that sets the process's arguments.
func withArgs(args ...string) func(map[string]any) {
	return func(s map[string]any) { s["process"].(map[string]any)["args"] = args }
}

// container is a created container and the files its command writes to.
type container struct {
	id, bundle     string
	pid            int // the monitor's, in the pid file
	statePid       int // the sandbox's pid 1, in the state
	stdout, stderr string
}

// create creates container id from bundle, with files as its output, and
// checks what the shim relies on: the pid file names the monitor, this
// subreaper's child once create has returned; and what the spec asks: the
// state names a process in the container's namespaces, made at create.
func (h *rtHarness) create(id, bundle string, extra ...string) *container {
	h.t.Helper()
	dir := h.t.TempDir()
	c := &container{id: id, bundle: bundle, stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr")}
	out, err := os.Create(c.stdout)
	require.NoError(h.t, err)
	defer out.Close()
	errf, err := os.Create(c.stderr)
	require.NoError(h.t, err)
	defer errf.Close()
	pidFile := filepath.Join(dir, "pid")
	args := append([]string{"create", "--bundle", bundle, "--pid-file", pidFile, "--no-pivot", "--no-new-keyring"}, extra...)
	status, _, _ := h.runWith(out, errf, append(args, id)...)
	stderr, _ := os.ReadFile(c.stderr)
	require.Equal(h.t, 0, status, "create: %s", stderr)
	b, err := os.ReadFile(pidFile)
	require.NoError(h.t, err)
	c.pid, err = strconv.Atoi(string(b))
	require.NoError(h.t, err)
	h.monitors[c.pid] = true
	st := h.state(id)
	assert.Equal(h.t, "created", st["status"])
	pid, _ := st["pid"].(float64)
	c.statePid = int(pid)
	assert.Contains(h.t, descendants(c.pid), c.statePid, "the state's pid is the monitor's descendant")
	for _, ns := range []string{"pid", "mnt", "net", "user"} {
		mine, err := os.Readlink("/proc/self/ns/" + ns)
		require.NoError(h.t, err)
		its, err := os.Readlink("/proc/" + strconv.Itoa(c.statePid) + "/ns/" + ns)
		require.NoError(h.t, err)
		assert.NotEqual(h.t, mine, its, "the state's pid is in the container's %s namespace", ns)
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/stat")
	require.NoError(h.t, err)
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	assert.Equal(h.t, strconv.Itoa(os.Getpid()), f[1], "the container's pid is the subreaper's child")
	return c
}

// state runs state and returns the JSON it printed.
func (h *rtHarness) state(id string) map[string]any {
	h.t.Helper()
	status, out, stderr := h.run("state", id)
	require.Equal(h.t, 0, status, stderr)
	var m map[string]any
	require.NoError(h.t, json.Unmarshal([]byte(out), &m), out)
	assert.Equal(h.t, id, m["id"])
	return m
}

// wait waits for the container's pid to end, as the shim does, and
// returns its wait status.
func (h *rtHarness) wait(pid int) unix.WaitStatus {
	h.t.Helper()
	require.Positive(h.t, pid, "a pid to wait for")
	require.Contains(h.t, children(), pid, "pid %d is this subreaper's child", pid)
	type result struct {
		ws  unix.WaitStatus
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		ch <- result{ws, err}
	}()
	select {
	case r := <-ch:
		require.NoError(h.t, r.err)
		delete(h.monitors, pid)
		return r.ws
	case <-time.After(30 * time.Second):
		h.t.Fatalf("pid %d has not ended after 30s", pid)
	}
	return 0
}

// eventually waits, for a bounded time, until the file holds want.
func eventuallyFile(t *testing.T, file, want string) {
	t.Helper()
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got, _ = os.ReadFile(file)
		if string(got) == want {
			return
		}
	}
	assert.Equal(t, want, string(got), file)
}

// gone checks that nothing of the container is left: no state, no
// process of the monitor's, no control group named after it.
func (h *rtHarness) gone(c *container) {
	h.t.Helper()
	status, _, stderr := h.run("state", c.id)
	assert.Equal(h.t, 1, status)
	assert.Contains(h.t, stderr, "does not exist")
	assert.NoDirExists(h.t, filepath.Join(h.root, c.id))
	_, err := os.Stat("/proc/" + strconv.Itoa(c.pid))
	assert.True(h.t, os.IsNotExist(err), "the monitor %d is still there", c.pid)
	assert.Empty(h.t, descendants(c.pid))
	assert.Empty(h.t, cgroupsOf(c.pid), "control groups of the monitor")
	mounts, err := mountinfo.GetMounts(nil)
	require.NoError(h.t, err)
	for _, m := range mounts {
		assert.NotContains(h.t, m.Mountpoint, c.bundle)
	}
}

// cgroupsOf lists the sandbox control groups that the process pid owned.
func cgroupsOf(pid int) []string {
	var out []string
	prefix := "sb-" + strconv.Itoa(pid) + "-"
	filepath.WalkDir("/sys/fs/cgroup", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), prefix) {
			out = append(out, path)
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

func TestRuntimeLifecycle(t *testing.T) {
	h := newRTHarness(t)
	b := h.bundle(withArgs("sh", "-c", "echo out; echo err >&2; exec sleep 1000"))
	c := h.create("life", b)
	assert.Equal(t, b, h.state("life")["bundle"])

	status, _, stderr := h.run("start", "life")
	require.Equal(t, 0, status, stderr)
	assert.Equal(t, "running", h.state("life")["status"])
	eventuallyFile(t, c.stdout, "out\n")
	eventuallyFile(t, c.stderr, "err\n")

	status, _, stderr = h.run("start", "life")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "cannot start an already running container")
	status, _, stderr = h.run("delete", "life")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "that is not stopped: running")

	status, _, stderr = h.run("kill", "life", "TERM")
	require.Equal(t, 0, status, stderr)
	ws := h.wait(c.pid)
	assert.True(t, ws.Signaled() && ws.Signal() == unix.SIGTERM, "wait status %v", ws)
	st := h.state("life")
	assert.Equal(t, "stopped", st["status"])
	assert.Equal(t, float64(0), st["pid"])
	status, _, stderr = h.run("kill", "life", "KILL")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "container not running")

	status, _, stderr = h.run("delete", "life")
	require.Equal(t, 0, status, stderr)
	h.gone(c)
}

func TestRuntimeExitStatus(t *testing.T) {
	h := newRTHarness(t)
	for _, tc := range []struct {
		name   string
		script string
		check  func(unix.WaitStatus) bool
		status int
	}{
		{"exit 5", "exit 5", func(ws unix.WaitStatus) bool { return ws.Exited() && ws.ExitStatus() == 5 }, 5},
		{"exit 0", "true", func(ws unix.WaitStatus) bool { return ws.Exited() && ws.ExitStatus() == 0 }, 0},
		{"killed by itself", "kill -KILL $$", func(ws unix.WaitStatus) bool { return ws.Signaled() && ws.Signal() == unix.SIGKILL }, 137},
		{"SIGUSR1", "kill -USR1 $$", func(ws unix.WaitStatus) bool { return ws.Exited() && ws.ExitStatus() == 128+10 }, 138},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.create("exit", h.bundle(withArgs("sh", "-c", tc.script)))
			status, _, stderr := h.run("start", "exit")
			require.Equal(t, 0, status, stderr)
			ws := h.wait(c.pid)
			assert.True(t, tc.check(ws), "wait status %v", ws)
			assert.Equal(t, "stopped", h.state("exit")["status"])
			b, err := os.ReadFile(filepath.Join(h.root, "exit", "state.json"))
			require.NoError(t, err)
			var st containerState
			require.NoError(t, json.Unmarshal(b, &st))
			require.NotNil(t, st.ExitStatus)
			assert.Equal(t, tc.status, *st.ExitStatus)
			status, _, stderr = h.run("start", "exit")
			assert.Equal(t, 1, status)
			assert.Contains(t, stderr, "cannot start a container that has stopped")
			status, _, stderr = h.run("delete", "exit")
			require.Equal(t, 0, status, stderr)
			h.gone(c)
		})
	}
}

func TestRuntimeExecAndPs(t *testing.T) {
	h := newRTHarness(t)
	c := h.create("ex", h.bundle(withArgs("sleep", "1000")))
	status, _, stderr := h.run("exec", "ex", "true")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "not running")
	status, _, stderr = h.run("start", "ex")
	require.Equal(t, 0, status, stderr)

	proc := filepath.Join(t.TempDir(), "process.json")
	require.NoError(t, os.WriteFile(proc, []byte(`{"args":["sh","-c","echo from exec $FOO; id -u; pwd; exit 4"],"env":["FOO=bar"],"cwd":"/work","user":{"uid":1000,"gid":1000}}`), 0o644))
	status, out, stderr := h.run("exec", "--process", proc, "ex")
	assert.Equal(t, 4, status, stderr)
	assert.Equal(t, "from exec bar\n1000\n/work\n", out)

	// As the shim does: --detach, and the pid in --pid-file is the one to
	// wait for.
	dir := t.TempDir()
	outFile, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	defer outFile.Close()
	pidFile := filepath.Join(dir, "pid")
	status, _, _ = h.runWith(outFile, outFile, "exec", "--detach", "--pid-file", pidFile, "--process", proc, "ex")
	require.Equal(t, 0, status)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	ws := h.wait(pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 4, "wait status %v", ws)
	eventuallyFile(t, outFile.Name(), "from exec bar\n1000\n/work\n")

	status, out, stderr = h.run("exec", "ex", "nonexistent")
	assert.Equal(t, exitNotFound, status, "%s %s", out, stderr)

	status, out, stderr = h.run("ps", "--format", "json", "ex")
	require.Equal(t, 0, status, stderr)
	var pids []int
	require.NoError(t, json.Unmarshal([]byte(out), &pids), out)
	assert.Len(t, pids, 2, "the reaper and sleep: %s", out)
	for _, p := range pids {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if strings.HasPrefix(string(cmdline), "sleep") {
			pid = p
		}
	}
	assert.Contains(t, descendants(c.pid), pid, "the command is the monitor's descendant")
	status, out, _ = h.run("ps", "ex")
	assert.Equal(t, 0, status)
	assert.Contains(t, out, "sleep 1000")

	status, _, stderr = h.run("kill", "--all", "ex", "0")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "invalid signal")
	status, _, stderr = h.run("delete", "--force", "ex")
	require.Equal(t, 0, status, stderr)
	ws = h.wait(c.pid)
	assert.True(t, ws.Signaled() && ws.Signal() == unix.SIGKILL, "wait status %v", ws)
	h.gone(c)
}

// TestRuntimeSignalToPid signals the container's pid directly: the signal
// reaches the command, as it reaches runc's init.
func TestRuntimeSignalToPid(t *testing.T) {
	h := newRTHarness(t)
	c := h.create("sig", h.bundle(withArgs("sh", "-c", "trap 'exit 9' TERM; echo ready; while :; do sleep 0.05; done")))
	status, _, stderr := h.run("start", "sig")
	require.Equal(t, 0, status, stderr)
	eventuallyFile(t, c.stdout, "ready\n")
	require.NoError(t, unix.Kill(c.pid, unix.SIGTERM))
	ws := h.wait(c.pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 9, "the trap ran: wait status %v", ws)
	status, _, stderr = h.run("delete", "sig")
	require.Equal(t, 0, status, stderr)
	h.gone(c)

	// kill --all with a number, and kill of a created container.
	c = h.create("sig", h.bundle(withArgs("sleep", "1000")))
	status, _, stderr = h.run("kill", "--all", "sig", "9")
	require.Equal(t, 0, status, stderr)
	ws = h.wait(c.pid)
	assert.True(t, ws.Signaled() && ws.Signal() == unix.SIGKILL, "wait status %v", ws)
	assert.Equal(t, "stopped", h.state("sig")["status"])
	status, _, stderr = h.run("delete", "sig")
	require.Equal(t, 0, status, stderr)
	h.gone(c)
}

// TestRuntimeMonitorKilled kills the monitor from outside: the sandbox
// dies with it, state says stopped, and delete removes the rest.
func TestRuntimeMonitorKilled(t *testing.T) {
	// The pids limit gives the sandbox a control group, which an ordinary
	// user makes only in a delegated subtree; the runtime takes none
	// (cgroupsPath is ignored).
	testutil.RequireRoot(t)
	h := newRTHarness(t)
	b := h.bundle(func(s map[string]any) {
		withArgs("sleep", "1000")(s)
		s["linux"].(map[string]any)["resources"] = map[string]any{"pids": map[string]any{"limit": 64}}
	})
	c := h.create("killed", b)
	status, _, stderr := h.run("start", "killed")
	require.Equal(t, 0, status, stderr)
	inside := descendants(c.pid)
	require.NotEmpty(t, inside)
	require.NotEmpty(t, cgroupsOf(c.pid), "the sandbox has a control group")
	require.NoError(t, unix.Kill(c.pid, unix.SIGKILL))
	h.wait(c.pid)
	assert.Equal(t, "stopped", h.state("killed")["status"])
	status, _, stderr = h.run("delete", "killed")
	require.Equal(t, 0, status, stderr)
	h.gone(c)
	// Every process of the sandbox dies with the monitor. Those that
	// were the monitor's children are now this subreaper's, and the
	// sandbox's pid 1 finishes dying only once they are reaped, as the
	// shim reaps them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var alive []string
		for _, p := range inside {
			var ws unix.WaitStatus
			unix.Wait4(p, &ws, unix.WNOHANG, nil)
			if stat, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat"); err == nil && procState(stat) != "Z" {
				alive = append(alive, fmt.Sprintf("%d (%s)", p, procState(stat)))
			}
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of the sandbox alive 10 s after its monitor was killed: %v", alive)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRuntimeHooks(t *testing.T) {
	h := newRTHarness(t)
	out := t.TempDir()
	hook := func(name string) map[string]any {
		return map[string]any{"path": "/bin/sh", "args": []string{"sh", "-c", "cat > " + filepath.Join(out, name)}}
	}
	b := h.bundle(func(s map[string]any) {
		withArgs("sleep", "1000")(s)
		s["hooks"] = map[string]any{
			"createRuntime": []any{hook("createRuntime")},
			"prestart":      []any{hook("prestart")},
			"poststart":     []any{hook("poststart")},
			"poststop":      []any{hook("poststop")},
		}
	})
	c := h.create("hooks", b)
	status, _, stderr := h.run("start", "hooks")
	require.Equal(t, 0, status, stderr)
	status, _, stderr = h.run("delete", "--force", "hooks")
	require.Equal(t, 0, status, stderr)
	h.wait(c.pid)
	h.gone(c)
	for name, want := range map[string]string{"createRuntime": "created", "prestart": "created", "poststart": "running", "poststop": "stopped"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err, name)
		var st map[string]any
		require.NoError(t, json.Unmarshal(b, &st), name)
		assert.Equal(t, "hooks", st["id"], name)
		assert.Equal(t, want, st["status"], name)
		if want == "stopped" {
			assert.Zero(t, st["pid"], name)
		} else {
			assert.Equal(t, float64(c.statePid), st["pid"], name)
		}
	}

	t.Run("timeout", func(t *testing.T) {
		// The hook records its pid and becomes a long sleep: once create
		// has failed, that process is gone (killed and reaped), not left
		// running nor waited for.
		pidFile := filepath.Join(out, "timeout-pid")
		b := h.bundle(func(s map[string]any) {
			withArgs("true")(s)
			s["hooks"] = map[string]any{"prestart": []any{map[string]any{
				"path": "/bin/sh", "args": []string{"sh", "-c", "echo $$ >" + pidFile + "; exec sleep 100"}, "timeout": 1,
			}}}
		})
		status, _, stderr := h.run("create", "--bundle", b, "late")
		assert.Equal(t, 1, status)
		assert.Contains(t, stderr, "hooks.prestart[0] (/bin/sh): timed out after 1s")
		data, err := os.ReadFile(pidFile)
		require.NoError(t, err)
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		require.NoError(t, err)
		require.Positive(t, pid)
		assert.ErrorIs(t, unix.Kill(pid, 0), unix.ESRCH, "the timed-out hook %d still exists", pid)
		status, _, stderr = h.run("state", "late")
		assert.Equal(t, 1, status)
		assert.Contains(t, stderr, "does not exist")
	})
	t.Run("a failing poststart or poststop hook", func(t *testing.T) {
		// The hooks after it run, and start and delete succeed.
		fail := map[string]any{"path": "/bin/false", "args": []string{"false"}}
		b := h.bundle(func(s map[string]any) {
			withArgs("true")(s)
			s["hooks"] = map[string]any{
				"poststart": []any{fail, hook("poststart-after")},
				"poststop":  []any{fail, hook("poststop-after")},
			}
		})
		c := h.create("failing", b)
		status, _, stderr := h.run("start", "failing")
		require.Equal(t, 0, status, stderr)
		h.wait(c.pid)
		status, _, stderr = h.run("delete", "failing")
		require.Equal(t, 0, status, stderr)
		h.gone(c)
		assert.FileExists(t, filepath.Join(out, "poststart-after"))
		assert.FileExists(t, filepath.Join(out, "poststop-after"))
	})
	t.Run("createContainer", func(t *testing.T) {
		b := h.bundle(func(s map[string]any) {
			s["hooks"] = map[string]any{"createContainer": []any{hook("x")}}
		})
		status, _, stderr := h.run("create", "--bundle", b, "cc")
		assert.Equal(t, 1, status)
		assert.Contains(t, stderr, "hooks.createContainer: not supported")
		assert.NoDirExists(t, filepath.Join(h.root, "cc"))
	})
}

func TestRuntimeErrors(t *testing.T) {
	h := newRTHarness(t)
	b := h.bundle(withArgs("sleep", "1000"))
	c := h.create("dup", b)
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"duplicate", []string{"create", "--bundle", b, "dup"}, `container with id "dup" already exists`},
		{"bad id", []string{"create", "--bundle", b, "a/b"}, `invalid container id format: "a/b"`},
		{"dot id", []string{"state", ".."}, "invalid container id format"},
		{"unknown state", []string{"state", "nope"}, `container "nope" does not exist`},
		{"unknown start", []string{"start", "nope"}, "does not exist"},
		{"unknown kill", []string{"kill", "nope", "KILL"}, "does not exist"},
		{"unknown delete", []string{"delete", "nope"}, "does not exist"},
		{"bad signal", []string{"kill", "dup", "SIGNOPE"}, `invalid signal "SIGNOPE"`},
		{"console", []string{"create", "--bundle", b, "--console-socket", "/tmp/x.sock", "tty"}, "--console-socket: the process has no terminal"},
		{"systemd", []string{"--systemd-cgroup", "state", "dup"}, "--systemd-cgroup"},
		{"no bundle", []string{"create", "--bundle", t.TempDir(), "nb"}, "config.json: no such file or directory"},
		{"no id", []string{"state"}, "exactly one container id"},
		{"unknown command", []string{"pause", "dup"}, `unknown command "pause"`},
		{"spec exists", []string{"spec", "--bundle", b}, "exists: remove it first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, stderr := h.run(tc.args...)
			assert.Equal(t, 1, status)
			assert.Contains(t, stderr, tc.msg)
			log, _ := os.ReadFile(h.log)
			assert.Contains(t, string(log), `"level":"error"`, "the error is in the --log file, as JSON")
		})
	}
	status, _, stderr := h.run("delete", "--force", "nope")
	assert.Equal(t, 0, status, "delete --force of a container that is not there: %s", stderr)
	require.NoError(t, os.Mkdir(filepath.Join(h.root, "half"), 0o700))
	status, _, stderr = h.run("delete", "half")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "does not exist")
	assert.NoDirExists(t, filepath.Join(h.root, "half"), "the directory of an interrupted create is removed")

	assert.Equal(t, "created", h.state("dup")["status"], "the duplicate create left the first alone")
	entries, err := os.ReadDir(h.root)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "only the container created")
	// A created container is deleted without --force, as runc does.
	status, _, stderr = h.run("delete", "dup")
	require.Equal(t, 0, status, stderr)
	h.wait(c.pid)
	h.gone(c)
}

func TestRuntimeFeatures(t *testing.T) {
	h := newRTHarness(t)
	status, out, stderr := h.run("features")
	require.Equal(t, 0, status, stderr)
	var f map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &f))
	assert.Equal(t, "1.0.0", f["ociVersionMin"])
	assert.Contains(t, f["hooks"], "poststop")
}

// TestRuntimeStartFails starts a container whose command is not there:
// start fails with the reason, and the container stops with 127, as a
// shell would say.
func TestRuntimeStartFails(t *testing.T) {
	h := newRTHarness(t)
	c := h.create("nf", h.bundle(withArgs("/bin/nonexistent")))
	status, _, stderr := h.run("start", "nf")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "/bin/nonexistent")
	ws := h.wait(c.pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == exitNotFound, "wait status %v", ws)
	assert.Equal(t, "stopped", h.state("nf")["status"])
	status, _, stderr = h.run("delete", "nf")
	require.Equal(t, 0, status, stderr)
	h.gone(c)
}

// TestWritePidFile: a pid file never names 0 or a negative pid, which the
// shim's kill would take for a process group or for every process.
func TestWritePidFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pid")
	for _, pid := range []int{-1, 0} {
		assert.ErrorContains(t, writePidFile(file, pid), "is not a process's pid")
		assert.NoFileExists(t, file)
	}
	require.NoError(t, writePidFile(file, 42))
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "42", string(b))
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{"TERM": unix.SIGTERM, "SIGKILL": unix.SIGKILL, "hup": unix.SIGHUP, "9": unix.SIGKILL, "64": unix.Signal(64), "SIGRTMIN": 0} {
		got, err := parseSignal(in)
		if want == 0 {
			assert.Error(t, err, in)
			continue
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"0", "-1", "65", "NOPE", ""} {
		_, err := parseSignal(in)
		assert.ErrorContains(t, err, "invalid signal", in)
	}
}

func TestContainerID(t *testing.T) {
	o := &rtOptions{root: "/run/stockade"}
	for _, id := range []string{"a", "abc-1.2_x+y", "0123456789abcdef"} {
		dir, err := o.containerDir(id)
		require.NoError(t, err, id)
		assert.Equal(t, "/run/stockade/"+id, dir)
	}
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a b", "a\x00"} {
		_, err := o.containerDir(id)
		assert.ErrorContains(t, err, "invalid container id format", id)
	}
}

// TestRuntimeExecSignal signals an exec'd process as the shim does for
// "ctr task kill --exec-id": through the pid of the detached exec, which
// passes the signal on; the process's trap runs, and its exit status is
// what the shim reaps.
func TestRuntimeExecSignal(t *testing.T) {
	h := newRTHarness(t)
	c := h.create("exsig", h.bundle(withArgs("sleep", "1000")))
	status, _, stderr := h.run("start", "exsig")
	require.Equal(t, 0, status, stderr)

	dir := t.TempDir()
	proc := filepath.Join(dir, "process.json")
	require.NoError(t, os.WriteFile(proc, []byte(`{"args":["sh","-c","trap 'echo term; exit 3' TERM; echo ready; while :; do sleep 0.05; done"],"cwd":"/work","user":{"uid":1000,"gid":1000}}`), 0o644))
	outFile, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	defer outFile.Close()
	pidFile := filepath.Join(dir, "pid")
	status, _, _ = h.runWith(outFile, outFile, "exec", "--detach", "--pid-file", pidFile, "--process", proc, "exsig")
	require.Equal(t, 0, status)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	require.Greater(t, pid, 0)
	eventuallyFile(t, outFile.Name(), "ready\n")
	require.NoError(t, unix.Kill(pid, unix.SIGTERM))
	ws := h.wait(pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 3, "the trap ran: wait status %v", ws)
	eventuallyFile(t, outFile.Name(), "ready\nterm\n")
	assert.Equal(t, "running", h.state("exsig")["status"], "the container goes on")

	status, _, stderr = h.run("delete", "--force", "exsig")
	require.Equal(t, 0, status, stderr)
	h.wait(c.pid)
	h.gone(c)
}
