//go:build linux

package sandbox

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// ttyWait bounds every wait for the terminal to show something: a bound
// for a hung test, not a timing the test asserts.
const ttyWait = 20 * time.Second

// term is a test's side of a sandbox's terminal: what the command wrote,
// read as it comes.
type term struct {
	t    *testing.T
	m    *os.File
	out  syncBuffer
	done chan struct{}
	seen int // how much of out expect has consumed
}

func newTerm(t *testing.T, m *os.File) *term {
	tm := &term{t: t, m: m, done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		io.Copy(&tm.out, m) // ends with EIO once the command is gone
	}()
	return tm
}

// typ types s at the command.
func (tm *term) typ(s string) {
	tm.t.Helper()
	_, err := tm.m.Write([]byte(s))
	require.NoError(tm.t, err)
}

// expect waits until the output after the last match holds want.
func (tm *term) expect(want string) {
	tm.t.Helper()
	deadline := time.Now().Add(ttyWait)
	for {
		s := tm.out.String()
		if i := strings.Index(s[tm.seen:], want); i >= 0 {
			tm.seen += i + len(want)
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the terminal never showed %q; it showed:\n%q", want, s[tm.seen:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startTTY starts cfg with a terminal of rows by cols and returns the
// sandbox and its terminal; the sandbox is closed when the test ends.
func startTTY(t *testing.T, cfg Config, rows, cols uint16) (*Sandbox, *term) {
	t.Helper()
	testutil.RequireUserNamespaces(t)
	cfg = testConfig(cfg)
	cfg.TTY = &TTY{Rows: rows, Cols: cols}
	cfg.Env = append(DefaultEnv("sandbox", "/work"), "PS1=$ ", "TERM=vt100")
	s := New(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { s.Close() })
	m := s.Terminal()
	require.NotNil(t, m)
	return s, newTerm(t, m)
}

// interactiveShell is a config whose command is busybox's shell, which
// is interactive, with job control, on a terminal.
func interactiveShell(t *testing.T) Config {
	return Config{Args: []string{testutil.Busybox(t), "sh"}}
}

// bothStarts runs f on the raw path and on the init stage.
func bothStarts(t *testing.T, f func(t *testing.T)) {
	t.Run("raw", func(t *testing.T) { f(t) })
	t.Run("init", func(t *testing.T) {
		t.Setenv(startEnv, "init")
		f(t)
	})
}

// The terminal is a pty of the sandbox's own devpts instance, the
// command's controlling terminal, of the size asked for and then of the
// size Resize sets.
func TestTTYShell(t *testing.T) {
	bothStarts(t, func(t *testing.T) {
		s, tm := startTTY(t, interactiveShell(t), 24, 80)
		tm.ownDevpts()

		tm.typ("tty; ls -1 /dev/pts; stty size; echo o''k\n")
		tm.expect("/dev/pts/0")
		tm.expect("0\r\nptmx\r\n") // the instance holds this terminal alone
		tm.expect("24 80")
		tm.expect("ok")

		// No process of the sandbox holds the master.
		tm.typ("echo masters=$(ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -c ptmx)\n")
		tm.expect("masters=0")

		require.NoError(t, s.Resize(40, 100))
		tm.typ("stty size\n")
		tm.expect("40 100")

		tm.exit7(s.Wait)
	})
}

// Ctrl-C typed at the terminal interrupts the foreground job, not the
// shell; Ctrl-Z stops it, and jobs and fg work.
func TestTTYJobControl(t *testing.T) {
	bothStarts(t, func(t *testing.T) {
		s, tm := startTTY(t, interactiveShell(t), 24, 80)
		jobControl(t, tm)
		tm.typ("exit 0\n")
		_, err := s.Wait()
		require.NoError(t, err)
	})
}

// jobControl checks, on the terminal of an interactive busybox shell,
// that Ctrl-C interrupts the foreground job, not the shell, and that
// Ctrl-Z, jobs and fg work.
func jobControl(t *testing.T, tm *term) {
	bb := testutil.Busybox(t)
	{
		tm.typ("echo o''k\n")
		tm.expect("ok")
		shell := tm.foreground()
		// The typed line is echoed with the quotes; only the command's
		// output reads "started", which the job writes once the shell has
		// made it the terminal's foreground group.
		job := bb + " sh -c 'echo start''ed; exec " + bb + " sleep 1000'\n"
		tm.typ(job)
		tm.expect("started")
		assert.NotEqual(t, shell, tm.foreground(), "the job does not hold the terminal")
		tm.typ("\x03")
		tm.typ("echo rc=$?\n")
		tm.expect("rc=130") // 128 + SIGINT: the job died of Ctrl-C
		tm.expectNoJobs()

		tm.typ(job)
		tm.expect("started")
		tm.typ("\x1a")
		tm.typ("echo rc=$?\n")
		tm.expect("rc=148") // 128 + SIGTSTP: stopped
		tm.typ("jobs\n")
		tm.expect("sleep 1000")
		assert.Equal(t, shell, tm.foreground(), "the shell did not take its terminal back")
		tm.typ("fg\n")
		// fg names the job before it gives it the terminal: a Ctrl-C
		// typed in between would interrupt fg, not the job.
		tm.expect("sleep 1000")
		tm.awaitForeground(shell)
		tm.typ("\x03")
		tm.typ("echo rc=$?\n")
		tm.expect("rc=130")
		tm.expectNoJobs()
	}
}

// ownDevpts checks that the master is of another devpts instance than
// the host's.
func (tm *term) ownDevpts() {
	tm.t.Helper()
	var host, own unix.Stat_t
	require.NoError(tm.t, unix.Stat("/dev/pts", &host))
	rc, err := tm.m.SyscallConn()
	require.NoError(tm.t, err)
	require.NoError(tm.t, rc.Control(func(fd uintptr) { require.NoError(tm.t, unix.Fstat(int(fd), &own)) }))
	assert.NotEqual(tm.t, host.Dev, own.Dev, "the master belongs to the host's devpts")
}

// exit7 types "exit 7" at the shell on the terminal, checks that wait
// (the shell's) reports that status, and that the master then reaches its
// end.
func (tm *term) exit7(wait func() (*Result, error)) {
	tm.t.Helper()
	tm.typ("exit 7\n")
	res, err := wait()
	var ee *ExitError
	require.ErrorAs(tm.t, err, &ee)
	assert.Equal(tm.t, 7, res.ExitCode)
	select {
	case <-tm.done:
	case <-time.After(ttyWait):
		tm.t.Fatal("the master did not reach its end after the shell exited")
	}
}

// foreground returns the terminal's foreground process group, a pid of
// the caller's namespace.
func (tm *term) foreground() int {
	tm.t.Helper()
	rc, err := tm.m.SyscallConn()
	require.NoError(tm.t, err)
	var pg int
	var ioErr error
	require.NoError(tm.t, rc.Control(func(fd uintptr) {
		pg, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPGRP)
	}))
	require.NoError(tm.t, ioErr)
	return pg
}

// awaitForeground waits until a process group other than pg holds the
// terminal.
func (tm *term) awaitForeground(pg int) {
	tm.t.Helper()
	deadline := time.Now().Add(ttyWait)
	for tm.foreground() == pg {
		if time.Now().After(deadline) {
			tm.t.Fatalf("process group %d still holds the terminal", pg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expectNoJobs checks that the shell has no jobs left: a Ctrl-C that
// reached the shell instead of its job also leaves $? at 130.
func (tm *term) expectNoJobs() {
	tm.t.Helper()
	from := tm.seen
	tm.typ("jobs; echo end''jobs\n")
	tm.expect("endjobs")
	assert.NotContains(tm.t, tm.out.String()[from:tm.seen], "sleep 1000", "a job is left")
}

// A full-screen program, vi, runs on the terminal: it puts the terminal
// in raw mode, draws, and takes keys.
func TestTTYFullScreen(t *testing.T) {
	bothStarts(t, func(t *testing.T) {
		bb := testutil.Busybox(t)
		s, tm := startTTY(t, interactiveShell(t), 24, 80)
		tm.typ(bb + " vi /tmp/f\n")
		tm.expect("/tmp/f") // its status line
		tm.typ("ihello from vi")
		tm.expect("hello from vi")
		// An escape followed at once by more keys could read as an escape
		// sequence: wait for vi to leave insert mode, which it shows on
		// its status line.
		tm.typ("\x1b")
		tm.expect("- /tmp/f [Modified]")
		tm.typ(":wq\r")
		tm.typ("cat /tmp/f; echo o''k\n")
		tm.expect("hello from vi")
		tm.expect("ok")
		tm.typ("exit\n")
		_, err := s.Wait()
		require.NoError(t, err)
	})
}

// Closing the master hangs the terminal up: the shell gets SIGHUP.
func TestTTYHangup(t *testing.T) {
	bothStarts(t, func(t *testing.T) {
		s, tm := startTTY(t, interactiveShell(t), 24, 80)
		tm.typ("echo o''k\n")
		tm.expect("ok")
		require.NoError(t, tm.m.Close())
		done := make(chan struct{})
		go func() { s.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(ttyWait):
			t.Fatal("the shell did not end when its terminal hung up")
		}
		res, _ := s.Wait()
		assert.Equal(t, unix.SIGHUP, res.Signal, "%+v", res)
	})
}

func TestTTYConfig(t *testing.T) {
	for _, c := range []Config{
		{Args: []string{"sh"}, TTY: &TTY{}, Stdout: io.Discard},
		{Args: []string{"sh"}, TTY: &TTY{}, Stdin: strings.NewReader("")},
		{Args: []string{"sh"}, TTY: &TTY{}, Limits: Limits{Output: 1 << 20}},
	} {
		err := c.Validate()
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%v", err)
		assert.Equal(t, "TTY", ce.Field)
	}
	// A terminal of the caller among ExtraFiles: the filter of a sandbox
	// with TTY lets it set terminals, so it may hold none but its own.
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	require.NoError(t, err)
	defer master.Close()
	withTerminal := Config{Args: []string{"sh"}, TTY: &TTY{}, ExtraFiles: []*os.File{os.Stdin, master}}
	err = withTerminal.Validate()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	// The first terminal is named: the test's stdin where it is one.
	want := "ExtraFiles[1]"
	if _, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
		want = "ExtraFiles[0]"
	}
	assert.Equal(t, want, ce.Field)
	s := New(Config{Args: []string{"true"}})
	assert.ErrorIs(t, s.Resize(1, 1), ErrNotStarted)
	assert.Nil(t, s.Terminal())
}

// A command that cannot start fails Start as without a terminal, and the
// terminal made for it is gone with the sandbox (the test main checks
// for leaked descriptors).
func TestTTYStartFails(t *testing.T) {
	bothStarts(t, func(t *testing.T) {
		testutil.RequireUserNamespaces(t)
		cfg := testConfig(Config{Args: []string{"/no/such/command"}, TTY: &TTY{Rows: 24, Cols: 80}})
		s := New(cfg)
		err := s.Start(context.Background())
		var se *SetupError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "exec", se.Stage)
		assert.Nil(t, s.Terminal())
		require.NoError(t, s.Close())
	})
}

// BenchmarkRunTTY is BenchmarkRun with a terminal: what the pty costs a
// start (open, unlock, size, peer, controlling terminal, and the master's
// way to the caller).
func BenchmarkRunTTY(b *testing.B) {
	testutil.RequireRoot(b)
	var runs []time.Duration
	for b.Loop() {
		t := time.Now()
		sb := New(Config{Args: []string{"/bin/true"}, TTY: &TTY{Rows: 24, Cols: 80}})
		if err := sb.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		if _, err := sb.Wait(); err != nil {
			b.Fatal(err)
		}
		sb.Close()
		runs = append(runs, time.Since(t))
	}
	reportPercentiles(b, runs)
}
