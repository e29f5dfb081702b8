//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/netns"
	"github.com/stockade/stockade/sandbox"
)

// busyboxRoot returns a busybox root with the applets these tests use.
func busyboxRoot(t testing.TB) string {
	root := testutil.BusyboxRoot(t)
	for _, applet := range []string{"tail", "yes", "head", "wc", "env", "pwd"} {
		require.NoError(t, os.Symlink("busybox", filepath.Join(root, "bin", applet)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "data"), []byte("not a program\n"), 0o644))
	return root
}

// stockadeRun runs "stockade run" with args in this process and returns
// its exit status, standard output and standard error.
func stockadeRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	status := run(append([]string{"run"}, args...), stdio{nil, &out, &errOut})
	return status, out.String(), errOut.String()
}

func TestRunExitStatus(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	root := busyboxRoot(t)
	for _, tc := range []struct {
		name   string
		cmd    []string
		status int
		stderr string
	}{
		{"exit 0", []string{"true"}, 0, ""},
		{"exit 3", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"killed by TERM", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		{"killed by KILL", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9, ""},
		{"not found", []string{"/bin/nonexistent"}, exitNotFound, "stockade run: setup: exec /bin/nonexistent: ENOENT"},
		{"not in PATH", []string{"nonexistent"}, exitNotFound, "ENOENT"},
		{"not executable", []string{"/etc/data"}, exitNoExec, "stockade run: setup: exec /etc/data: EACCES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, stderr := stockadeRun(t, append([]string{"--rootfs", root, "--"}, tc.cmd...)...)
			assert.Equal(t, tc.status, status, "stderr: %s", stderr)
			if tc.stderr == "" {
				assert.Empty(t, stderr, "the command's own end needs no words from stockade")
			} else {
				assert.Contains(t, stderr, tc.stderr)
			}
		})
	}
}

// TestRunFlags runs a command that reports what the flags changed.
func TestRunFlags(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	root := busyboxRoot(t)
	rw, ro := t.TempDir(), t.TempDir()
	// Writable by whatever host id the sandbox's user maps onto.
	require.NoError(t, os.Chmod(rw, 0o777))
	require.NoError(t, os.WriteFile(filepath.Join(ro, "in"), []byte("from the host\n"), 0o644))
	// The root is read-only: mount points must be there already.
	for _, d := range []string{"rw", "ro", "scratch"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	script := `
id -u; id -g; hostname; pwd; echo "A=$A B=$B HOME=$HOME"
cat /ro/in
echo written >/rw/out && echo rw ok
touch /ro/x 2>/dev/null || echo ro refused
touch /scratch/x && ls -ln /scratch/x | awk '{print "scratch owner " $3}'
`
	status, stdout, stderr := stockadeRun(t, "--rootfs", root,
		"--bind", rw, "/rw", "--ro-bind", ro, "/ro", "--tmpfs", "/scratch",
		"--user", "1234:4321", "--hostname", "box", "--chdir", "/scratch",
		"--env", "A=1", "--setenv", "B", "two words", "--", "sh", "-c", script)
	require.Equal(t, 0, status, "stderr: %s", stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	want := []string{"1234", "4321", "box", "/scratch", "A=1 B=two words HOME=/scratch", "from the host", "rw ok", "ro refused"}
	assert.Equal(t, want, lines[:len(want)], "stdout: %s", stdout)
	b, err := os.ReadFile(filepath.Join(rw, "out"))
	require.NoError(t, err)
	assert.Equal(t, "written\n", string(b))
	_, err = os.Stat(filepath.Join(ro, "x"))
	assert.True(t, os.IsNotExist(err), "the read-only bind is unchanged")
}

func TestRunRoot(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	status, stdout, stderr := stockadeRun(t, "--rootfs", busyboxRoot(t), "--root", "--", "sh", "-c", "id -u; echo $USER $HOME")
	require.Equal(t, 0, status, stderr)
	assert.Equal(t, "0\nroot /work\n", stdout)
}

func TestRunTimeLimit(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	start := time.Now()
	status, _, stderr := stockadeRun(t, "--rootfs", busyboxRoot(t), "--time-limit", "200ms", "--", "sleep", "60")
	assert.Equal(t, 128+9, status)
	assert.Contains(t, stderr, "stockade: timed out after")
	assert.Less(t, time.Since(start), 50*time.Second, "the sleep was cut short")
}

func TestRunOutputLimit(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	status, stdout, stderr := stockadeRun(t, "--rootfs", busyboxRoot(t), "--output-limit", "1k", "--json", "--", "yes")
	assert.Equal(t, 128+9, status)
	assert.LessOrEqual(t, len(stdout), 1024)
	assert.Greater(t, len(stdout), 0)
	r := lastJSON(t, stderr)
	assert.Equal(t, "output-limit", r["reason"])
	assert.EqualValues(t, 137, r["exitStatus"])
}

// lastJSON decodes the last line of stderr, which --json writes.
func lastJSON(t *testing.T, stderr string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var r map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &r), "stderr: %s", stderr)
	return r
}

