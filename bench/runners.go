package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/bench/internal/wire"
)

// A runner starts sandboxes of one kind, the same command in the same root
// each time: a whole process per sandbox (plain exec, the stockade command,
// the peers) or sandboxes inside the in-process worker.
type runner struct {
	Key       string // a short name: "bwrap"
	Name      string // the table's row label
	Isolation string // what the row isolates
	Version   string

	// command returns a command that runs args (a path inside the root and
	// its arguments) in a new sandbox, and the function that ends that
	// sandbox early (the memory phase ends its sleeping sandboxes with it).
	command func(args []string) (*exec.Cmd, func(*exec.Cmd))
	// thread, if set, prepares the locked thread that starts the commands
	// (see onThread).
	thread func() error
	// worker serves an in-process runner; command is nil then.
	worker *worker
	// stderr collects the commands' standard error, for error messages.
	stderr *os.File
}

// env is what the runners share: the root, a scratch directory and the
// binaries under test.
type env struct {
	root     string // the busybox root
	dir      string // scratch: bundles, state, logs
	stockade string // the stockade command
	inproc   string // the in-process worker
}

// runners returns every runner the harness knows, in the table's order;
// those whose program is missing come back with the reason.
func runners(e *env) (rs []*runner, missing []string) {
	add := func(r *runner, err error) {
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", r.Name, err))
			return
		}
		rs = append(rs, r)
	}
	add(plainRunner(e), nil)
	add(inprocRunner(e, "stockade", "stockade in-process",
		"the default Config with RootDir: user, pid, mount, uts, ipc, net, cgroup namespaces; no capabilities; no_new_privs; seccomp; the raw start path (a CLONE_VM child runs the compiled start, no Go runtime in the sandbox, the reaper as pid 1)",
		"-root", e.root))
	add(inprocRunner(e, "stockade-pool", "stockade in-process, namespace pool",
		"as the first row, with network namespaces made ahead by an idle-priority thread (STOCKADE_NETNS_POOL=1)",
		"-root", e.root, "-pool"))
	add(inprocRunner(e, "stockade-reuse", "stockade in-process, namespace reuse",
		"as the first row, with Network.ReuseNamespace: sandboxes take turns in network namespaces (opt-in)",
		"-root", e.root, "-reuse"))
	add(inprocRunner(e, "stockade-limits", "stockade in-process, limits",
		"as above, plus a cgroup of its own with a 256 MiB memory and 64 task limit",
		"-root", e.root, "-limits"))
	add(inprocRunner(e, "stockade-heap", "stockade in-process, 1 GiB heap",
		"as the first row, in a program with 1 GiB of live heap",
		"-root", e.root, "-heap", "1024"))
	add(inprocRunner(e, "stockade-init", "stockade in-process, init stage",
		"as the first row, through the init stage, the fallback (STOCKADE_START=init): a re-executed Go init as pid 1",
		"-root", e.root, "-init"))
	add(inprocRunner(e, "stockade-init-heap", "stockade in-process, init stage, 1 GiB heap",
		"the init stage in a program with 1 GiB of live heap",
		"-root", e.root, "-init", "-heap", "1024"))
	add(imageRunner(e))
	add(inprocRunner(e, "stockade-host", "stockade in-process, host view",
		"the zero Config: as above, on a tmpfs root with the host's /usr, /bin, /sbin, /lib* bound read-only and a generated /etc; runs the host's /bin/true"))
	add(cliRunner(e), nil)
	add(bwrapRunner(e))
	add(ociRunner(e, "crun"))
	add(ociRunner(e, "runc"))
	add(unshareRunner(e))
	return rs, missing
}

func plainRunner(e *env) *runner {
	return &runner{
		Key: "plain", Name: "plain exec", Isolation: "none: busybox run from the host",
		command: func(args []string) (*exec.Cmd, func(*exec.Cmd)) {
			return exec.Command(filepath.Join(e.root, args[0]), args[1:]...), kill
		},
	}
}

// inprocRunner starts a worker with args (see bench/inproc).
func inprocRunner(e *env, key, name, isolation string, args ...string) (*runner, error) {
	r := &runner{Key: key, Name: name, Isolation: isolation, Version: "this tree"}
	w, err := startWorker(e.inproc, args...)
	if err != nil {
		return r, err
	}
	r.worker = w
	return r, nil
}

func cliRunner(e *env) *runner {
	return &runner{
		Key: "cli", Name: "stockade run (CLI)",
		Isolation: "stockade run --rootfs ROOT: the in-process sandbox, from a new process",
		Version:   "this tree",
		command: func(args []string) (*exec.Cmd, func(*exec.Cmd)) {
			return exec.Command(e.stockade, append([]string{"run", "--rootfs", e.root, "--"}, args...)...), kill
		},
	}
}

func bwrapRunner(e *env) (*runner, error) {
	r := &runner{
		Key: "bwrap", Name: "bwrap",
		Isolation: "--unshare-all --die-with-parent --ro-bind ROOT / --proc /proc --dev /dev",
	}
	path, err := exec.LookPath("bwrap")
	if err != nil {
		return r, errors.New("not installed (Debian package bubblewrap)")
	}
	r.Version = version(path, "--version")
	r.command = func(args []string) (*exec.Cmd, func(*exec.Cmd)) {
		return exec.Command(path, append([]string{"--unshare-all", "--die-with-parent",
			"--ro-bind", e.root, "/", "--proc", "/proc", "--dev", "/dev"}, args...)...), kill
	}
	return r, nil
}

