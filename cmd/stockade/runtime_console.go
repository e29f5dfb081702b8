//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/stockade/stockade/sandbox"
)

// A process of a container that asks for a terminal (process.terminal)
// gets two, joined by the monitor:
//
//   - the console: a pseudo-terminal of the host's, made by create (or
//     exec), whose master goes to --console-socket as runc sends it (one
//     message, the name, with the descriptor) and whose other end, in raw
//     mode, is the monitor's;
//   - the process's own terminal, a terminal of the sandbox's (Cmd.TTY),
//     made as the process starts, whose master the monitor holds.
//
// The monitor copies what is typed from the console to the process's
// terminal and what the process writes back, so the sandbox never holds a
// terminal of the host's (whose requests, TIOCSTI and the like, reach
// beyond it), and the line discipline that turns Ctrl-C into SIGINT is the
// sandbox's own. The console is the controlling terminal of the process
// the shim waits for (the monitor, or the copy exec --detach leaves), a
// session leader: a resize of the master reaches it as SIGWINCH, which it
// carries to the process's terminal; the master's close reaches it as
// SIGHUP, which it passes on as a hang-up would.

// openConsole makes the console of a process, sends its master to the
// socket at path, and returns the other end in raw mode.
func openConsole(path string) (*os.File, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	defer master.Close()
	mfd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("console: unlock: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return nil, fmt.Errorf("console: open the terminal: %w", errno)
	}
	console := os.NewFile(sfd, "console")
	if _, err := term.MakeRaw(int(sfd)); err != nil {
		console.Close()
		return nil, fmt.Errorf("console: raw mode: %w", err)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		console.Close()
		return nil, fmt.Errorf("--console-socket: %w", err)
	}
	defer conn.Close()
	if _, _, err := conn.WriteMsgUnix([]byte("/dev/ptmx"), unix.UnixRights(mfd), nil); err != nil {
		console.Close()
		return nil, fmt.Errorf("--console-socket: send the terminal: %w", err)
	}
	return console, nil
}

// consoleTTY is the terminal a process whose console is c starts with: of
// the size the shim gave c, if it did, else of the spec's size.
func consoleTTY(c *os.File, spec *sandbox.TTY) *sandbox.TTY {
	t := &sandbox.TTY{}
	if spec != nil {
		*t = *spec
	}
	if ws, err := unix.IoctlGetWinsize(int(c.Fd()), unix.TIOCGWINSZ); err == nil && ws.Row != 0 && ws.Col != 0 {
		t.Rows, t.Cols = ws.Row, ws.Col
	}
	return t
}

// takeConsole makes c the controlling terminal of this process, a session
// leader, and calls resize with c's size each time the shim resizes it,
// until stop is called.
func takeConsole(c *os.File, resize func(rows, cols uint16)) (stop func(), err error) {
	if err := unix.IoctlSetInt(int(c.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return nil, fmt.Errorf("console: make it the controlling terminal: %w", err)
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				if ws, err := unix.IoctlGetWinsize(int(c.Fd()), unix.TIOCGWINSZ); err == nil {
					resize(ws.Row, ws.Col)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(winch); close(done) }, nil
}

// relay copies between console and master, the process's terminal in the
// sandbox; the channel it returns is closed once the process's output has
// all been copied (the read of master ends with EIO when the process and
// its children are gone).
func relay(console, master *os.File) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(console, master)
	}()
	// Not waited for: the keys go to the process's terminal until it is
	// closed.
	go io.Copy(master, console)
	return done
}

// drained waits for the output of a relay, bounded as "stockade run -t"
// bounds it.
func drained(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(ttyOutputWait):
	}
}
