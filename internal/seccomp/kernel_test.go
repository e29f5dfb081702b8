//go:build linux

package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/int80"
	"github.com/stockade/stockade/internal/testutil"
)

// The kernel tests run their filters in a helper process: the test binary
// re-executed with helperEnv naming what to do. Filters cannot be removed,
// so the test process itself is never filtered.
const helperEnv = testutil.HelperEnv

// helperCountEnv tells the benchmark helpers how many iterations to run.
const helperCountEnv = "STOCKADE_SECCOMP_TEST_N"

// probe is one system call the default filter must decide, made with
// arguments that fail harmlessly and differently when no filter is loaded,
// so that an errno from the filter cannot be mistaken for the kernel's.
type probe struct {
	name string
	nr   uintptr
	args [6]uintptr
	want unix.Errno // 0: the call must get through the filter
}

// cstr returns the address of a NUL-terminated copy of s, kept alive for
// the life of the process because the probes hold it as a uintptr.
func cstr(s string) uintptr {
	b := append([]byte(s), 0)
	keepAlive = append(keepAlive, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

var keepAlive [][]byte

// sessionKeyring is KEY_SPEC_SESSION_KEYRING (-3) as a system call argument.
var sessionKeyring = func() uintptr { v := unix.KEY_SPEC_SESSION_KEYRING; return uintptr(v) }()

var missing = "/nonexistent-stockade-seccomp-test"

func kernelProbes() []probe {
	const high = 1 << 32
	return []probe{
		{"getppid", unix.SYS_GETPPID, [6]uintptr{}, 0},
		{"uname", unix.SYS_UNAME, [6]uintptr{0}, 0}, // EFAULT from the kernel
		{"mount", unix.SYS_MOUNT, [6]uintptr{cstr("none"), cstr(missing), cstr("tmpfs")}, unix.EPERM},
		{"umount2", unix.SYS_UMOUNT2, [6]uintptr{cstr(missing)}, unix.EPERM},
		{"pivot_root", unix.SYS_PIVOT_ROOT, [6]uintptr{cstr(missing), cstr(missing)}, unix.EPERM},
		{"fsopen", unix.SYS_FSOPEN, [6]uintptr{cstr("nonexistent-fs")}, unix.EPERM},
		{"open_tree", unix.SYS_OPEN_TREE, [6]uintptr{^uintptr(0), cstr(missing)}, unix.EPERM},
		{"move_mount", unix.SYS_MOVE_MOUNT, [6]uintptr{^uintptr(0)}, unix.EPERM},
		{"keyctl", unix.SYS_KEYCTL, [6]uintptr{unix.KEYCTL_GET_KEYRING_ID, sessionKeyring}, unix.EPERM},
		{"add_key", unix.SYS_ADD_KEY, [6]uintptr{cstr("")}, unix.EPERM},
		{"request_key", unix.SYS_REQUEST_KEY, [6]uintptr{cstr("")}, unix.EPERM},
		{"bpf", unix.SYS_BPF, [6]uintptr{unix.BPF_PROG_LOAD, 0, 0}, unix.EPERM},
		{"perf_event_open", unix.SYS_PERF_EVENT_OPEN, [6]uintptr{0}, unix.EPERM},
		{"io_uring_setup", unix.SYS_IO_URING_SETUP, [6]uintptr{0, 0}, unix.EPERM},
		{"userfaultfd", unix.SYS_USERFAULTFD, [6]uintptr{0xffff}, unix.EPERM},
		{"kexec_load", unix.SYS_KEXEC_LOAD, [6]uintptr{0, 0, 0, 0xdead0000}, unix.EPERM},
		{"unshare", unix.SYS_UNSHARE, [6]uintptr{unix.CLONE_NEWUSER | unix.CLONE_THREAD}, unix.EPERM},
		{"setns", unix.SYS_SETNS, [6]uintptr{^uintptr(0)}, unix.EPERM},
		// CLONE_NEWUSER with CLONE_THREAD is invalid, so even without a
		// filter this never creates a process.
		{"clone(CLONE_NEWUSER)", unix.SYS_CLONE, [6]uintptr{unix.CLONE_NEWUSER | unix.CLONE_THREAD}, unix.EPERM},
		{"clone(CLONE_NEWNS)", unix.SYS_CLONE, [6]uintptr{unix.CLONE_NEWNS | unix.CLONE_FS}, unix.EPERM},
		{"clone3", unix.SYS_CLONE3, [6]uintptr{0, 0}, unix.ENOSYS},
		{"ptrace", unix.SYS_PTRACE, [6]uintptr{unix.PTRACE_PEEKUSR, ^uintptr(0)}, unix.EPERM},
		{"socket(AF_VSOCK)", unix.SYS_SOCKET, [6]uintptr{unix.AF_VSOCK, unix.SOCK_STREAM}, unix.EPERM},
		{"socket(AF_VSOCK|high)", unix.SYS_SOCKET, [6]uintptr{unix.AF_VSOCK | high, unix.SOCK_STREAM}, unix.EPERM},
		// fd -1: a developer's terminal on stdin must never receive input
		// if the filter lets the call through.
		{"ioctl(TIOCSTI)", unix.SYS_IOCTL, [6]uintptr{^uintptr(0), unix.TIOCSTI, cstr("x")}, unix.EPERM},
		{"ioctl(TIOCSTI|high)", unix.SYS_IOCTL, [6]uintptr{^uintptr(0), unix.TIOCSTI | high, cstr("x")}, unix.EPERM},
		{"ioctl(TIOCLINUX)", unix.SYS_IOCTL, [6]uintptr{^uintptr(0), unix.TIOCLINUX, 0}, unix.EPERM},
		{"ioctl(TCGETS)", unix.SYS_IOCTL, [6]uintptr{^uintptr(0), unix.TCGETS, 0}, 0}, // EBADF
		{"personality(ADDR_NO_RANDOMIZE)", unix.SYS_PERSONALITY, [6]uintptr{0x0040000 /* ADDR_NO_RANDOMIZE */}, unix.EPERM},
		{"personality(query)", unix.SYS_PERSONALITY, [6]uintptr{0xffffffff}, 0},
		{"nr 1000", 1000, [6]uintptr{}, unix.EPERM},
		{"nr -1", ^uintptr(0), [6]uintptr{}, unix.EPERM},
	}
}

// helperResult is what the "default" helper reports.
type helperResult struct {
	Errnos     map[string]int // errno of each probe, 0 on success
	Status     string         // the Seccomp lines of /proc/self/status
	ChildErrno int            // keyctl's errno in a child exec'd after the load
	Threads    int            // threads started after the load
	Err        string
}

// runHelper runs the helper in mode, named by helperEnv.
func runHelper(mode string) int {
	runtime.LockOSThread()
	if err := helperMain(mode); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	return 0
}

func setNoNewPrivs() error {
	return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
}

// loadTSync sets no_new_privs and loads f on every thread.
func loadTSync(f *Filter) error {
	if err := setNoNewPrivs(); err != nil {
		return err
	}
	return Load(f, FlagTSync)
}

func helperMain(mode string) error {
	switch mode {
	case "default":
		var res helperResult
		f, err := DefaultFilter()
		if err != nil {
			return err
		}
		if nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); nnp == 0 {
			if err := Load(f, FlagTSync); !errors.Is(err, ErrNoNewPrivs) {
				return fmt.Errorf("Load without no_new_privs: %v, want ErrNoNewPrivs", err)
			}
		}
		if err := loadTSync(f); err != nil {
			return err
		}
		res.Errnos = map[string]int{}
		for _, p := range kernelProbes() {
			r, _, errno := unix.RawSyscall6(p.nr, p.args[0], p.args[1], p.args[2], p.args[3], p.args[4], p.args[5])
			if errno == 0 && p.nr == unix.SYS_SOCKET {
				unix.Close(int(r))
			}
			res.Errnos[p.name] = int(errno)
		}
		// The Go runtime must keep working under the filter: new threads
		// (clone with thread flags), and a child process (clone or vfork,
		// then execve) that inherits the filter.
		started, release := make(chan struct{}), make(chan struct{})
		for range 4 {
			go func() {
				runtime.LockOSThread() // holds a thread each, so new ones start
				started <- struct{}{}
				<-release
			}()
		}
		for range 4 {
			<-started
			res.Threads++
		}
		close(release)
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=inherit")
		out, err := cmd.Output()
		if err != nil {
			res.Err = fmt.Sprintf("exec child: %v", err)
		} else {
			fmt.Sscan(string(out), &res.ChildErrno)
		}
		status, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "Seccomp") || strings.HasPrefix(line, "NoNewPrivs") {
				res.Status += line + "\n"
			}
		}
		return json.NewEncoder(os.Stdout).Encode(res)
	case "inherit":
		_, _, errno := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, sessionKeyring, 0)
		fmt.Println(int(errno))
		return nil
	case "kill":
		p := &Policy{DefaultAction: Allow, Rules: []Rule{{Names: []string{"getppid"}, Action: KillProcess}}}
		f, err := Compile(p)
		if err != nil {
			return err
		}
		if err := loadTSync(f); err != nil {
			return err
		}
		fmt.Println("loaded")
		os.Stdout.Sync()
		unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		return errors.New("getppid returned under a kill-process rule")
	case "x32", "i386":
		f, err := DefaultFilter()
		if err != nil {
			return err
		}
		if err := loadTSync(f); err != nil {
			return err
		}
		fmt.Println("loaded")
		os.Stdout.Sync()
		if mode == "x32" {
			unix.RawSyscall(x32SyscallBit|unix.SYS_GETPID, 0, 0, 0)
		} else {
			int80.Syscall(20) // getpid on i386
		}
		return errors.New(mode + " getpid returned under the default filter")
	case "loadcost", "syscallcost":
		n, err := strconv.Atoi(os.Getenv(helperCountEnv))
		if err != nil {
			return fmt.Errorf("%s: %w", helperCountEnv, err)
		}
		if mode == "loadcost" {
			return loadCost(n)
		}
		return syscallCost(n)
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

