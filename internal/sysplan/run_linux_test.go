//go:build linux && (amd64 || arm64)

package sysplan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// exitStatus waits for the child behind pidfd and returns its wait status.
func exitStatus(t *testing.T, pidfd int) unix.WaitStatus {
	t.Helper()
	defer unix.Close(pidfd)
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("waitid: %v", err)
		}
		break
	}
	// si_code and si_status follow the pid and uid in the union.
	code := info.Code
	status := int(*(*int32)(unsafePointerAt(&info, 24)))
	switch code {
	case 1: // CLD_EXITED
		return unix.WaitStatus(status << 8)
	default:
		return unix.WaitStatus(status)
	}
}

// run builds, starts and waits for a program without new namespaces.
func run(t *testing.T, build func(b *Builder)) (error, unix.WaitStatus) {
	t.Helper()
	b := NewBuilder()
	build(b)
	p, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.NewRun()
	if err != nil {
		t.Fatal(err)
	}
	_, pidfd, err := r.Start(CloneArgs{})
	if err != nil {
		t.Fatal(err)
	}
	werr := r.Wait(context.Background())
	r.Release()
	return werr, exitStatus(t, pidfd)
}

func pipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	return pr, pw
}

// execTrue adds the usual last step.
func execTrue(b *Builder) {
	b.Syscall(b.Stage("exec", "/bin/true"), unix.SYS_EXECVE,
		Ptr(b.String("/bin/true")), Ptr(b.Strings([]string{"true"})), Ptr(b.Strings(nil)))
}

func TestWriteThenExec(t *testing.T) {
	pr, pw := pipe(t)
	err, ws := run(t, func(b *Builder) {
		msg := b.String("hello")
		b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Imm(pw.Fd()), Ptr(msg), Imm(5)).Expect(5)
		execTrue(b)
	})
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("status %v, want exit 0", ws)
	}
	pw.Close()
	got, _ := io.ReadAll(pr)
	if string(got) != "hello" {
		t.Fatalf("pipe holds %q, want hello", got)
	}
}

func TestFailingStep(t *testing.T) {
	err, ws := run(t, func(b *Builder) {
		b.Syscall(b.Stage("open", "/nonexistent"), unix.SYS_OPENAT,
			Imm(unix.AT_FDCWD), Ptr(b.String("/nonexistent")), Imm(unix.O_RDONLY))
		execTrue(b)
	})
	var se *StepError
	if !errors.As(err, &se) || se.Op != "open" || se.Path != "/nonexistent" || se.Errno != unix.ENOENT {
		t.Fatalf("Wait: %v, want open /nonexistent: ENOENT", err)
	}
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("%v does not match ENOENT", err)
	}
	if ws.ExitStatus() != 127 {
		t.Fatalf("status %v, want exit 127", ws)
	}
}

func TestJumpsSaveLoadExpect(t *testing.T) {
	pr, pw := pipe(t)
	sr, sw := pipe(t)
	sw.Write([]byte{1})
	err, _ := run(t, func(b *Builder) {
		fd := b.Cell()
		skip := b.NewLabel()
		after := b.NewLabel()
		// Fails with ENOENT and jumps over the write of "no".
		b.Syscall(b.Stage("open", "x"), unix.SYS_OPENAT, Imm(unix.AT_FDCWD), Ptr(b.String("/nonexistent")), Imm(0)).
			OnErr(uint64(unix.EACCES), after).OnErr(uint64(unix.ENOENT), skip)
		b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Imm(pw.Fd()), Ptr(b.String("no")), Imm(2))
		b.Place(skip)
		// A saved descriptor, loaded by the next step.
		b.Syscall(b.Stage("dup", ""), unix.SYS_FCNTL, Imm(pw.Fd()), Imm(unix.F_DUPFD_CLOEXEC), Imm(100)).Save(fd)
		b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Load(fd), Ptr(b.String("yes")), Imm(3)).Expect(3)
		b.Jump(after)
		b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Imm(pw.Fd()), Ptr(b.String("never")), Imm(5))
		b.Place(after)
		b.Syscall(b.Stage("sync", ""), unix.SYS_READ, Imm(sr.Fd()), Ptr(b.Cell()), Imm(1)).Expect(1)
		execTrue(b)
	})
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	pw.Close()
	got, _ := io.ReadAll(pr)
	if string(got) != "yes" {
		t.Fatalf("pipe holds %q, want yes", got)
	}

	// The same read with nothing to read: end of file is not the one byte
	// it expects.
	sw.Close()
	err, _ = run(t, func(b *Builder) {
		b.Syscall(b.Stage("sync", ""), unix.SYS_READ, Imm(sr.Fd()), Ptr(b.Cell()), Imm(1)).Expect(1)
		execTrue(b)
	})
	if !errors.Is(err, unix.EPROTO) {
		t.Fatalf("Wait: %v, want EPROTO", err)
	}
}

