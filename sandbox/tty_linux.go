//go:build linux

package sandbox

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
)

// toSpec carries t into the Spec the sandbox is built from.
func (t *TTY) toSpec(spec *proto.Spec) {
	if t == nil || spec.Path == "" {
		return
	}
	spec.TTY, spec.TTYRows, spec.TTYCols = true, int(t.Rows), int(t.Cols)
}

// Terminal returns Config.TTY's master, or nil; Close closes it, Wait not.
func (s *Sandbox) Terminal() *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tty
}

// Resize sets the size of the command's terminal.
func (s *Sandbox) Resize(rows, cols uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return ErrNotStarted
	}
	if s.cfg.TTY == nil || len(s.cfg.Args) == 0 {
		return configErr("TTY", "the sandbox has no command with a terminal to resize")
	}
	if s.tty == nil {
		return ErrFinished
	}
	return resize(s.tty, rows, cols)
}

// Terminal returns Cmd.TTY's master after Start, or nil; the caller closes it.
func (c *Cmd) Terminal() *os.File {
	if c.run == nil {
		return nil
	}
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	return c.run.tty
}

// Resize sets the size of the process's terminal (Cmd.TTY).
func (c *Cmd) Resize(rows, cols uint16) error {
	if c.TTY == nil {
		return configErr("Cmd.TTY", "the process has no terminal to resize")
	}
	m := c.Terminal()
	if m == nil {
		return ErrNotStarted
	}
	return resize(m, rows, cols)
}

// resize sets the window size of the terminal whose master is m.
func resize(m *os.File, rows, cols uint16) error {
	rc, err := m.SyscallConn()
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Row: rows, Col: cols}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws)
	}); err != nil {
		return err
	}
	return ioErr
}

// masterFile makes the terminal master fd an *os.File that goes through
// the runtime's poller.
func masterFile(fd int) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, setupErr("tty", "", err)
	}
	return os.NewFile(uintptr(fd), "stockade-tty"), nil
}

// closeTTY closes the terminal's master, once. s.mu is held.
func (s *Sandbox) closeTTY() {
	if s.tty != nil {
		s.tty.Close()
		s.tty = nil
	}
}

// readPacket reads one packet from the socket c into buf, with the
// descriptors that came with it (close-on-exec), through the runtime's
// poller: c's read deadline holds.
func readPacket(c *os.File, buf []byte) (n int, fds []int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, nil, err
	}
	oob := make([]byte, unix.CmsgSpace(4*proto.MaxFiles))
	var oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if oobn > 0 {
		fds, _ = parseRights(oob[:oobn])
	}
	if err != nil {
		n = 0
	}
	return n, fds, err
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// parseRights returns the descriptors of the SCM_RIGHTS messages in oob.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		r, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		fds = append(fds, r...)
	}
	return fds, nil
}

// takeTTY takes the master of the command's terminal from the
// descriptors of the init's Started report, for a sandbox with a
// terminal; the rest stay in fds for the caller to close.
func (s *Sandbox) takeTTY(fds *[]int) error {
	if s.cfg.TTY == nil || len(s.cfg.Args) == 0 {
		return nil
	}
	if len(*fds) == 0 {
		return setupErr("tty", "", errors.New("the init sent no terminal"))
	}
	fd := (*fds)[0]
	*fds = (*fds)[1:]
	f, err := masterFile(fd)
	if err != nil {
		return err
	}
	s.tty = f
	return nil
}
