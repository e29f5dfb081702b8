//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/mount"
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

// TestAttackCopyOutPrivate is the confused deputy of CopyOut: a process
// of the sandbox links its working directory to where files lie that it
// cannot read (a host file of a read-only bind, private to host root or
// to its group, and a file root inside made private), and waits for the
// caller to copy them out through the links. The caller copies with the command user's rights, so the
// copies fail, while a file that user may read is copied.
func TestAttackCopyOutPrivate(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	for name, mode := range map[string]os.FileMode{"secret": 0o600, "groupsecret": 0o640, "public": 0o644} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(name+" of the host"), mode))
		require.NoError(t, os.Chmod(p, mode)) // whatever the umask
	}
	// groupsecret belongs to a group of the caller's, not of the sandbox.
	const callerGroup = 4242
	require.NoError(t, os.Chown(filepath.Join(dir, "groupsecret"), 0, callerGroup))
	groups, err := syscall.Getgroups()
	require.NoError(t, err)
	require.NoError(t, syscall.Setgroups(append(groups, callerGroup)))
	defer syscall.Setgroups(groups)
	host := snapshotHost(t)
	sb := New(testConfig(Config{Mounts: []Mount{{Kind: Bind, Source: dir, Target: "/data"}}}))
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	require.NoError(t, sb.Start(ctx))
	defer sb.Close()
	_, err = sb.Exec(ctx, Cmd{Args: []string{bb, "sh", "-c",
		"echo private > /tmp/rootonly && chmod 600 /tmp/rootonly && chmod 1777 /tmp"}, RunAsRoot: true})
	require.NoError(t, err)
	_, err = sb.Exec(ctx, Cmd{Args: []string{bb, "sh", "-c",
		"ln -s /data /work/d && ln -s ../tmp /work/t"}})
	require.NoError(t, err)
	// The control: the command user cannot read them itself.
	for _, f := range []string{"/data/secret", "/data/groupsecret", "/tmp/rootonly"} {
		_, err := sb.Exec(ctx, Cmd{Args: []string{bb, "cat", f}})
		assert.Error(t, err, "the sandbox reads %s itself", f)
	}

	out := filepath.Join(t.TempDir(), "out")
	for _, src := range []string{"/work/d/secret", "/work/d/groupsecret", "/work/t/rootonly", "/data/secret", "/tmp/rootonly"} {
		os.Remove(out)
		err := sb.CopyOut(src, out)
		assert.ErrorIs(t, err, fs.ErrPermission, "copy out %s", src)
		if b, err := os.ReadFile(out); err == nil {
			assert.NotContains(t, string(b), "secret", "copy out %s", src)
			assert.NotContains(t, string(b), "private", "copy out %s", src)
		}
	}
	require.NoError(t, sb.CopyOut("/work/d/public", out))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "public of the host", string(b))
	require.NoError(t, sb.Close())
	host.check(t)
}

// TestAttackBindSourceLink is the confused deputy of bind sources: one
// tenant plants links in its writable bind, to a host directory it cannot
// reach, where the caller will later bind a source for the next tenant
// (its output, say). Host root resolves bind sources with its own rights,
// so it follows only links that root owns: the next sandbox does not
// start, rather than get the host directory.
func TestAttackBindSourceLink(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	secret := t.TempDir()
	require.NoError(t, os.Chmod(secret, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(secret, "file"), []byte("host only"), 0o644))
	shared := t.TempDir()
	require.NoError(t, os.Chmod(shared, 0o777))
	host := snapshotHost(t)

	// The first tenant: its links' text names the host directory, which
	// means nothing inside its own root.
	o := run(t, Config{
		Args:   []string{bb, "sh", "-c", "ln -s " + secret + " /out/result && mkdir /out/dir && ln -s / /out/dir/up"},
		Mounts: []Mount{{Kind: Bind, Source: shared, Target: "/out", Writable: true}},
	})
	require.NoError(t, o.err, o.stderr)

	// The next tenant gets the first one's output: through the link as the
	// last component, and as an earlier one.
	for name, src := range map[string]string{
		"last":    filepath.Join(shared, "result"),
		"earlier": filepath.Join(shared, "dir", "up") + secret,
	} {
		t.Run(name, func(t *testing.T) {
			o := run(t, Config{
				Args:   []string{bb, "cat", "/in/file"},
				Mounts: []Mount{{Kind: Bind, Source: src, Target: "/in"}},
			})
			assert.NotContains(t, o.stdout, "host only", "the next tenant read the host directory")
			t.Log(o.err)
			require.ErrorIs(t, o.err, mount.ErrUntrustedLink)
			var se *SetupError
			require.ErrorAs(t, o.err, &se)
			assert.Equal(t, "bind", se.Stage)
		})
	}
	host.check(t)
}