// helper runs the test binary as a helper and returns its stdout and how
// it ended.
func helper(t testing.TB, mode string, env ...string) ([]byte, *os.ProcessState) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("helper %s: %v", mode, err)
	}
	if stderr.Len() > 0 {
		t.Logf("helper %s stderr: %s", mode, stderr.String())
	}
	return stdout.Bytes(), cmd.ProcessState
}

func requireSeccomp(t testing.TB) {
	t.Helper()
	testutil.RequireFeature(t, "seccomp filters", Supported(), "run on Linux 4.14 or later with CONFIG_SECCOMP_FILTER")
}

func TestKernelDefaultFilter(t *testing.T) {
	requireSeccomp(t)
	out, state := helper(t, "default")
	if !state.Success() {
		t.Fatalf("helper failed: %v; output %s", state, out)
	}
	var res helperResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	for _, p := range kernelProbes() {
		got := unix.Errno(res.Errnos[p.name])
		switch {
		case p.want != 0 && got != p.want:
			t.Errorf("%s: errno %v (%d), want %v", p.name, got, got, p.want)
		case p.want == 0 && (got == unix.EPERM || got == unix.ENOSYS):
			t.Errorf("%s: errno %v, want the call to reach the kernel", p.name, got)
		}
	}
	if res.Threads != 4 {
		t.Errorf("started %d threads under the filter, want 4", res.Threads)
	}
	if res.Err != "" {
		t.Error(res.Err)
	}
	if unix.Errno(res.ChildErrno) != unix.EPERM {
		t.Errorf("keyctl in an exec'd child: errno %v, want EPERM (the filter must be inherited)", unix.Errno(res.ChildErrno))
	}
	if !strings.Contains(res.Status, "Seccomp:\t2") || !strings.Contains(res.Status, "NoNewPrivs:\t1") {
		t.Errorf("/proc/self/status says:\n%s", res.Status)
	}
}