func TestRunJSON(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	root := busyboxRoot(t)
	status, _, stderr := stockadeRun(t, "--rootfs", root, "--json", "--", "sh", "-c", "echo oops >&2; exit 4")
	assert.Equal(t, 4, status)
	assert.True(t, strings.HasPrefix(stderr, "oops\n"), "the command's stderr comes first: %q", stderr)
	r := lastJSON(t, stderr)
	assert.Equal(t, "exited", r["reason"])
	assert.EqualValues(t, 4, r["exitCode"])
	assert.EqualValues(t, 4, r["exitStatus"])
	assert.Greater(t, r["wall"], 0.0)
	assert.Contains(t, r, "cpuTime")
	assert.NotContains(t, r, "signal")

	status, _, stderr = stockadeRun(t, "--rootfs", root, "--json", "--", "sh", "-c", "kill -SEGV $$")
	assert.Equal(t, 128+11, status)
	r = lastJSON(t, stderr)
	assert.Equal(t, "signaled", r["reason"])
	assert.Equal(t, "SIGSEGV", r["signalName"])
	assert.EqualValues(t, 11, r["signal"])

	status, _, stderr = stockadeRun(t, "--rootfs", root, "--json", "--", "/bin/nonexistent")
	assert.Equal(t, exitNotFound, status)
	r = lastJSON(t, stderr)
	assert.Contains(t, r["error"], "ENOENT")
	assert.EqualValues(t, exitNotFound, r["exitStatus"])
}

func TestRunVerbose(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	status, _, stderr := stockadeRun(t, "--rootfs", busyboxRoot(t), "-v", "--", "true")
	assert.Equal(t, 0, status)
	assert.Contains(t, stderr, "stockade: exited with status 0\n  wall ")
	assert.Contains(t, stderr, "max rss")
}

// cgroupArgs returns the flags that give a sandbox a control group: none
// for host root, --cgroup-parent with the delegated group that the
// rootless run of the tests names (see .ci/rootless) for an ordinary user.
func cgroupArgs(t *testing.T) []string {
	if os.Geteuid() == 0 {
		return nil
	}
	parent := os.Getenv("STOCKADE_TEST_CGROUP_PARENT")
	if parent == "" {
		testutil.RequireRoot(t)
	}
	return []string{"--cgroup-parent", parent}
}

// TestRunLimits: limits that need a control group, and their verdicts.
func TestRunLimits(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	root := busyboxRoot(t)
	args := append([]string{"--rootfs", root}, cgroupArgs(t)...)
	t.Run("cpu-time", func(t *testing.T) {
		status, _, stderr := stockadeRun(t, append(args, "--json", "--cpu-time", "300ms", "--pids", "32",
			"--", "sh", "-c", "while :; do :; done")...)
		assert.Equal(t, 128+9, status)
		r := lastJSON(t, stderr)
		assert.Equal(t, "cpu-time-limit", r["reason"])
		assert.GreaterOrEqual(t, r["cpuTime"], float64(300*time.Millisecond))
		assert.Greater(t, r["pidsPeak"], 0.0)
	})
	t.Run("memory", func(t *testing.T) {
		// tail keeps the one endless line of /dev/zero in memory.
		status, _, stderr := stockadeRun(t, append(args, "--memory", "32m", "-v", "--", "tail", "/dev/zero")...)
		assert.Equal(t, 128+9, status)
		assert.Contains(t, stderr, "stockade: killed: out of memory")
		assert.Contains(t, stderr, "memory peak")
	})
}

