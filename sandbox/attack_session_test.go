//go:build linux

package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/landlock"
	"github.com/stockade/stockade/internal/testutil"
)

// Attacks on a long-lived sandbox: what its processes plant for the
// caller's next Exec or copy, and the defences of the processes that Exec
// starts.

// TestAttackWorkingDirectoryLink: a process of a long-lived sandbox makes
// its next Exec's working directory a magic link to a descriptor of the
// init; the init resolves it inside the root and refuses.
func TestAttackWorkingDirectoryLink(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	host := snapshotHost(t)
	cfg := testConfig(Config{RunAsRoot: true})
	cfg.Mounts = attack(t).Mounts
	sb := New(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, sb.Start(ctx))
	defer sb.Close()
	bb := testutil.Busybox(t)
	_, err := sb.Exec(ctx, Cmd{Args: []string{"/attack", "write", "/work/x"}})
	require.NoError(t, err)
	// A link to the init's control socket, and one up and out of the root.
	_, err = sb.Exec(ctx, Cmd{Args: []string{bb, "sh", "-c", "ln -s /proc/self/fd/3 /work/magic && ln -s ../../../../.. /work/up"}, RunAsRoot: true})
	if err != nil {
		// busybox may not be reachable at its host path in every root.
		t.Skipf("cannot make the links: %v", err)
	}
	_, err = sb.Exec(ctx, Cmd{Args: []string{"/attack", "fds"}, Dir: "/work/magic"})
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, unix.ELOOP, se.Errno, "a magic link as the working directory")
	var out strings.Builder
	_, err = sb.Exec(ctx, Cmd{Args: []string{"/attack", "fds"}, Dir: "/work/up", Stdout: &out})
	require.NoError(t, err)
	assert.Contains(t, out.String(), "step cwd ok /\n", "a link up and out lands at the sandbox's root")
	require.NoError(t, sb.Close())
	host.check(t)
}

// TestAttackThroughExec: processes that Exec starts in a long-lived
// sandbox are forked from the same locked thread of the init as its
// command, so they run under the same defences.
func TestAttackThroughExec(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	host := snapshotHost(t)
	cfg := testConfig(Config{RunAsRoot: true, Mounts: attack(t).Mounts})
	sb := New(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, sb.Start(ctx))
	defer sb.Close()
	var extra []*os.File
	exec := func(args ...string) steps {
		var out strings.Builder
		_, err := sb.Exec(ctx, Cmd{Args: append([]string{attackTarget}, args...), RunAsRoot: true, Stdout: &out, ExtraFiles: extra})
		require.NoError(t, err)
		t.Logf("exec %q:\n%s", args, out.String())
		return parseSteps(out.String())
	}
	st := exec("caps")
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		assert.Equal(t, "0000000000000000", st["status-"+set][1], set)
	}
	assert.Equal(t, "1", st["status-NoNewPrivs"][1])
	assert.Equal(t, "2", st["status-Seccomp"][1])
	exec("userns").expect(t, map[string]string{"unshare-user": "EPERM", "clone3-newuser": "ENOSYS"})
	exec("ptrace").expect(t, map[string]string{"attach-init": "EPERM", "attach-sibling": "EPERM"})
	exec("sidechannel").expect(t, map[string]string{"add_key": "EPERM", "io_uring_setup": "EPERM"})
	if landlock.ABI() >= 2 {
		dir := t.TempDir()
		require.NoError(t, os.Chmod(dir, 0o755)) // Landlock refuses, not the mode
		require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("host only"), 0o644))
		d, err := os.Open(dir)
		require.NoError(t, err)
		defer d.Close()
		extra = []*os.File{d}
		exec("leakdir", "3", "secret").expect(t, map[string]string{"openat": "EACCES", "read-relative": "EACCES"})
	}
	require.NoError(t, sb.Close())
	host.check(t)
}

// TestAttackCopyThroughPlantedFiles: a process in a long-lived sandbox
// plants links and a FIFO where the caller will copy files in and out. The
// copies stay inside the sandbox's root, a magic link is refused, and a
// FIFO makes the copy fail at once rather than hold the caller.
func TestAttackCopyThroughPlantedFiles(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	host := snapshotHost(t)
	sb := New(testConfig(Config{}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, sb.Start(ctx))
	defer sb.Close()
	_, err := sb.Exec(ctx, Cmd{Args: []string{bb, "sh", "-c",
		"ln -s /etc /work/etc && ln -s /proc/1/root /work/init-root && ln -s ../../../../../../tmp /work/up && mkfifo /work/fifo"}})
	require.NoError(t, err)

	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	require.NoError(t, sb.CopyOut("/work/etc/passwd", out))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(b), "sandbox:x:1000:1000:", "the sandbox's own /etc/passwd, not the host's")

	assert.Error(t, sb.CopyOut("/work/init-root/etc/passwd", out), "a magic link to the init's root")

	in := filepath.Join(dir, "in")
	require.NoError(t, os.WriteFile(in, []byte("data"), 0o644))
	name := "stockade-copy-" + strconv.Itoa(os.Getpid())
	require.NoError(t, sb.CopyIn(in, "/work/up/"+name))
	_, err = os.Stat("/tmp/" + name)
	assert.ErrorIs(t, err, os.ErrNotExist, "the copy landed in the host's /tmp")
	var got strings.Builder
	_, err = sb.Exec(ctx, Cmd{Args: []string{bb, "cat", "/tmp/" + name}, Stdout: &got})
	require.NoError(t, err)
	assert.Equal(t, "data", got.String(), "the copy lands in the sandbox's /tmp")

	for _, copy := range []func() error{
		func() error { return sb.CopyOut("/work/fifo", out) },
		func() error { return sb.CopyIn(in, "/work/fifo") },
	} {
		done := make(chan error, 1)
		go func() { done <- copy() }()
		select {
		case err := <-done:
			assert.Error(t, err, "a copy through a FIFO")
		case <-time.After(testDeadline):
			t.Fatal("a FIFO in the sandbox holds the caller's copy")
		}
	}
	require.NoError(t, sb.Close())
	host.check(t)
}