// TestKernelProbesWithoutFilter checks that the probes do not fail with the
// filter's errno on their own, which would make the test above vacuous.
func TestKernelProbesWithoutFilter(t *testing.T) {
	testutil.RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, p := range kernelProbes() {
		if p.want == 0 || p.name == "nr -1" || p.name == "nr 1000" {
			continue
		}
		r, _, errno := unix.RawSyscall6(p.nr, p.args[0], p.args[1], p.args[2], p.args[3], p.args[4], p.args[5])
		if errno == 0 {
			if p.nr == unix.SYS_SOCKET || p.nr == unix.SYS_USERFAULTFD {
				unix.Close(int(r))
			}
			if p.nr == unix.SYS_PERSONALITY {
				unix.RawSyscall(unix.SYS_PERSONALITY, r, 0, 0)
			}
			continue
		}
		if errno == p.want {
			t.Errorf("%s fails with %v even without a filter", p.name, errno)
		}
	}
}

func TestKernelKillProcess(t *testing.T) {
	requireSeccomp(t)
	for _, mode := range []string{"kill", "x32", "i386"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "i386" && !int80.Available {
				t.Skip("int $0x80 exists on amd64 only")
			}
			if mode == "x32" && runtime.GOARCH != "amd64" {
				t.Skip("x32 exists on amd64 only")
			}
			out, state := helper(t, mode)
			ws := state.Sys().(syscall.WaitStatus)
			if mode == "i386" && ws.Signaled() && ws.Signal() == unix.SIGSEGV {
				// Without IA32 emulation the i386 ABI does not exist, and
				// neither does the attack.
				t.Skip("the kernel runs without IA32 emulation (int $0x80 faults)")
			}
			if !bytes.HasPrefix(out, []byte("loaded")) {
				t.Fatalf("helper did not load its filter: %v, output %q", state, out)
			}
			if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
				t.Fatalf("helper ended with %v, want death by SIGSYS", state)
			}
		})
	}
}

