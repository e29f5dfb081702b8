//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/mount"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestIsInit(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{}, false},
		{[]string{Arg0}, true},
		{[]string{Arg0, "extra"}, true},
		{[]string{"/usr/bin/" + Arg0}, false},
		{[]string{"initproc.test", Arg0}, false},
	} {
		os.Args = tc.args
		assert.Equal(t, tc.want, IsInit(), "os.Args %q", tc.args)
	}
}

func TestStep(t *testing.T) {
	assert.NoError(t, step("hostname", "h", nil), "a step that did not fail")
	err := step("chdir", "/work", unix.ENOENT)
	assert.EqualError(t, err, "chdir /work: no such file or directory")
	assert.ErrorIs(t, err, unix.ENOENT)
	var se *stepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "chdir", se.stage)
	assert.Equal(t, "/work", se.path)
}

// TestFailure checks the report the init sends the parent for each kind
// of setup error: the stage and path come from a step or a mount, the
// errno from anywhere in the chain.
func TestFailure(t *testing.T) {
	for _, tc := range []struct {
		name              string
		err               error
		stage, path, want string
		errno             unix.Errno
	}{
		{"step with errno", step("rlimit", "", unix.EPERM), "rlimit", "", "rlimit : operation not permitted", unix.EPERM},
		{"mount", &mount.Error{Op: "bind", Path: "/data", Err: unix.ENOENT}, "bind", "/data", "", unix.ENOENT},
		{"wrapped step", fmt.Errorf("setup: %w", step("tty", "/dev/pts/ptmx", unix.EIO)), "tty", "/dev/pts/ptmx", "", unix.EIO},
		{"step without errno", step("handshake", "", errors.New("expected the go-ahead")), "handshake", "", "handshake : expected the go-ahead", 0},
		{"plain error", errors.New("odd"), "", "", "odd", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := failure(tc.err)
			assert.Equal(t, proto.Failed, r.Kind)
			assert.Equal(t, tc.stage, r.Stage)
			assert.Equal(t, tc.path, r.Path)
			assert.Equal(t, int(tc.errno), r.Errno)
			assert.Equal(t, tc.err.Error(), r.Message)
			if tc.want != "" {
				assert.Equal(t, tc.want, r.Message)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), mode))
		return p
	}
	exe := write("tool", 0o755)
	write("data", 0o644)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	other := t.TempDir()
	shadow := filepath.Join(other, "tool")
	require.NoError(t, os.WriteFile(shadow, nil, 0o755))

	for _, tc := range []struct {
		name, file string
		env        []string
		want       string
		err        error
	}{
		{"slash as it is", "./missing/x", nil, "./missing/x", nil},
		{"absolute as it is", "/no/such", nil, "/no/such", nil},
		{"found", "tool", []string{"PATH=" + dir}, exe, nil},
		{"first match wins", "tool", []string{"PATH=" + other + ":" + dir}, shadow, nil},
		{"last PATH counts", "tool", []string{"PATH=/nonexistent", "PATH=" + dir}, exe, nil},
		{"missing", "nothing", []string{"PATH=" + dir}, "", unix.ENOENT},
		{"directory skipped", "sub", []string{"PATH=" + dir}, "", unix.ENOENT},
		{"empty PATH element", "nothing", []string{"PATH=:" + dir}, "", unix.ENOENT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lookPath(tc.file, tc.env)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("not executable", func(t *testing.T) {
		_, err := lookPath("data", []string{"PATH=" + dir})
		assert.ErrorIs(t, err, unix.EACCES, "a file without any execute bit is found but not usable")
	})
	t.Run("default PATH", func(t *testing.T) {
		got, err := lookPath("sh", []string{"HOME=/"})
		require.NoError(t, err, "sh is on the default PATH")
		assert.Contains(t, []string{"/usr/local/sbin/sh", "/usr/local/bin/sh", "/usr/sbin/sh", "/usr/bin/sh", "/sbin/sh", "/bin/sh"}, got)
	})
}

func TestAmbientCaps(t *testing.T) {
	s := &stage{spec: &proto.Spec{Caps: []int{unix.CAP_NET_BIND_SERVICE, unix.CAP_CHOWN}}}
	assert.Equal(t, []uintptr{unix.CAP_NET_BIND_SERVICE, unix.CAP_CHOWN}, s.ambientCaps(0),
		"root holds its kept capabilities as ambient ones too, as an OCI spec's root does")
	assert.Equal(t, []uintptr{unix.CAP_NET_BIND_SERVICE, unix.CAP_CHOWN}, s.ambientCaps(1000))
	s.spec.Caps = nil
	assert.Nil(t, s.ambientCaps(1000), "nothing kept, nothing ambient")
}

// onOwnThread runs f on a locked thread that is thrown away afterwards,
// with a working directory and root of its own (unshare CLONE_FS), so
// that what f changes never reaches the rest of the test process.
func onOwnThread(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			t.Errorf("unshare CLONE_FS: %v", err)
			return
		}
		f()
	}()
	<-done
}