func TestRanOut(t *testing.T) {
	err, _ := run(t, func(b *Builder) {
		b.Syscall(b.Stage("getpid", ""), unix.SYS_GETPID)
	})
	if !errors.Is(err, unix.ENOEXEC) {
		t.Fatalf("Wait: %v, want ENOEXEC", err)
	}
}

// TestNamespaces starts a child in new namespaces, writes its id maps from
// the parent while the child waits, and releases it.
func TestNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	out, outW := pipe(t)
	relR, relW := pipe(t)
	b := NewBuilder()
	b.Syscall(b.Stage("close", ""), unix.SYS_CLOSE, Imm(relW.Fd()))
	b.Syscall(b.Stage("release", ""), unix.SYS_READ, Imm(relR.Fd()), Ptr(b.Cell()), Imm(1)).Expect(1)
	b.Syscall(b.Stage("setresgid", ""), unix.SYS_SETRESGID, Imm(0), Imm(0), Imm(0))
	b.Syscall(b.Stage("setresuid", ""), unix.SYS_SETRESUID, Imm(0), Imm(0), Imm(0))
	b.Syscall(b.Stage("dup", ""), unix.SYS_DUP3, Imm(outW.Fd()), Imm(1), Imm(0))
	b.Syscall(b.Stage("exec", ""), unix.SYS_EXECVE, Ptr(b.String("/bin/sh")),
		Ptr(b.Strings([]string{"sh", "-c", "id -u; echo $$; cat /proc/self/uid_map"})), Ptr(b.Strings(nil)))
	p, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.NewRun()
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	pid, pidfd, err := r.Start(CloneArgs{Flags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC})
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, f), []byte("0 200000 65536\n"), 0); err != nil {
			t.Fatal(err)
		}
	}
	relW.Write([]byte{1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	r.Release()
	if ws := exitStatus(t, pidfd); ws.ExitStatus() != 0 {
		t.Fatalf("status %v", ws)
	}
	outW.Close()
	got, _ := io.ReadAll(out)
	fields := strings.Fields(string(got))
	if len(fields) != 5 || fields[0] != "0" || fields[1] != "1" || fields[3] != "200000" {
		t.Fatalf("the child says %q, want uid 0, pid 1, mapped onto 200000", got)
	}
}

// TestOwnerUntouched checks that a failing child does not disturb the
// caller: the caller's memory goes on working and its dumpable flag holds.
func TestContextEnds(t *testing.T) {
	relR, relW := pipe(t)
	b := NewBuilder()
	b.Syscall(b.Stage("close", ""), unix.SYS_CLOSE, Imm(relW.Fd()))
	b.Syscall(b.Stage("release", ""), unix.SYS_READ, Imm(relR.Fd()), Ptr(b.Cell()), Imm(1)).Expect(1)
	execTrue(b)
	p, _ := b.Build()
	r, _ := p.NewRun()
	_, pidfd, err := r.Start(CloneArgs{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v, want the context's error", err)
	}
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil || pidfd < 0 {
		t.Fatalf("pidfd %d: kill: %v", pidfd, err)
	}
	ws := exitStatus(t, pidfd)
	r.Release()
	if !ws.Signaled() || ws.Signal() != unix.SIGKILL {
		t.Fatalf("status %v, want killed", ws)
	}
}

// TestCloneInProgram clones inside a program: the clone's child goes on
// with the next step, the parent at the label ExpectElse names.
func TestCloneInProgram(t *testing.T) {
	pr, pw := pipe(t)
	err, ws := run(t, func(b *Builder) {
		parent := b.NewLabel()
		grandchild := b.Cell()
		b.Syscall(b.Stage("clone", ""), unix.SYS_CLONE, Imm(unix.CLONE_VM|unix.CLONE_VFORK|int(unix.SIGCHLD)), Imm(0)).
			Save(grandchild).ExpectElse(0, parent)
		b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Imm(pw.Fd()), Ptr(b.String("child ")), Imm(6)).Expect(6)
		execTrue(b)
		b.Place(parent)
		// Once the clone's child has exec'd, its parent goes on here; it
		// reaps it and ends with its own exec.
		b.Syscall(b.Stage("wait", ""), unix.SYS_WAIT4, Load(grandchild), Imm(0), Imm(0), Imm(0))
		b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Imm(pw.Fd()), Ptr(b.String("parent")), Imm(6)).Expect(6)
		execTrue(b)
	})
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if ws.ExitStatus() != 0 {
		t.Fatalf("status %v", ws)
	}
	pw.Close()
	got, _ := io.ReadAll(pr)
	if string(got) != "child parent" {
		t.Fatalf("pipe holds %q, want the child's write, then the parent's", got)
	}
}
