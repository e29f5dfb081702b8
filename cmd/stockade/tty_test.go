//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
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

// ptyWait bounds every wait for the terminal: a bound for a hung test,
// not a timing the test asserts.
const ptyWait = 20 * time.Second

// callerPty is the terminal a test gives stockade, as a user's terminal
// emulator would: the test holds the master, stockade gets the peer as
// its standard streams and controlling terminal.
type callerPty struct {
	t      *testing.T
	master *os.File
	peer   *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	seen   int
}

// newCallerPty opens a pty pair of the host's devpts, rows by cols.
func newCallerPty(t *testing.T, rows, cols uint16) *callerPty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	rc, err := m.SyscallConn()
	require.NoError(t, err)
	var peerFD int
	var ioErr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil {
			return
		}
		if ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); ioErr != nil {
			return
		}
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
		if errno != 0 {
			ioErr = errno
		}
		peerFD = int(r)
	}))
	require.NoError(t, ioErr)
	p := &callerPty{t: t, master: m, peer: os.NewFile(uintptr(peerFD), "peer")}
	t.Cleanup(func() { p.peer.Close() })
	return p
}

// start starts cmd on the pty's peer, which becomes its controlling
// terminal, and copies what it writes.
func (p *callerPty) start(cmd *exec.Cmd) {
	p.t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.peer, p.peer, p.peer
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(p.t, cmd.Start())
	p.t.Cleanup(func() {
		// A test that failed half-way leaves no stockade behind.
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := p.master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
}

func (p *callerPty) typ(s string) {
	p.t.Helper()
	_, err := p.master.Write([]byte(s))
	require.NoError(p.t, err)
}

func (p *callerPty) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// expect waits until the output after the last match holds want.
func (p *callerPty) expect(want string) {
	p.t.Helper()
	if !p.await(want, ptyWait) {
		p.t.Fatalf("the terminal never showed %q; it showed:\n%q", want, p.output()[p.seen:])
	}
}

// await is expect that reports whether want showed within d.
func (p *callerPty) await(want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		s := p.output()
		if i := strings.Index(s[p.seen:], want); i >= 0 {
			p.seen += i + len(want)
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// termios is the peer's terminal settings: the caller's terminal's.
func (p *callerPty) termios() unix.Termios {
	p.t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.peer.Fd()), unix.TCGETS)
	require.NoError(p.t, err)
	return *tio
}

// waitExit waits, bounded, for cmd and returns its exit status.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(ptyWait):
		cmd.Process.Kill()
		<-done
		t.Fatal("stockade did not exit")
	}
	return cmd.ProcessState.ExitCode()
}

// stockadeTTY returns the command "stockade run -t ARGS" on the given
// start path ("" for the default, "init").
func stockadeTTY(bin, start string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{"run", "-t"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if start != "" {
		cmd.Env = append(cmd.Env, "STOCKADE_START="+start)
	}
	return cmd
}

// "stockade run -t -- /bin/sh" behaves like a shell in a terminal: the
// sandbox's terminal has stockade's size and follows its changes, Ctrl-C
// interrupts the shell's foreground job and not stockade, the shell's
// status is stockade's, and stockade's terminal is in raw mode while the
// sandbox runs and as it was afterwards, whatever the command did to its
// own terminal.
func TestRunTTYShell(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bin := buildStockade(t)
	for _, start := range []string{"", "init"} {
		t.Run("start="+start, func(t *testing.T) {
			p := newCallerPty(t, 30, 90)
			before := p.termios()
			cmd := stockadeTTY(bin, start, "--env", "PS1=$ ", "--", "/bin/sh")
			p.start(cmd)

			p.typ("tty; stty size; echo o''k\n")
			p.expect("/dev/pts/0")
			p.expect("30 90")
			p.expect("ok")
			during := p.termios()
			assert.Zero(t, during.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG), "stockade's terminal is not raw")

			// A resize of stockade's terminal reaches the sandbox's, by
			// SIGWINCH to stockade, asynchronously: ask until it shows.
			require.NoError(t, unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 120}))
			resized := false
			for i := 0; i < 20 && !resized; i++ {
				p.typ("stty size\n")
				resized = p.await("50 120", time.Second)
			}
			assert.True(t, resized, "the resize never reached the sandbox: %q", p.output())

			// The command's changes to its terminal stay in the sandbox's.
			p.typ("stty -isig -icanon -echo -icrnl cols 33; stty size; stty sane; echo o''k\n")
			p.expect("50 33")
			p.expect("ok")
			assert.Equal(t, during, p.termios(), "the command changed stockade's terminal")
			ws, err := unix.IoctlGetWinsize(int(p.peer.Fd()), unix.TIOCGWINSZ)
			require.NoError(t, err)
			assert.Equal(t, uint16(120), ws.Col, "the command resized stockade's terminal")

			p.typ("sh -c 'echo start''ed; exec sleep 1000'\n")
			p.expect("started")
			p.typ("\x03")
			p.typ("echo rc=$?\n")
			p.expect("rc=130")

			p.typ("exit 3\n")
			assert.Equal(t, 3, waitExit(t, cmd), "%q", p.output())
			assert.Equal(t, before, p.termios(), "stockade's terminal was not restored")
		})
	}
}

// The terminal is restored when stockade ends for a signal passed on to
// the command, and is never touched when the sandbox does not start.
func TestRunTTYRestore(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bin := buildStockade(t)
	t.Run("signal", func(t *testing.T) {
		p := newCallerPty(t, 24, 80)
		before := p.termios()
		cmd := stockadeTTY(bin, "", "--", "/bin/sh", "-c", "echo start''ed; exec sleep 1000")
		p.start(cmd)
		p.expect("started")
		require.NoError(t, cmd.Process.Signal(unix.SIGTERM))
		assert.Equal(t, 128+int(unix.SIGTERM), waitExit(t, cmd), "%q", p.output())
		assert.Equal(t, before, p.termios())
	})
	t.Run("not found", func(t *testing.T) {
		p := newCallerPty(t, 24, 80)
		before := p.termios()
		cmd := stockadeTTY(bin, "", "--", "/no/such/command")
		p.start(cmd)
		assert.Equal(t, exitNotFound, waitExit(t, cmd), "%q", p.output())
		assert.Equal(t, before, p.termios())
	})
	t.Run("not a terminal", func(t *testing.T) {
		cmd := stockadeTTY(bin, "", "--", "/bin/true")
		cmd.Stdin = strings.NewReader("")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		assert.Error(t, err)
		assert.Equal(t, exitUsage, cmd.ProcessState.ExitCode())
		assert.Contains(t, stderr.String(), "--tty")
	})
}