// TestRunLimitsUndelegated: an ordinary user's limit that no cgroup can
// hold fails with a pointer to the flags that help, or applies with best
// effort.
func TestRunLimitsUndelegated(t *testing.T) {
	testutil.RequireNonRoot(t)
	testutil.RequireUserNamespaces(t)
	root := busyboxRoot(t)
	status, _, stderr := stockadeRun(t, "--rootfs", root, "--cgroup-parent", "/not-delegated", "--memory", "64m", "--", "true")
	assert.Equal(t, exitSetup, status, stderr)
	assert.Contains(t, stderr, "--best-effort-limits")
	status, _, stderr = stockadeRun(t, "--rootfs", root, "--cgroup-parent", "/not-delegated", "--memory", "64m",
		"--best-effort-limits", "-v", "--", "true")
	assert.Equal(t, 0, status, stderr)
	assert.Contains(t, stderr, "note: Limits.Memory")
}

func TestProbe(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"probe"}, stdio{nil, &out, &errOut}), errOut.String())
	assert.Regexp(t, `(?m)^  sandbox +yes `, out.String())
	out.Reset()
	require.Equal(t, 0, run([]string{"probe", "--json"}, stdio{nil, &out, &errOut}), errOut.String())
	var r sandbox.HostReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	assert.True(t, r.Sandbox.Available)
	assert.Equal(t, os.Geteuid(), r.UID)
}

// buildStockade builds the command into a temporary directory.
func buildStockade(t testing.TB) string {
	t.Helper()
	if os.Getenv(testutil.RootlessEnv) == "1" {
		t.Skip("the rootless run has no Go toolchain to build the binary; the run as root covers it")
	}
	bin := filepath.Join(t.TempDir(), "stockade")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestSignals runs the real binary and signals it: the command gets the
// signal, and the exit status is the command's.
func TestSignals(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bin, root := buildStockade(t), busyboxRoot(t)
	for _, tc := range []struct {
		name   string
		script string
		sig    syscall.Signal
		status int
	}{
		{"trapped", `trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done`, syscall.SIGTERM, 7},
		{"default action", `echo ready; exec sleep 60`, syscall.SIGINT, 128 + 2},
		{"hangup", `echo ready; exec sleep 60`, syscall.SIGHUP, 128 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "run", "--rootfs", root, "--", "sh", "-c", tc.script)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			defer cmd.Process.Kill()
			// A stockade that never says ready, or does not pass the signal
			// on (the trapped script loops for ever), is killed, which ends
			// the reads and the wait.
			hung := time.AfterFunc(ptyWait, func() { cmd.Process.Kill() })
			defer hung.Stop()
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() || lines.Text() != "ready" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no ready line; stderr: %s", stderr.String())
			}
			require.NoError(t, cmd.Process.Signal(tc.sig))
			var rest []string
			for lines.Scan() {
				rest = append(rest, lines.Text())
			}
			err = cmd.Wait()
			assert.Equal(t, tc.status, cmd.ProcessState.ExitCode(), "%v; stderr: %s", err, stderr.String())
			if tc.status == 7 {
				assert.True(t, slices.Contains(rest, "got TERM"), "%q", rest)
			}
		})
	}
}

// TestBinaryUsage runs the real binary with bad flags.
func TestBinaryUsage(t *testing.T) {
	bin := buildStockade(t)
	cmd := exec.Command(bin, "run", "--memory", "lots", "--", "true")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitUsage, ee.ExitCode())
	assert.Contains(t, string(out), `"--memory"`)
}

