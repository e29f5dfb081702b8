//go:build linux

package reaper

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Run(m, testutil.Options{Helper: helper}) }

// helper is the helper of TestReaperReports, in the mode of its
// architecture: pid 1 of a new pid namespace, which starts a child that
// exits with status 7 after a while, then execs the reaper (through qemu
// for an architecture not the host's) with the report pipe as descriptor
// 3.
func helper(arch string) int {
	prog, err := Program(arch)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fd, err := unix.MemfdCreate("reaper", 0)
	if err == nil {
		_, err = unix.Write(fd, prog)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	path := fmt.Sprintf("/proc/self/fd/%d", fd)
	// An orphan too: reaped on the way, not reported.
	child := exec.Command("/bin/sh", "-c", "(sleep 0.05; exit 3) & sleep 0.2; exit 7")
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	argv, file := []string{"stockade-reaper", strconv.Itoa(child.Process.Pid)}, path
	if arch != runtime.GOARCH {
		file, _ = exec.LookPath("qemu-aarch64")
		argv = append([]string{file, path}, argv[1:]...)
	}
	err = unix.Exec(file, argv, nil)
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 2
}

// TestReaperReports runs the reaper as pid 1 with the command as pid 2:
// it reaps the command's orphan without a word, then reports the
// command's status and rusage in one write and exits 0. The arm64 code
// runs under qemu-user on other hosts.
func TestReaperReports(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			if arch != runtime.GOARCH {
				if _, err := exec.LookPath("qemu-aarch64"); err != nil {
					testutil.Skip(t, "qemu-aarch64 is not installed to run the "+arch+" code", "apt-get install qemu-user")
				}
			}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cmd := testutil.HelperCommand(arch)
			cmd.ExtraFiles = []*os.File{w}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWPID,
				UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
				GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
			}
			start := time.Now()
			err = cmd.Run()
			w.Close()
			if err != nil {
				t.Fatalf("pid 1: %v\n%s", err, stderr.String())
			}
			rep := make([]byte, ReportSize+1)
			n, _ := r.Read(rep)
			if n != ReportSize {
				t.Fatalf("report of %d bytes, want %d", n, ReportSize)
			}
			ws := unix.WaitStatus(binary.NativeEndian.Uint32(rep))
			if !ws.Exited() || ws.ExitStatus() != 7 {
				t.Errorf("reported status %#x, want exit 7", uint32(ws))
			}
			var ru unix.Rusage
			if err := binary.Read(bytes.NewReader(rep[8:]), binary.NativeEndian, &ru); err != nil {
				t.Fatal(err)
			}
			if ru.Maxrss <= 0 || ru.Maxrss > 1<<30 {
				t.Errorf("reported max RSS %d KiB: not the command's rusage", ru.Maxrss)
			}
			if d := time.Since(start); d < 200*time.Millisecond {
				t.Errorf("pid 1 exited after %v, before the command", d)
			}
		})
	}
}

// TestFilter: the reaper's filter lets its own calls through and kills on
// anything else, for both architectures.
func TestFilter(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		f, err := Filter(arch)
		if err != nil {
			t.Fatal(arch, err)
		}
		if n := len(f.Instructions()); n == 0 || n > 64 {
			t.Errorf("%s: %d instructions", arch, n)
		}
	}
}

// TestProgram checks the ELF headers the kernel reads.
func TestProgram(t *testing.T) {
	for arch, machine := range elfMachine {
		b, err := Program(arch)
		if err != nil {
			t.Fatal(err)
		}
		le := binary.LittleEndian
		if string(b[:4]) != "\x7fELF" || le.Uint16(b[18:]) != machine {
			t.Errorf("%s: bad header % x", arch, b[:20])
		}
		entry := le.Uint64(b[24:])
		if entry != textAddr+64+2*56 || !bytes.Equal(b[entry-textAddr:], code[arch]) {
			t.Errorf("%s: entry %#x is not the code", arch, entry)
		}
	}
	if _, err := Program("riscv64"); err == nil {
		t.Error("a program for riscv64")
	}
}

// TestCodeMatchesSource assembles src/*.S again and compares the result
// with zcode.go: a change to the sources needs go generate.
func TestCodeMatchesSource(t *testing.T) {
	for _, tool := range []string{"llvm-mc", "llvm-objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			testutil.Skip(t, tool+" is not installed to assemble the sources", "apt-get install llvm")
		}
	}
	dir := t.TempDir()
	for arch, triple := range map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"} {
		obj, bin := filepath.Join(dir, arch+".o"), filepath.Join(dir, arch+".bin")
		for _, c := range [][]string{
			{"llvm-mc", "-triple=" + triple, "-filetype=obj", "-o", obj, filepath.Join("src", arch+".S")},
			{"llvm-objcopy", "-O", "binary", "--only-section=.text", obj, bin},
		} {
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
			}
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, code[arch]) {
			t.Errorf("%s: zcode.go is not src/%s.S assembled: run go generate", arch, arch)
		}
	}
}

// TestOpenAfterItsDescriptorWasClosed: a double close elsewhere in the
// program closes the memfd and a file takes its number; Open must not hand
// out that file, but a new memfd.
func TestOpenAfterItsDescriptorWasClosed(t *testing.T) {
	fd, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	other, err := unix.Open("/proc/self/exe", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	if other != fd {
		if err := unix.Dup3(other, fd, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
	}
	again, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	if again == fd {
		t.Fatalf("Open returned %d again, which names another file now", fd)
	}
	link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", again))
	if !strings.Contains(link, "memfd:stockade-reaper") {
		t.Errorf("Open returned %d, %s", again, link)
	}
}
