//go:build linux && (amd64 || arm64)

package sandbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/reaper"
	"github.com/stockade/stockade/internal/testutil"
)

// rawStarter compiles a Config once for the raw path and starts it as
// often as asked: the piece of the raw path that Run will call.
type rawStarter struct {
	cfg  Config
	id   identity
	rp   *rawProgram
	spec []byte
}

func newRawStarter(tb testing.TB, cfg Config) *rawStarter {
	tb.Helper()
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		tb.Fatal(err)
	}
	id, err := c.identity()
	if err != nil {
		tb.Fatal(err)
	}
	spec := c.spec(id)
	if _, err := c.confine(spec); err != nil {
		tb.Fatal(err)
	}
	rp, err := compileSpec(spec, id, os.Geteuid() == 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return &rawStarter{cfg: c, id: id, rp: rp}
}

// run starts the command with stdout and waits for it.
func (r *rawStarter) run(ctx context.Context, stdout *os.File) (unix.WaitStatus, *rawStart, error) {
	spec := r.cfg.spec(r.id)
	var sources []int
	if os.Geteuid() == 0 {
		files, err := cloneSources(&spec.Plan, 0, r.cfg.userBinds(&spec.Plan, r.id), nil)
		if err != nil {
			return 0, nil, err
		}
		defer closeAll(files)
		for _, f := range files {
			sources = append(sources, int(f.Fd()))
		}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer null.Close()
	out := int(null.Fd())
	if stdout != nil {
		out = int(stdout.Fd())
	}
	flags := uint64(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET)
	var rs *rawStart
	_, err = onSpawner(-1, func() error {
		var err error
		rs, err = launchRaw(r.rp, flags, 0, -1, []int{int(null.Fd()), out, out}, sources)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	if err := rs.finish(ctx, r.rp, r.id, nil); err != nil {
		rs.abort()
		return 0, nil, err
	}
	ws, _ := waitPidfd(rs.pidfd)
	unix.Close(rs.pidfd)
	if rs.cmd >= 0 {
		unix.Close(rs.cmd)
	}
	// The command's status, as the reaper reported it.
	var rep [reaper.ReportSize]byte
	n, _ := unix.Read(rs.report, rep[:])
	unix.Close(rs.report)
	if n != len(rep) {
		return ws, rs, fmt.Errorf("no report from the reaper (pid 1 ended with %v)", ws)
	}
	return unix.WaitStatus(binary.NativeEndian.Uint32(rep[:4])), rs, nil
}

func TestRawStartDefaults(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRawStarter(t, Config{Args: []string{"/bin/sh", "-c", `
		id -u; echo $$; hostname
		grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
		cat /proc/self/uid_map
		touch /usr/stockade-x 2>/dev/null && echo usr-writable
		touch /tmp/x && echo tmp-writable
		test -c /proc/keys && echo keys-masked; test -d /proc/acpi && test -z "$(ls /proc/acpi)" && echo acpi-empty; echo x > /proc/sys/kernel/hostname 2>/dev/null || echo sys-ro
		exit 7`}})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ws, rs, err := r.run(context.Background(), pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(pr)
	t.Logf("%s", out)
	if ws.ExitStatus() != 7 {
		t.Errorf("status %v, want exit 7", ws)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"1000", "2", r.cfg.Hostname}
	for i, w := range want {
		if i >= len(lines) || lines[i] != w {
			t.Fatalf("line %d of %q: want %q", i, out, w)
		}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && strings.HasPrefix(f[0], "Cap") && f[1] != "0000000000000000":
			t.Errorf("%s: capabilities left", l)
		case len(f) == 2 && f[0] == "NoNewPrivs:" && f[1] != "1":
			t.Errorf("%s: want no_new_privs", l)
		case len(f) == 2 && f[0] == "Seccomp:" && f[1] != "2":
			t.Errorf("%s: want a seccomp filter", l)
		case len(f) == 3 && f[0] == "0" && f[1] == "0":
			t.Errorf("uid_map %q maps host root", l)
		case l == "usr-writable":
			t.Error("/usr is writable")
		}
	}
	for _, w := range []string{"tmp-writable", "keys-masked", "acpi-empty", "sys-ro", "Seccomp:\t2", "NoNewPrivs:\t1"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if !rs.landlocked {
		t.Error("the Landlock domain is not in force")
	}
	if len(rs.marks) < 4 {
		t.Errorf("%d stage marks, want at least 4", len(rs.marks))
	}
}

func TestRawStartFailure(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRawStarter(t, Config{Args: []string{"no-such-command"}})
	_, _, err := r.run(context.Background(), nil)
	var se *SetupError
	if !errors.As(err, &se) || se.Stage != "exec" || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("err = %v, want a SetupError for exec with ENOENT", err)
	}
}

// BenchmarkRawStart runs the default sandbox side by side on both paths:
// the init stage (Run) and the raw path.
func BenchmarkRawStart(b *testing.B) {
	testutil.RequireRoot(b)
	cfg := Config{Args: []string{"/bin/true"}}
	b.Run("init", func(b *testing.B) {
		for b.Loop() {
			if _, err := New(cfg).Run(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		r := newRawStarter(b, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for b.Loop() {
			ws, _, err := r.run(ctx, nil)
			if err != nil || ws.ExitStatus() != 0 {
				b.Fatal(ws, err)
			}
		}
	})
}

// TestRawRun runs through the public API on the raw path: the exit
// status, both output streams, a timeout and the signals Kill delivers to
// a command that is pid 1 without handlers.
func TestRawRun(t *testing.T) {
	testutil.RequireRoot(t)
	rawPathOnly(t)

	var stdout, stderr strings.Builder
	sb := New(Config{Args: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: &stdout, Stderr: &stderr})
	res, err := sb.Run(context.Background())
	var ee *ExitError
	if !errors.As(err, &ee) || res == nil || res.Reason != Exited || res.ExitCode != 3 {
		t.Fatalf("Run: %v, %v; want exit status 3", res, err)
	}
	if sb.raw == nil {
		t.Fatal("the sandbox did not start on the raw path")
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if c := sb.Confinement(); c.Seccomp == "" || c.SeccompInstructions == 0 || !c.Landlock {
		t.Errorf("Confinement %+v: want the default filter and Landlock", c)
	}

	res, err = New(Config{Args: []string{"/bin/sleep", "60"}, Timeout: killTimeout(t)}).Run(context.Background())
	if res == nil || res.Reason != Timeout {
		t.Errorf("sleep with a Timeout: %v, %v; want Timeout", res, err)
	}

	// The ignored SIGINT is sent before a SIGTERM that ends the shell, so
	// it reaches the shell while it runs however late the signals come (a
	// shell that slept, then exited, raced a late SIGINT).
	for _, tc := range []struct {
		name   string
		script string
		sigs   []syscall.Signal
		reason Reason
		code   int
		signal syscall.Signal
	}{
		{"default action ends", "echo ready; exec sleep 60", []syscall.Signal{unix.SIGTERM}, Signaled, -1, unix.SIGTERM},
		{"handled", `trap "exit 7" TERM; echo ready; while :; do sleep 0.05; done`, []syscall.Signal{unix.SIGTERM}, Exited, 7, 0},
		{"ignored", `trap "" INT; trap "exit 5" TERM; echo ready; while :; do sleep 0.05; done`, []syscall.Signal{unix.SIGINT, unix.SIGTERM}, Exited, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			sb := New(Config{Args: []string{"/bin/sh", "-c", tc.script}, Stdout: pw, Timeout: 30 * time.Second})
			if err := sb.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			buf := make([]byte, 6)
			if _, err := io.ReadFull(pr, buf); err != nil {
				t.Fatal(err)
			}
			for _, sig := range tc.sigs {
				if err := sb.Kill(sig); err != nil {
					t.Fatal(err)
				}
			}
			res, _ := sb.Wait()
			if res == nil || res.Reason != tc.reason || res.ExitCode != tc.code || res.Signal != tc.signal {
				t.Fatalf("Result %+v; want %v, exit %d, signal %v", res, tc.reason, tc.code, tc.signal)
			}
		})
	}
}

// TestRawExec runs processes in a raw sandbox: each is in the sandbox's
// namespaces, confined as the command, and dies with the sandbox.
func TestRawExec(t *testing.T) {
	testutil.RequireRoot(t)
	rawPathOnly(t)
	sb := New(Config{Args: []string{"/bin/sleep", "100"}})
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	var out strings.Builder
	res, err := sb.Exec(context.Background(), Cmd{Args: []string{"/bin/sh", "-c", `
		grep -E '^(NSpid|CapEff|NoNewPrivs|Seccomp):' /proc/self/status
		id -u; hostname; ls /proc | grep -c '^[0-9]'
		exit 4`}, Stdout: &out})
	t.Logf("%s", out.String())
	if res == nil || res.ExitCode != 4 {
		t.Fatalf("Exec: %v, %v; want exit 4", res, err)
	}
	for _, w := range []string{"CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2", "\n1000\n"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q", w)
		}
	}
	// Seen from the sandbox's /proc, the process has one pid: it is in
	// the sandbox's pid namespace (with pid 1 and itself, sh and grep).
	if f := strings.Fields(strings.SplitN(out.String(), "\n", 2)[0]); len(f) != 2 || f[0] != "NSpid:" || f[1] == "1" {
		t.Errorf("NSpid line %q: want one pid, in the sandbox's namespace", f)
	}
}

// TestRawOwnerUnreachable: on the raw path no process of the library is
// in the sandbox. Root inside, with every capability, sees pid 1 as the
// reaper, whose executable it cannot even name, and no other process but
// its own, so neither the host binary nor the owner's memory has a /proc
// entry to reach.
func TestRawOwnerUnreachable(t *testing.T) {
	testutil.RequireRoot(t)
	rawPathOnly(t)
	var caps []string
	for c := 0; c <= linux.LastCap(); c++ {
		if n := linux.CapName(c); n != "" {
			caps = append(caps, n)
		}
	}
	var out strings.Builder
	cfg := Config{
		Args:      []string{"/bin/sh", "-c", `readlink /proc/1/exe || echo unreadable; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'`},
		RunAsRoot: true,
		Stdout:    &out,
	}
	cfg.Security.Capabilities = caps
	if _, err := New(cfg).Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	lines := strings.Split(out.String(), "\n")
	t.Logf("%s", out.String())
	if len(lines) < 3 {
		t.Fatalf("output %q", out.String())
	}
	if lines[0] != "unreadable" {
		t.Errorf("pid 1's executable is %q to root inside, want unreadable", lines[0])
	}
	if !strings.Contains(lines[1], "stockade") {
		t.Errorf("pid 1 is %q, want the reaper", lines[1])
	}
	// The reaper, sh, then ls and grep: nothing else.
	if n := strings.TrimSpace(lines[2]); n != "4" && n != "3" {
		t.Errorf("%s processes in the sandbox, want the reaper and the command's", n)
	}
}

// TestRawPid1ExecdBeforeTheCommand: the command's first instruction finds
// pid 1 already in memory of its own (the reaper's few pages), never the
// first child still in the owner's. Counted over many starts, as the
// window would be short. (Its comm may lag a moment: the kernel names the
// new program after it has replaced the memory.)
func TestRawPid1ExecdBeforeTheCommand(t *testing.T) {
	testutil.RequireRoot(t)
	rawPathOnly(t)
	bb := testutil.Busybox(t)
	bad := 0
	for range 300 {
		var out strings.Builder
		cfg := Config{Args: []string{bb, "grep", "VmSize", "/proc/1/status"}, Stdout: &out}
		if _, err := New(cfg).Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(out.String())
		kib, err := strconv.Atoi(f[len(f)-2])
		if len(f) != 3 || err != nil {
			t.Fatalf("VmSize line %q", out.String())
		}
		if kib > 1024 {
			bad++
			t.Logf("pid 1 maps %d KiB", kib)
		}
	}
	if bad > 0 {
		t.Errorf("%d of 300 commands ran while pid 1 still had the owner's memory", bad)
	}
}

// TestRawCover: a root directory's /etc/resolv.conf (here a symbolic link
// inside the root) is covered by the generated file on the raw path,
// read-only, and the root's own files and directory listing stay as they
// were; a directory cannot be covered, and the start says so.
func TestRawCover(t *testing.T) {
	testutil.RequireRoot(t)
	rawPathOnly(t)
	root := testutil.BusyboxRoot(t)
	require.NoError(t, os.WriteFile(root+"/etc/hosts", []byte("own hosts\n"), 0o644))
	require.NoError(t, os.MkdirAll(root+"/run", 0o755))
	require.NoError(t, os.WriteFile(root+"/run/resolv", []byte("own resolv\n"), 0o644))
	require.NoError(t, os.Symlink("../run/resolv", root+"/etc/resolv.conf"))
	before, err := os.ReadDir(root)
	require.NoError(t, err)
	cfg := Config{
		Args:    []string{"/bin/sh", "-c", "cat /etc/hosts /run/resolv; ls /; echo x >/etc/hosts || echo refused"},
		RootDir: root, Hostname: "rooted", RunAsRoot: true,
		Network: Network{DNS: []netip.Addr{netip.MustParseAddr("10.213.0.1")}},
	}
	cfg.Stdout = new(strings.Builder)
	cfg.Stderr = io.Discard
	sb := New(cfg)
	require.NoError(t, sb.Start(context.Background()))
	require.NotNil(t, sb.raw, "the sandbox did not start on the raw path")
	res, err := sb.Wait()
	require.NoError(t, err)
	require.Zero(t, res.ExitCode)
	out := cfg.Stdout.(*strings.Builder).String()
	// Only resolv.conf is generated without a managed network.
	assert.True(t, strings.HasPrefix(out, "own hosts\n# Generated by stockade.\nnameserver 10.213.0.1\n"), "%q", out)
	assert.NotContains(t, out, "own resolv")
	assert.Contains(t, out, "refused\n", "a covered file is read-only")
	var names []string
	for _, e := range before {
		names = append(names, e.Name())
	}
	assert.Contains(t, out, strings.Join(names, "\n")+"\n", "the scratch tmpfs is gone from the root")
	b, err := os.ReadFile(root + "/run/resolv")
	require.NoError(t, err)
	assert.Equal(t, "own resolv\n", string(b))

	// A directory cannot be covered.
	require.NoError(t, os.Remove(root+"/etc/resolv.conf"))
	require.NoError(t, os.Mkdir(root+"/etc/resolv.conf", 0o755))
	cfg.Stdout = nil
	_, err = New(cfg).Run(context.Background())
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "cover", se.Stage)
	assert.Equal(t, "/etc/resolv.conf", se.Path)
	assert.ErrorIs(t, err, unix.EISDIR)
}

// TestPollTimeout checks that a deadline already past is a poll that
// returns at once, not one that waits for ever: a Start whose pid 1 was
// being killed as it started once hung in pidfdExited(pidfd, 0) when a
// millisecond passed between the deadline and the poll (TestChaos).
func TestPollTimeout(t *testing.T) {
	assert.Equal(t, 0, pollTimeout(-5*time.Millisecond))
	assert.Equal(t, 0, pollTimeout(0))
	assert.Equal(t, 1500, pollTimeout(1500*time.Millisecond))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	done := make(chan bool, 1)
	go func() { done <- pidfdExited(int(r.Fd()), -time.Second) }()
	select {
	case got := <-done:
		assert.False(t, got, "nothing to read on the pipe")
	case <-time.After(10 * time.Second):
		t.Fatal("pidfdExited with a deadline already past did not return")
	}
}