func TestRunNetwork(t *testing.T) {
	testutil.RequireRoot(t) // a link needs host root
	bb := testutil.Busybox(t)
	status, out, errOut := stockadeRun(t, "--net", "link", "--", bb, "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '")
	require.Equal(t, 0, status, errOut)
	assert.Equal(t, "eth0 lo ", out, "a link adds one interface")
	status, out, errOut = stockadeRun(t, "--", bb, "sh", "-c", "tail -n +3 /proc/net/dev | wc -l")
	require.Equal(t, 0, status, errOut)
	assert.Equal(t, "1\n", out, "only lo by default")
	// The host's namespace itself: counting its interfaces races the
	// removal of the link above, which the kernel finishes later.
	hostNS, err := os.Readlink("/proc/thread-self/ns/net")
	require.NoError(t, err)
	status, out, errOut = stockadeRun(t, "--net", "host", "--", bb, "readlink", "/proc/self/ns/net")
	require.Equal(t, 0, status, errOut)
	assert.Equal(t, hostNS+"\n", out, "the host's network namespace")
	// A namespace made elsewhere, joined by path.
	ns, err := netns.New()
	require.NoError(t, err)
	defer ns.Close()
	path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.Fd())
	nsLink, err := os.Readlink(path)
	require.NoError(t, err)
	status, out, errOut = stockadeRun(t, "--net", path, "--", bb, "readlink", "/proc/self/ns/net")
	require.Equal(t, 0, status, errOut)
	assert.Equal(t, nsLink+"\n", out, "the namespace of --net PATH")
	status, _, errOut = stockadeRun(t, "--net", "wifi", "--", "true")
	assert.Equal(t, 2, status)
	assert.Contains(t, errOut, "--net")
}

func TestRunSeccompProfile(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	profile := filepath.Join(t.TempDir(), "profile.json")
	require.NoError(t, os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644))
	status, out, errOut := stockadeRun(t, "--seccomp", profile, "--", bb, "sh", "-c", "mkdir /tmp/x 2>/dev/null && echo made || echo refused; touch /tmp/y && echo touched")
	require.Equal(t, 0, status, errOut)
	assert.Equal(t, "refused\ntouched\n", out)
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["nosuchcall"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644))
	status, _, errOut = stockadeRun(t, "--seccomp", bad, "--", "true")
	assert.Equal(t, 2, status)
	assert.Contains(t, errOut, "--seccomp")
	status, _, _ = stockadeRun(t, "--seccomp", "/no/such/file", "--", "true")
	assert.Equal(t, 2, status)
}

// TestRunDevBind checks that --dev-bind leaves device nodes usable, where
// --bind mounts them nodev.
func TestRunDevBind(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	script := `head -c 5 /tmp/zero | wc -c; head -c 5 /tmp/nodev 2>&1 >/dev/null | grep -c 'ermission denied'`
	status, stdout, stderr := stockadeRun(t, "--rootfs", busyboxRoot(t), "--dev-bind", "/dev/zero", "/tmp/zero", "--bind", "/dev/zero", "/tmp/nodev", "--", "sh", "-c", script)
	require.Equal(t, 0, status, "stderr: %s", stderr)
	assert.Equal(t, "5\n1\n", stdout, "--dev-bind reads the device; --bind is refused")
}

// TestRunSymlink checks --symlink: the link is made where asked, with
// the text given; one that would land in a host directory is a usage
// error naming the flag.
func TestRunSymlink(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	status, stdout, stderr := stockadeRun(t, "--symlink", "/etc/hostname", "/hn", "--symlink", "../hn", "/tmp/up",
		"--", "/bin/sh", "-c", "readlink /hn /tmp/up; cat /tmp/up")
	require.Equal(t, 0, status, "stderr: %s", stderr)
	assert.Equal(t, "/etc/hostname\n../hn\nsandbox\n", stdout)

	status, _, stderr = stockadeRun(t, "--symlink", "x", "/usr/l", "--", "true")
	assert.Equal(t, exitUsage, status)
	assert.Contains(t, stderr, "--symlink x /usr/l: DST")
}

// TestRunDataFiles checks --file and --bind-data: the content of a
// descriptor at a path inside, writable or not, and nothing left behind.
func TestRunDataFiles(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	open := func(content string) *os.File {
		name := filepath.Join(t.TempDir(), "in")
		require.NoError(t, os.WriteFile(name, []byte(content), 0o600))
		f, err := os.Open(name)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	rw, ro := open("copied\n"), open("bound\n")
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "stockade-data-*"))
	script := `cat /tmp/rw /tmp/ro; echo more >>/tmp/rw && cat /tmp/rw; echo x 2>/dev/null >>/tmp/ro || echo ro refused; ls -l /tmp/ro | cut -c1-10`
	status, stdout, stderr := stockadeRun(t, "--rootfs", busyboxRoot(t), "--file", strconv.Itoa(int(rw.Fd())), "/tmp/rw", "--bind-data", strconv.Itoa(int(ro.Fd())), "/tmp/ro",
		"--", "sh", "-c", script)
	require.Equal(t, 0, status, "stderr: %s", stderr)
	assert.Equal(t, "copied\nbound\ncopied\nmore\nro refused\n-rw-r--r--\n", stdout)
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "stockade-data-*"))
	assert.ElementsMatch(t, before, after, "the copies are removed at the end")

	status, _, stderr = stockadeRun(t, "--rootfs", busyboxRoot(t), "--file", "999", "/tmp/x", "--", "true")
	assert.Equal(t, exitUsage, status)
	assert.Contains(t, stderr, "--file: FD 999: bad file descriptor")
}

