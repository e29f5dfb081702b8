//go:build linux && (amd64 || arm64)

package sysplan

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// helperEnv makes the test binary run helperProgram on its own thread
// (Run.RunHere) instead of the tests: "ok" ends in exit_group(7), "fail"
// fails a step first.
const helperEnv = testutil.HelperEnv

func TestMain(m *testing.M) {
	testutil.Run(m, testutil.Options{Helper: func(mode string) int {
		r, err := helperProgram(mode == "fail").NewRun()
		if err != nil {
			return 3
		}
		r.RunHere(2) // never returns
		return 3
	}})
}

// helperProgram writes "a", skips a write on an expected errno, saves its
// pid and loads it into kill(pid, 0), writes "b" and exits with status 7;
// with fail, an open of a missing file fails the program before the exit.
func helperProgram(fail bool) *Program {
	b := NewBuilder()
	set := b.Alloc(8)
	b.PutU64(set, ^uint64(0))
	b.Syscall(b.Stage("mask", ""), unix.SYS_RT_SIGPROCMASK, Imm(unix.SIG_BLOCK), Ptr(set), Imm(0), Imm(8))
	b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Imm(1), Ptr(b.String("a")), Imm(1)).Expect(1)
	skip := b.NewLabel()
	b.Syscall(b.Stage("close", ""), unix.SYS_CLOSE, Imm(-1)).OnErr(uint64(unix.EBADF), skip)
	b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Imm(1), Ptr(b.String("X")), Imm(1))
	b.Place(skip)
	pid := b.Cell()
	b.Syscall(b.Stage("getpid", ""), unix.SYS_GETPID).Save(pid)
	b.Syscall(b.Stage("kill", ""), unix.SYS_KILL, Load(pid), Imm(0)).Expect(0)
	b.Syscall(b.Stage("write", ""), unix.SYS_WRITE, Imm(1), Ptr(b.String("b")), Imm(1)).Expect(1)
	if fail {
		b.Syscall(b.Stage("open", "/nonexistent"), unix.SYS_OPENAT, Imm(unix.AT_FDCWD), Ptr(b.String("/nonexistent")), Imm(unix.O_RDONLY))
	}
	b.Syscall(b.Stage("exit", ""), unix.SYS_EXIT_GROUP, Imm(7))
	p, err := b.Build()
	if err != nil {
		panic(err)
	}
	return p
}

// TestInterpreterOnThread runs the interpreter of this architecture, and
// the arm64 one under qemu-user on another host (qemu-user has no clone3,
// so the program runs on a thread of the test binary, which it ends).
func TestInterpreterOnThread(t *testing.T) {
	arches := []string{runtime.GOARCH}
	if runtime.GOARCH != "arm64" {
		arches = append(arches, "arm64")
	}
	for _, arch := range arches {
		t.Run(arch, func(t *testing.T) {
			var argv []string
			if arch == runtime.GOARCH {
				argv = []string{os.Args[0]}
			} else {
				qemu, err := exec.LookPath("qemu-aarch64")
				if err != nil {
					testutil.Skip(t, "qemu-aarch64 is not installed to run the arm64 interpreter", "apt-get install qemu-user")
				}
				gobin, err := exec.LookPath("go")
				if err != nil {
					testutil.Skip(t, "no go command to build the arm64 test binary", "put go in PATH")
				}
				bin := filepath.Join(t.TempDir(), "sysplan-arm64.test")
				build := exec.Command(gobin, "test", "-c", "-o", bin, ".")
				build.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0")
				if out, err := build.CombinedOutput(); err != nil {
					t.Fatalf("build for arm64: %v\n%s", err, out)
				}
				argv = []string{qemu, bin}
			}
			for _, mode := range []string{"ok", "fail"} {
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Env = append(os.Environ(), helperEnv+"="+mode)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				ee, ok := err.(*exec.ExitError)
				if !ok {
					t.Fatalf("%s: %v", mode, err)
				}
				if stdout.String() != "ab" {
					t.Errorf("%s: the program wrote %q, want ab", mode, stdout.String())
				}
				want := 7
				if mode == "fail" {
					want = 127
					// The failure record: the stage, then the errno.
					rec := stderr.Bytes()
					if len(rec) != 16 || binary.NativeEndian.Uint64(rec[8:]) != uint64(unix.ENOENT) {
						t.Errorf("failure record % x, want ENOENT", rec)
					}
				}
				if ee.ExitCode() != want {
					t.Errorf("%s: exit status %d, want %d (stderr %q)", mode, ee.ExitCode(), want, stderr.String())
				}
			}
		})
	}
}