// TestKernelLoadErrors checks Load's refusals, which install nothing and
// so can run in the test process.
func TestKernelLoadErrors(t *testing.T) {
	requireSeccomp(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := DefaultFilter()
	if err != nil {
		t.Fatal(err)
	}
	if err := Load(nil, 0); err == nil {
		t.Error("Load(nil) succeeded")
	}
	if err := Load(&Filter{}, 0); err == nil {
		t.Error("Load of an empty filter succeeded")
	}
	if err := Load(f, 1<<10); err == nil || !strings.Contains(err.Error(), "unsupported flags") {
		t.Errorf("Load with unknown flags: %v", err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	p, err := DefaultPolicy(ProfileOptions{Arch: other})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Load(foreign, 0); err == nil || !strings.Contains(err.Error(), "audit architecture") {
		t.Errorf("Load of a %s filter: %v", other, err)
	}
	if nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); nnp == 0 {
		if err := Load(f, 0); !errors.Is(err, ErrNoNewPrivs) {
			t.Errorf("Load without no_new_privs: %v, want ErrNoNewPrivs", err)
		}
	}
}

// TestKernelLoadDoesNotAllocate checks that Load allocates nothing, on a
// throwaway thread: the goroutine never unlocks it, so the thread and its
// filters end with the goroutine.
func TestKernelLoadDoesNotAllocate(t *testing.T) {
	requireSeccomp(t)
	f, err := DefaultFilter()
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		allocs float64
		err    error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread()
		if err := setNoNewPrivs(); err != nil {
			done <- result{err: err}
			return
		}
		var loadErr error
		allocs := testing.AllocsPerRun(10, func() {
			if err := Load(f, 0); err != nil && loadErr == nil {
				loadErr = err
			}
		})
		done <- result{allocs, loadErr}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.allocs != 0 {
		t.Errorf("Load allocates %v times per call", r.allocs)
	}
}

// loadCost is the "loadcost" helper: it makes n loads of the default
// filter with TSYNC (on all of its threads) and prints the time they took.
func loadCost(n int) error {
	f, err := DefaultFilter()
	if err != nil {
		return err
	}
	if err := setNoNewPrivs(); err != nil {
		return err
	}
	start := time.Now()
	for range n {
		if err := Load(f, FlagTSync); err != nil {
			return err
		}
	}
	fmt.Println(time.Since(start).Nanoseconds())
	return nil
}

// syscallCost is the "syscallcost" helper: it times n calls of getppid,
// which the kernel's seccomp cache lets through without running a filter
// that allows it whatever its arguments, and of ioctl, whose arguments the
// filter must look at, before and after loading the default filter. It
// prints the four totals in nanoseconds.
func syscallCost(n int) error {
	f, err := DefaultFilter()
	if err != nil {
		return err
	}
	measure := func() (getppid, ioctl int64) {
		start := time.Now()
		for range n {
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		getppid = time.Since(start).Nanoseconds()
		start = time.Now()
		for range n {
			unix.RawSyscall(unix.SYS_IOCTL, ^uintptr(0), unix.TCGETS, 0)
		}
		return getppid, time.Since(start).Nanoseconds()
	}
	g0, i0 := measure()
	if err := loadTSync(f); err != nil {
		return err
	}
	g1, i1 := measure()
	fmt.Println(g0, i0, g1, i1)
	return nil
}