// TestRunCapAdd checks that --cap-add keeps the capability, and names
// itself in the error for an unknown one.
func TestRunCapAdd(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	root := busyboxRoot(t)
	status, stdout, stderr := stockadeRun(t, "--rootfs", root, "--cap-add", "net_bind_service", "--",
		"sh", "-c", "grep CapEff /proc/self/status")
	require.Equal(t, 0, status, "stderr: %s", stderr)
	assert.Equal(t, "CapEff:\t0000000000000400\n", stdout, "CAP_NET_BIND_SERVICE is bit 10")

	status, stdout, stderr = stockadeRun(t, "--rootfs", root, "--", "sh", "-c", "grep CapEff /proc/self/status")
	require.Equal(t, 0, status, "stderr: %s", stderr)
	assert.Equal(t, "CapEff:\t0000000000000000\n", stdout, "none without --cap-add")

	status, _, stderr = stockadeRun(t, "--rootfs", root, "--cap-add", "CAP_NOPE", "--", "true")
	assert.Equal(t, exitUsage, status)
	assert.Contains(t, stderr, "--cap-add")
	assert.Contains(t, stderr, "CAP_NOPE")
}

// TestRunJSONTo checks --json=FILE and --json=fd:N: the result goes there
// and the command's stderr is its own.
func TestRunJSONTo(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	root := busyboxRoot(t)
	file := filepath.Join(t.TempDir(), "result.json")
	status, _, stderr := stockadeRun(t, "--rootfs", root, "--json="+file, "--", "sh", "-c", "echo oops >&2; exit 4")
	assert.Equal(t, 4, status)
	assert.Equal(t, "oops\n", stderr)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	r := lastJSON(t, string(b))
	assert.EqualValues(t, 4, r["exitStatus"])

	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	status, _, stderr = stockadeRun(t, "--rootfs", root, "--json=fd:"+strconv.Itoa(int(pw.Fd())), "--", "/bin/nonexistent")
	pw.Close()
	assert.Equal(t, exitNotFound, status)
	assert.Empty(t, stderr)
	b, err = io.ReadAll(pr)
	require.NoError(t, err)
	r = lastJSON(t, string(b))
	assert.Contains(t, r["error"], "ENOENT")

	status, _, stderr = stockadeRun(t, "--rootfs", root, "--json="+filepath.Join(file, "x"), "--", "true")
	assert.Equal(t, exitUsage, status)
	assert.Contains(t, stderr, "--json: open "+file)
	status, _, stderr = stockadeRun(t, "--rootfs", root, "--json=fd:x", "--", "true")
	assert.Equal(t, exitUsage, status)
	assert.Contains(t, stderr, "not a descriptor number")
}

// TestRunBindCaller is the README's writable bind: "stockade run --bind
// "$PWD" /src --chdir /src -- touch x" leaves x in the caller's directory
// owned by the caller, as root (through an idmapped mount) and as an
// ordinary user (whose sandbox writes as that user).
func TestRunBindCaller(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	dir := t.TempDir()
	t.Chdir(dir)
	pwd, err := os.Getwd()
	require.NoError(t, err)
	status, _, stderr := stockadeRun(t, "--bind", pwd, "/src", "--chdir", "/src", "--", "touch", "x")
	require.Equal(t, 0, status, "stderr: %s", stderr)
	fi, err := os.Stat(filepath.Join(dir, "x"))
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, [2]uint32{uint32(os.Geteuid()), uint32(os.Getegid())}, [2]uint32{st.Uid, st.Gid})
}