func TestEnterDir(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	require.NoError(t, os.Symlink("sub", filepath.Join(dir, "link")))
	onOwnThread(t, func() {
		require.NoError(t, enterDir(sub))
		wd, err := os.Getwd()
		require.NoError(t, err)
		assert.Equal(t, sub, wd)

		assert.NoError(t, enterDir(filepath.Join(dir, "link")), "an ordinary link inside the root is followed")
		wd, _ = os.Getwd()
		assert.Equal(t, sub, wd)

		assert.ErrorIs(t, enterDir(filepath.Join(dir, "missing")), unix.ENOENT)
		assert.ErrorIs(t, enterDir(file), unix.ENOTDIR)

		// A magic link is refused, even to a directory.
		fd, err := unix.Open(sub, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fd)
		assert.ErrorIs(t, enterDir("/proc/self/fd/"+strconv.Itoa(fd)), unix.ELOOP)
	})
}

func TestOpenTTY(t *testing.T) {
	// openTTY opens the sandbox's ptmx by its path in the sandbox's devpts;
	// here it is the host's, whose ptmx is usually root's alone
	// (ptmxmode=000: ordinary users open /dev/ptmx).
	f, err := os.OpenFile("/dev/pts/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	switch {
	case errors.Is(err, os.ErrPermission):
		testutil.RequireRoot(t)
	case err != nil:
		testutil.RequireFeature(t, "devpts", err, "mount devpts on /dev/pts")
	default:
		f.Close()
	}
	s := &stage{spec: &proto.Spec{TTY: true, TTYRows: 33, TTYCols: 101, UID: os.Getuid(), GID: os.Getgid()}, ttyMaster: -1, ttyPeer: -1}
	require.NoError(t, s.openTTY())
	defer unix.Close(s.ttyMaster)
	defer unix.Close(s.ttyPeer)
	ws, err := unix.IoctlGetWinsize(s.ttyPeer, unix.TIOCGWINSZ)
	require.NoError(t, err)
	assert.Equal(t, uint16(33), ws.Row)
	assert.Equal(t, uint16(101), ws.Col)
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(s.ttyPeer, &st))
	assert.Equal(t, uint32(os.Getuid()), st.Uid, "the peer belongs to the command's uid")
	for _, fd := range []int{s.ttyMaster, s.ttyPeer} {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		require.NoError(t, err)
		assert.NotZero(t, flags&unix.FD_CLOEXEC, "no end leaks into a process the init starts")
	}
	// What the command writes reaches the master.
	_, err = unix.Write(s.ttyPeer, []byte("x"))
	require.NoError(t, err)
	buf := make([]byte, 8)
	n, err := unix.Read(s.ttyMaster, buf)
	require.NoError(t, err)
	assert.Equal(t, "x", string(buf[:n]))
}
