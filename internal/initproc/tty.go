//go:build linux

package initproc

import (
	"golang.org/x/sys/unix"
)

// openTTY makes the command's terminal for a Spec with TTY: a pty of the
// sandbox's own devpts instance, opened inside the new root, unlocked,
// sized, and its peer owned by the command's ids. The init keeps both
// ends only until the command runs: the peer goes to the command, the
// master to the parent with the Started report.
func (s *stage) openTTY() error {
	spec := s.spec
	master, peer, err := openPTY(spec.TTYRows, spec.TTYCols, spec.UID, spec.GID)
	if err != nil {
		return err
	}
	s.ttyMaster, s.ttyPeer = master, peer
	return nil
}

// openPTY opens a pty of the sandbox's devpts instance, unlocked, of rows
// by cols, its peer owned by uid and gid; both ends are close-on-exec.
func openPTY(rows, cols, uid, gid int) (master, peer int, err error) {
	master, err = unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, -1, step("tty", "/dev/pts/ptmx", err)
	}
	fail := func(err error) (int, int, error) {
		unix.Close(master)
		return -1, -1, step("tty", "/dev/pts/ptmx", err)
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fail(err)
	}
	ws := &unix.Winsize{Row: uint16(rows), Col: uint16(cols)}
	if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
		return fail(err)
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return fail(errno)
	}
	peer = int(r)
	if err := unix.Fchown(peer, uid, gid); err != nil {
		unix.Close(peer)
		return fail(err)
	}
	return master, peer, nil
}
