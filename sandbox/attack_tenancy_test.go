package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Attacks of one tenant on the others: on the caller's terminal, on what
// the host shows of itself, and on the rights of the caller that copies
// files in and out.

// TestAttackCallerTerminal: the command's standard input is a terminal of
// the caller's, and it tries every ioctl that changes a terminal for good
// (line discipline N_NULL, termios, window size, controlling session,
// exclusive mode, flow). Afterwards the terminal is as it was, and
// carries data both ways.
func TestAttackCallerTerminal(t *testing.T) {
	master, slave := openPty(t)
	mfd, sfd := int(master.Fd()), int(slave.Fd()) // Fd makes them blocking; once only
	before := terminalState(t, mfd, sfd)
	host := snapshotHost(t)
	cfg := attack(t, "terminal")
	cfg.Stdin = slave
	mustAttack(t, cfg, map[string]string{
		"tcgets": "ok", "tiocgwinsz": "ok",
		"tcsets": "EPERM", "tcsetsw": "EPERM", "tcsetsf": "EPERM",
		"tcsets2": "EPERM", "tcsetsw2": "EPERM", "tcsetsf2": "EPERM", "tcseta": "EPERM",
		"tiocssoftcar": "EPERM", "tiocswinsz": "EPERM", "tiocsctty": "EPERM", "tiocspgrp": "EPERM",
		"tiocexcl": "EPERM", "tioccons": "EPERM", "tiocsetd": "EPERM", "tiocsetd-high-bits": "EPERM",
		"tcxonc": "EPERM", "tiocvhangup": "EPERM",
	})
	assert.Equal(t, before, terminalState(t, mfd, sfd), "the caller's terminal changed")

	// Output written on the terminal reaches the master: a terminal in
	// N_NULL would discard it, one stopped by TCOOFF would hold it.
	go unix.Write(sfd, []byte("ping\n"))
	require.NoError(t, unix.SetNonblock(mfd, true))
	var got []byte
	deadline := time.Now().Add(testDeadline)
	for len(got) < 4 && time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(mfd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, int(pollEvery/time.Millisecond)); n == 0 {
			continue
		}
		buf := make([]byte, 64)
		if n, err := unix.Read(mfd, buf); err == nil {
			got = append(got, buf[:n]...)
		}
	}
	assert.Contains(t, string(got), "ping", "output on the terminal did not reach its master")
	host.check(t)
}

// terminalState describes what the attack tries to change of the
// terminal whose master is mfd and slave sfd.
func terminalState(t *testing.T, mfd, sfd int) string {
	t.Helper()
	// The termios and window size of the slave, read through the master.
	tio, err := unix.IoctlGetTermios(mfd, unix.TCGETS)
	require.NoError(t, err)
	ws, err := unix.IoctlGetWinsize(mfd, unix.TIOCGWINSZ)
	require.NoError(t, err)
	ldisc, err := unix.IoctlGetInt(sfd, unix.TIOCGETD)
	require.NoError(t, err)
	excl, err := unix.IoctlGetInt(sfd, unix.TIOCGEXCL)
	require.NoError(t, err)
	// The session the terminal controls: none (ENOTTY) unless a process
	// made it its controlling terminal.
	sid, err := unix.IoctlGetInt(sfd, unix.TIOCGSID)
	return fmt.Sprintf("termios %+v winsize %+v ldisc %d exclusive %d session %d %v", *tio, *ws, ldisc, excl, sid, err)
}

// TestAttackHostIdentity: /proc shows nothing that names the host's boot
// or its kernel's build: the kernel command line, its configuration and
// the boot id read empty.
func TestAttackHostIdentity(t *testing.T) {
	files := []string{"/proc/cmdline", "/proc/config.gz", "/proc/sys/kernel/random/boot_id"}
	host := snapshotHost(t)
	st := mustAttack(t, attack(t, append([]string{"read"}, files...)...), nil)
	for _, f := range files {
		want := [2]string{"ok", "0"}
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			want = [2]string{"ENOENT", "0"} // a kernel built without it
		}
		assert.Equal(t, want, st["read-"+f], "%s in the sandbox", f)
	}
	host.check(t)
}
