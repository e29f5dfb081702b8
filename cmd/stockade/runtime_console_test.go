//go:build linux

package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// consoleSocket listens at a socket, as the shim does for
// --console-socket, and returns the masters sent to it.
func consoleSocket(t *testing.T) (string, <-chan *os.File) {
	path := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	masters := make(chan *os.File, 4)
	go func() {
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
			_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			conn.Close()
			if err != nil {
				continue
			}
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, _ := unix.ParseUnixRights(&m)
				for _, fd := range fds {
					unix.SetNonblock(fd, true)
					f := os.NewFile(uintptr(fd), "master")
					t.Cleanup(func() { f.Close() })
					masters <- f
				}
			}
		}
	}()
	return path, masters
}

// readUntil reads m until what it has read holds want, for at most 10 s,
// and returns what it read.
func readUntil(t *testing.T, m *os.File, want string) string {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 4096)
	m.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(got.String(), want) {
		n, err := m.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read the terminal: %v; read %q, waiting for %q", err, got.String(), want)
		}
	}
	return got.String()
}

func setSize(t *testing.T, m *os.File, rows, cols uint16) {
	require.NoError(t, unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}))
}

// TestRuntimeConsole runs a container with process.terminal, as ctr run
// -t does: the master arrives on --console-socket at create; the process
// has a terminal of the sandbox's (not the host's), of the size the shim
// set before start, resized when the shim resizes, whose Ctrl-C is the
// process's SIGINT; and exec --tty gives an exec'd process one too.
func TestRuntimeConsole(t *testing.T) {
	h := newRTHarness(t)
	sock, masters := consoleSocket(t)
	b := h.bundle(func(s map[string]any) {
		p := s["process"].(map[string]any)
		p["terminal"] = true
		p["args"] = []string{"sh", "-c", `tty; stty size; echo ready; read line; echo got:$line; while read line; do stty size; echo sized; done`}
	})
	c := h.create("console", b, "--console-socket", sock)
	var master *os.File
	select {
	case master = <-masters:
	case <-time.After(10 * time.Second):
		t.Fatal("no master on the console socket after create")
	}
	setSize(t, master, 33, 120)
	status, _, stderr := h.run("start", "console")
	require.Equal(t, 0, status, stderr)
	out := readUntil(t, master, "ready")
	assert.Contains(t, out, "/dev/pts/0", "a terminal of the sandbox's own devpts")
	assert.Contains(t, out, "33 120", "the size the shim set before start")

	_, err := master.Write([]byte("hello\n"))
	require.NoError(t, err)
	readUntil(t, master, "got:hello")
	setSize(t, master, 40, 100)
	// The resize reaches the monitor as SIGWINCH, and the process's
	// terminal after it: ask again until it shows.
	sized := ""
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(sized, "40 100") && time.Now().Before(deadline); {
		_, err := master.Write([]byte("\n"))
		require.NoError(t, err)
		sized = readUntil(t, master, "sized")
	}
	assert.Contains(t, sized, "40 100", "the resize reached the process's terminal")

	// Ctrl-C, typed on the shim's side, is SIGINT for the process, as a
	// terminal's line discipline makes it.
	_, err = master.Write([]byte{3})
	require.NoError(t, err)
	ws := h.wait(c.pid)
	assert.True(t, ws.Signaled() && ws.Signal() == unix.SIGINT, "wait status %v", ws)
	status, _, stderr = h.run("delete", "console")
	require.Equal(t, 0, status, stderr)
	h.gone(c)

	t.Run("exec", func(t *testing.T) {
		b := h.bundle(withArgs("sleep", "1000"))
		c := h.create("console-exec", b)
		status, _, stderr := h.run("start", "console-exec")
		require.Equal(t, 0, status, stderr)
		pidFile := filepath.Join(t.TempDir(), "pid")
		status, _, stderr = h.run("exec", "--detach", "--tty", "--console-socket", sock, "--pid-file", pidFile,
			"console-exec", "sh", "-c", "tty; read line; echo got:$line; exit 4")
		require.Equal(t, 0, status, stderr)
		var master *os.File
		select {
		case master = <-masters:
		case <-time.After(10 * time.Second):
			t.Fatal("no master on the console socket after exec")
		}
		readUntil(t, master, "/dev/pts/")
		master.Write([]byte("there\n"))
		readUntil(t, master, "got:there")
		b2, err := os.ReadFile(pidFile)
		require.NoError(t, err)
		pid, err := strconv.Atoi(string(b2))
		require.NoError(t, err)
		ws := h.wait(pid)
		assert.True(t, ws.Exited() && ws.ExitStatus() == 4, "wait status %v", ws)

		status, _, stderr = h.run("exec", "--tty", "console-exec", "true")
		assert.Equal(t, 1, status)
		assert.Contains(t, stderr, "needs --console-socket")
		status, _, stderr = h.run("delete", "--force", "console-exec")
		require.Equal(t, 0, status, stderr)
		h.wait(c.pid)
		h.gone(c)
	})

	t.Run("refused", func(t *testing.T) {
		status, _, stderr := h.run("create", "--bundle", b, "no-socket")
		assert.Equal(t, 1, status)
		assert.Contains(t, stderr, "process.terminal needs --console-socket")
		plain := h.bundle(withArgs("true"))
		status, _, stderr = h.run("create", "--bundle", plain, "--console-socket", sock, "no-terminal")
		assert.Equal(t, 1, status)
		assert.Contains(t, stderr, "the process has no terminal")
	})
}