func unshareRunner(e *env) (*runner, error) {
	r := &runner{
		Key: "unshare", Name: "unshare",
		Isolation: "user, pid, mount, uts, ipc, net, cgroup namespaces and a chroot; nothing mounted",
	}
	path, err := exec.LookPath("unshare")
	if err != nil {
		return r, errors.New("not installed (Debian package util-linux)")
	}
	r.Version = version(path, "--version")
	r.command = func(args []string) (*exec.Cmd, func(*exec.Cmd)) {
		return exec.Command(path, append([]string{"--user", "--pid", "--fork", "--kill-child",
			"--mount", "--uts", "--ipc", "--net", "--cgroup", "--root=" + e.root}, args...)...), kill
	}
	return r, nil
}

// containers numbers the OCI containers of this run.
var containers atomic.Int64

// ociRunner runs crun or runc on a bundle per command line (see ociSpec),
// in the foreground: 'run' creates, starts and, when the process exits,
// deletes the container.
func ociRunner(e *env, name string) (*runner, error) {
	r := &runner{
		Key: name, Name: name,
		Isolation: "OCI bundle: user, pid, mount, uts, ipc, net namespaces; 256 MiB memory and 64 task limit; no capabilities",
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return r, fmt.Errorf("not installed (Debian package %s)", name)
	}
	r.Version = version(path, "--version")
	if name == "crun" && hybridCgroups() {
		// crun refuses a hybrid cgroup host; it runs in a mount namespace
		// where the cgroup2 mount is not there (see hideCgroup2).
		r.thread = hideCgroup2
		r.Isolation += "; run with /sys/fs/cgroup/unified unmounted (hybrid host)"
	}
	state := filepath.Join(e.dir, name+"-state")
	bundles := map[string]string{}
	for _, args := range [][]string{trueArgs, sleepArgs} {
		b := filepath.Join(e.dir, name+"-"+filepath.Base(args[0]))
		if err := writeBundle(b, e.root, args); err != nil {
			return r, err
		}
		bundles[strings.Join(args, " ")] = b
	}
	r.command = func(args []string) (*exec.Cmd, func(*exec.Cmd)) {
		id := fmt.Sprintf("stockade-bench-%d-%d", os.Getpid(), containers.Add(1))
		cmd := exec.Command(path, "--root", state, "run", "--bundle", bundles[strings.Join(args, " ")], id)
		stop := func(cmd *exec.Cmd) {
			exec.Command(path, "--root", state, "kill", id, "KILL").Run()
			cmd.Wait()
			exec.Command(path, "--root", state, "delete", "--force", id).Run()
		}
		return cmd, stop
	}
	return r, nil
}

// The commands the sandboxes run.
var (
	trueArgs  = []string{"/bin/true"}
	sleepArgs = []string{"/bin/sleep", "1000"}
)

// kill ends a whole-process sandbox by killing its first process, which
// takes the rest with it (bwrap --die-with-parent, unshare --kill-child,
// the stockade command's sandbox dies with its owner).
func kill(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}

// version returns the first line a program prints for arg.
func version(path, arg string) string {
	out, _ := exec.Command(path, arg).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// hybridCgroups reports whether the host mounts cgroup v1 controllers at
// /sys/fs/cgroup and cgroup2 beside them at /sys/fs/cgroup/unified.
func hybridCgroups() bool {
	var root, unified unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &root) != nil || unix.Statfs(hybridCgroup2, &unified) != nil {
		return false
	}
	return root.Type != unix.CGROUP2_SUPER_MAGIC && unified.Type == unix.CGROUP2_SUPER_MAGIC
}

const hybridCgroup2 = "/sys/fs/cgroup/unified"

// hideCgroup2 moves the calling thread into a mount namespace of its own
// without the hybrid host's cgroup2 mount. The thread must stay locked and
// die with its goroutine.
func hideCgroup2() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Unmount(hybridCgroup2, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", hybridCgroup2, err)
	}
	return nil
}

// onThread runs f on a new goroutine and waits for it. With setup, the
// goroutine is locked to its thread and setup prepares that thread first;
// the goroutine never unlocks it, so the thread ends with it and what
// setup changed reaches nothing else. (The main goroutine holds the main
// thread, which could not end: see main's init.) Without setup, the
// goroutine is an ordinary one, as unlocked as the worker's launchers.
func onThread(setup func() error, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		if setup != nil {
			runtime.LockOSThread()
			if err := setup(); err != nil {
				errc <- err
				return
			}
		}
		errc <- f()
	}()
	return <-errc
}

// worker is the in-process worker (bench/inproc), driven over its
// standard input and output.
type worker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startWorker(path string, args ...string) (*worker, error) {
	cmd := exec.Command(path, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	s := bufio.NewScanner(out)
	s.Buffer(make([]byte, 1<<20), 64<<20)
	return &worker{cmd: cmd, in: in, out: s}, nil
}

// ask sends req and returns the worker's answer.
func (w *worker) ask(req wire.Request) (*wire.Answer, error) {
	b, _ := json.Marshal(req)
	if _, err := w.in.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("worker %s: %w", req.Op, err)
	}
	if !w.out.Scan() {
		return nil, fmt.Errorf("worker %s: no answer: %v", req.Op, w.out.Err())
	}
	var a wire.Answer
	if err := json.Unmarshal(w.out.Bytes(), &a); err != nil {
		return nil, fmt.Errorf("worker %s: %w", req.Op, err)
	}
	if a.Error != "" {
		return &a, fmt.Errorf("worker %s: %s", req.Op, a.Error)
	}
	return &a, nil
}

// close ends the worker: it releases what it holds when its input ends.
func (w *worker) close() {
	w.in.Close()
	w.cmd.Wait()
}
