//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/oci"
)

// TestContainerd runs containers through containerd and its runc shim
// (io.containerd.runc.v2) with stockade as the runc binary, as ctr does:
// a private containerd (its own root, state and sockets), a spec that
// "stockade spec" wrote with a busybox root, and ctr run, task exec, kill
// and delete. Debian's package containerd provides containerd and ctr.
func TestContainerd(t *testing.T) {
	// containerd itself runs as root (an ordinary user's containerd needs
	// rootlesskit; its debug socket's chown fails and it never answers).
	testutil.RequireRoot(t)
	testutil.RequireUserNamespaces(t)
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(b); err != nil {
			testutil.Skip(t, b+" is not installed", "apt-get install containerd")
		}
	}
	bin := buildStockade(t)
	dir, err := os.MkdirTemp("", "stk-ctd-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "sock")
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "debug.sock"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644))
	logFile, err := os.Create(filepath.Join(dir, "containerd.log"))
	require.NoError(t, err)
	defer logFile.Close()
	// containerd 1.6 keeps its shims' sockets in /run/containerd/s, whatever
	// its configuration says; the directories it makes there go when empty.
	if _, err := os.Stat("/run/containerd"); os.IsNotExist(err) {
		defer func() {
			os.Remove("/run/containerd/s")
			os.Remove("/run/containerd")
		}()
	}
	// The shims that containerd starts leave it in a session of their own
	// and outlive it; as a subreaper this test gets them when containerd
	// ends, and waits for them.
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	defer reapOrphans(t)
	// ctr's containers are in the namespace "default", whose cgroupsPath
	// is /default/ID: the runtime removes the container's group, and
	// nothing removes the namespace's (runc leaves it too). The test
	// removes those it made, once the containers are gone.
	nsGroups, _ := filepath.Glob("/sys/fs/cgroup/*/default")
	defer func() {
		made, _ := filepath.Glob("/sys/fs/cgroup/*/default")
		for _, g := range made {
			if !slices.Contains(nsGroups, g) {
				if err := os.Remove(g); err != nil {
					t.Errorf("remove the namespace's control group: %v", err)
				}
			}
		}
	}()
	daemon := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	daemon.Stdout, daemon.Stderr = logFile, logFile
	require.NoError(t, daemon.Start())
	defer func() {
		daemon.Process.Signal(unix.SIGTERM)
		done := make(chan struct{})
		go func() { daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			daemon.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("containerd's log:\n%s", log)
		}
	}()

	runcRoot := filepath.Join(dir, "runc")
	ctr := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = 10 * time.Second // a child of ctr's holding the pipe
		err := cmd.Run()
		require.NoError(t, ctx.Err(), "ctr %v: %s", args, out.String())
		if err != nil && cmd.ProcessState == nil {
			t.Fatalf("ctr %v: %v", args, err)
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if status, _ := ctr("version"); status == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "containerd did not answer within 30s")
	}

	rootfs := busyboxRoot(t)
	// ctr's own spec mounts a tmpfs on /run and sysfs on /sys.
	for _, d := range []string{"run", "sys"} {
		require.NoError(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}
	spec := func(args ...string) string {
		t.Helper()
		b := t.TempDir()
		status, out, stderr := (&rtHarness{t: t, bin: bin, root: runcRoot}).run("spec", "--bundle", b)
		require.Equal(t, 0, status, out+stderr)
		var s map[string]any
		data, err := os.ReadFile(filepath.Join(b, oci.ConfigFile))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &s))
		s["process"].(map[string]any)["args"] = args
		s["root"].(map[string]any)["path"] = rootfs
		data, err = json.Marshal(s)
		require.NoError(t, err)
		file := filepath.Join(b, oci.ConfigFile)
		require.NoError(t, os.WriteFile(file, data, 0o644))
		return file
	}
	fifos := filepath.Join(dir, "fifo")
	run := []string{"run", "--fifo-dir", fifos, "--runc-binary", bin, "--runc-root", runcRoot}

	t.Run("run", func(t *testing.T) {
		status, out := ctr(append(run, "--rm", "--config", spec("sh", "-c", "echo hello from ctr; id -u; hostname; exit 3"), "c1")...)
		assert.Equal(t, 3, status, out)
		assert.Equal(t, "hello from ctr\n1000\nsandbox\n", out)
	})

	// The spec ctr writes itself, as for an image, with a working
	// directory of its own.
	t.Run("ctr's spec", func(t *testing.T) {
		status, out := ctr(append(run, "--rm", "--cwd", "/tmp", "--rootfs", rootfs, "c3", "sh", "-c", "echo from the spec of ctr; pwd")...)
		assert.Equal(t, 0, status, out)
		assert.Equal(t, "from the spec of ctr\n/tmp\n", out)
	})

	t.Run("detached, exec, kill", func(t *testing.T) {
		file := spec("sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done")
		status, out := ctr(append(run, "-d", "--config", file, "c2")...)
		require.Equal(t, 0, status, out)
		defer ctr("container", "rm", "c2")
		status, out = ctr("task", "ls")
		assert.Equal(t, 0, status, out)
		assert.Regexp(t, `c2\s+\d+\s+RUNNING`, out)

		status, out = ctr("task", "exec", "--fifo-dir", fifos, "--exec-id", "e1", "c2", "sh", "-c", "echo from exec; exit 6")
		assert.Equal(t, 6, status, out)
		assert.Equal(t, "from exec\n", out)
		status, out = ctr("task", "ps", "c2")
		assert.Equal(t, 0, status, out)
		assert.GreaterOrEqual(t, len(strings.Split(strings.TrimSpace(out), "\n")), 3, "a header, the reaper and sh: %s", out)

		status, out = ctr("task", "kill", "c2")
		require.Equal(t, 0, status, out)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			_, out = ctr("task", "ls")
			if strings.Contains(out, "STOPPED") {
				break
			}
			require.True(t, time.Now().Before(deadline), "c2 has not stopped: %s", out)
		}
		status, out = ctr("task", "delete", "c2")
		assert.Equal(t, 0, status, out)
		assert.Contains(t, out, "exit code 7")
	})

	t.Run("terminal", func(t *testing.T) {
		// ctr run -t, on a terminal of its own: the shim receives the
		// master on its console socket and copies it to ctr's.
		// ctr sizes the terminal after start: the script waits (5 s at
		// most) until the size shows, then prints it.
		file := spec("sh", "-c", `tty; i=0; while [ "$(stty size 2>/dev/null)" != "25 90" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; stty size; exit 3`)
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		m["process"].(map[string]any)["terminal"] = true
		data, err = json.Marshal(m)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file, data, 0o644))
		master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
		require.NoError(t, err)
		defer master.Close()
		require.NoError(t, unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0))
		require.NoError(t, unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 25, Col: 90}))
		n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
		require.NoError(t, err)
		slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock}, append(run, "--rm", "-t", "--config", file, "c4")...)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		require.NoError(t, cmd.Start())
		slave.Close()
		// The master's reads end (EIO) once ctr, the last holder of the
		// other end, has exited.
		copied := make(chan string, 1)
		go func() {
			var out bytes.Buffer
			out.ReadFrom(master)
			copied <- out.String()
		}()
		err = cmd.Wait()
		var out string
		select {
		case out = <-copied:
		case <-time.After(10 * time.Second):
			t.Fatal("the terminal's output did not end 10 s after ctr exited")
		}
		require.NoError(t, ctx.Err(), "ctr run -t: %s", out)
		assert.Equal(t, 3, cmd.ProcessState.ExitCode(), "%v: %s", err, out)
		assert.Contains(t, out, "/dev/pts/0", "the sandbox's own terminal")
		assert.Contains(t, out, "25 90", "of the size of ctr's")
	})

	entries, _ := os.ReadDir(filepath.Join(runcRoot, "default"))
	assert.Empty(t, entries, "containers left in the runtime's state directory")
}

// reapOrphans stops being a subreaper and waits, for a bounded time, for
// the children this process adopted to end, and reaps them; one still
// running then is a failure, and is killed.
func reapOrphans(t *testing.T) {
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := children()
		if len(left) == 0 {
			return
		}
		for _, pid := range left {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
		if time.Now().After(deadline) {
			for _, pid := range children() {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				t.Errorf("process %d (%s) still runs", pid, strings.TrimSpace(string(comm)))
				unix.Kill(pid, unix.SIGKILL)
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, 0, nil)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
