//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/oci"
	"github.com/stockade/stockade/sandbox"
)

// monitorReady bounds how long create waits for the monitor to be ready.
const monitorReady = 30 * time.Second

// create makes container ID from a bundle: it checks the bundle, starts
// the monitor, runs the createRuntime and prestart hooks and writes the
// monitor's pid to --pid-file.
func (o *rtOptions) create(args []string) error {
	fs := rtFlags("create")
	bundle := fs.StringP("bundle", "b", ".", "the bundle directory")
	pidFile := fs.String("pid-file", "", "write the container's pid to `FILE`")
	consoleSocket := fs.String("console-socket", "", "send the master of the process's terminal (process.terminal) to the socket at `PATH`")
	fs.Bool("no-pivot", false, "ignored: the sandbox always pivots")
	fs.Bool("no-new-keyring", false, "ignored: the sandbox's keyrings are its own")
	preserve := fs.Int("preserve-fds", 0, "refused unless 0")
	id, err := oneID("create", fs, args)
	if err != nil {
		return err
	}
	if *preserve != 0 {
		return rtErrorf("create: --preserve-fds: not supported")
	}
	dir, err := o.containerDir(id)
	if err != nil {
		return err
	}
	b, err := filepath.Abs(*bundle)
	if err != nil {
		return err
	}
	_, hooks, cfg, err := readSpec(b)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return rtErrorf("%s", specError(filepath.Join(b, oci.ConfigFile), err))
	}
	switch {
	case cfg.TTY != nil && *consoleSocket == "":
		return rtErrorf("create: process.terminal needs --console-socket, to send the terminal's master to")
	case cfg.TTY == nil && *consoleSocket != "":
		return rtErrorf("create: --console-socket: the process has no terminal (process.terminal is false)")
	}
	if n := len(filepath.Join(dir, socketFile)); n >= len(unix.RawSockaddrUnix{}.Path) {
		return rtErrorf("--root: the state directory %s is too long for a socket in it (%d bytes)", dir, n)
	}
	if err := os.MkdirAll(o.root, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return rtErrorf("container with id %q already exists", id)
		}
		return err
	}
	var console *os.File
	if *consoleSocket != "" {
		if console, err = openConsole(*consoleSocket); err != nil {
			os.RemoveAll(dir)
			return rtErrorf("create: %v", err)
		}
		defer console.Close()
	}
	st, err := o.startMonitor(dir, b, id, console)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	if hooks != nil {
		state := st.specState()
		err := runHooks("createRuntime", hooks.CreateRuntime, state)
		if err == nil {
			err = runHooks("prestart", hooks.Prestart, state)
		}
		if err != nil {
			o.destroy(dir, st)
			return err
		}
	}
	if *pidFile != "" {
		if err := writePidFile(*pidFile, st.Pid); err != nil {
			o.destroy(dir, st)
			return err
		}
	}
	return nil
}

// writePidFile writes pid to file for the shim, which signals and waits
// for that pid: a pid that is not a process's (0 or negative, which kill
// takes for a process group or every process) is refused.
func writePidFile(file string, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("write %s: %d is not a process's pid", file, pid)
	}
	return writeFileAtomic(file, []byte(strconv.Itoa(pid)))
}

// startMonitor starts the monitor of container id and returns its state
// once it is ready. With console, that is the monitor's standard input,
// output and error.
func (o *rtOptions) startMonitor(dir, bundle, id string, console *os.File) (*containerState, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", "--root", o.root, "--log", o.log, "--log-format", o.logFormat,
		"runtime-monitor", "--bundle", bundle, id)
	cmd.Args[0] = "stockade"
	cmd.Stdin, _ = o.io.in.(*os.File)
	cmd.Stdout, _ = o.io.out.(*os.File)
	cmd.Stderr, _ = o.io.err.(*os.File)
	if console != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = console, console, console
	}
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("start the monitor: %w", err)
	}
	r.SetReadDeadline(time.Now().Add(monitorReady))
	var buf [4096]byte
	n, _ := r.Read(buf[:])
	msg := strings.TrimSpace(string(buf[:n]))
	if msg != "ok" {
		cmd.Process.Kill()
		cmd.Wait()
		if msg == "" {
			msg = "the monitor ended before it was ready"
		}
		return nil, rtErrorf("%s", msg)
	}
	cmd.Process.Release() // the monitor lives on; a subreaper above us waits for it
	st, _, err := o.load(id)
	return st, err
}

// destroy ends the monitor of a container that failed to be created and
// removes its state.
func (o *rtOptions) destroy(dir string, st *containerState) {
	call(dir, &rtRequest{Op: "delete"}, nil, false)
	waitGone(st)
	os.RemoveAll(dir)
}

// waitGone waits, for a bounded time, until the monitor of st has exited.
func waitGone(st *containerState) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if !alive(st.Pid, st.PidStart) {
			return true
		}
	}
	return false
}

// rtRequest is a request to a monitor.
type rtRequest struct {
	Op      string         `json:"op"` // start, kill, exec or delete
	Signal  int            `json:"signal,omitempty"`
	All     bool           `json:"all,omitempty"`
	Process *specs.Process `json:"process,omitempty"`
}

// rtReply is a monitor's answer: an error, or for exec the process's exit
// status once it has ended (after a first, empty reply).
type rtReply struct {
	Error string `json:"error,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
}

// call sends req, with files, to the monitor of the container in dir and
// returns its reply; keep leaves the connection open for more.
func call(dir string, req *rtRequest, files []*os.File, keep bool) (*net.UnixConn, *rtReply, error) {
	addr := &net.UnixAddr{Name: filepath.Join(dir, socketFile), Net: "unixpacket"}
	conn, err := net.DialUnix("unixpacket", nil, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("reach the container's monitor: %w", err)
	}
	var fds []int
	for _, f := range files {
		fds = append(fds, int(f.Fd()))
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := conn.WriteMsgUnix(mustJSON(req), oob, nil); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("reach the container's monitor: %w", err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	rep, err := readReply(conn)
	conn.SetReadDeadline(time.Time{})
	if err != nil || !keep {
		conn.Close()
		conn = nil
	}
	return conn, rep, err
}

func readReply(conn *net.UnixConn) (*rtReply, error) {
	buf := make([]byte, 64<<10)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("read the monitor's reply: %w", err)
	}
	if n == 0 {
		return nil, errors.New("read the monitor's reply: the monitor has gone")
	}
	var rep rtReply
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return nil, fmt.Errorf("read the monitor's reply: %w", err)
	}
	return &rep, nil
}

// start starts the container's command and runs the poststart hooks.
func (o *rtOptions) start(args []string) error {
	id, err := oneID("start", rtFlags("start"), args)
	if err != nil {
		return err
	}
	st, dir, err := o.load(id)
	if err != nil {
		return err
	}
	switch st.Status {
	case statusRunning:
		return rtErrorf("cannot start an already running container")
	case statusStopped:
		return rtErrorf("cannot start a container that has stopped")
	}
	_, rep, err := call(dir, &rtRequest{Op: "start"}, nil, false)
	if err != nil {
		return err
	}
	if rep.Error != "" {
		return rtErrorf("%s", rep.Error)
	}
	if spec, err := oci.ReadSpec(filepath.Join(st.Bundle, oci.ConfigFile)); err == nil && spec.Hooks != nil {
		st.Status = statusRunning
		o.warnHooks("poststart", spec.Hooks.Poststart, st.specState())
	}
	return nil
}

// state prints the container's state as runc does.
func (o *rtOptions) state(args []string) error {
	id, err := oneID("state", rtFlags("state"), args)
	if err != nil {
		return err
	}
	st, _, err := o.load(id)
	if err != nil {
		return err
	}
	ps := publicState{OCIVersion: st.OCIVersion, ID: st.ID, Pid: st.ContainerPid, Status: st.Status, Bundle: st.Bundle,
		Created: st.Created, Owner: "", Annotations: st.Annotations}
	if st.Status == statusStopped {
		ps.Pid = 0
	}
	if spec, err := oci.ReadSpec(filepath.Join(st.Bundle, oci.ConfigFile)); err == nil && spec.Root != nil {
		ps.Rootfs = spec.Root.Path
		if !filepath.IsAbs(ps.Rootfs) {
			ps.Rootfs = filepath.Join(st.Bundle, ps.Rootfs)
		}
	}
	b, _ := json.MarshalIndent(ps, "", "  ")
	fmt.Fprintf(o.io.out, "%s\n", b)
	return nil
}

// kill sends a signal to the container's command (--all: to every process
// of the container).
func (o *rtOptions) kill(args []string) error {
	fs := rtFlags("kill")
	all := fs.BoolP("all", "a", false, "signal every process of the container")
	if err := fs.Parse(args); err != nil {
		return rtErrorf("kill: %v", err)
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return rtErrorf("kill: a container id and at most one signal are needed, got %d arguments", fs.NArg())
	}
	sig := unix.SIGTERM
	if fs.NArg() == 2 {
		s, err := parseSignal(fs.Arg(1))
		if err != nil {
			return err
		}
		sig = s
	}
	st, dir, err := o.load(fs.Arg(0))
	if err != nil {
		return err
	}
	if st.Status == statusStopped {
		return rtErrorf("container not running")
	}
	_, rep, err := call(dir, &rtRequest{Op: "kill", Signal: int(sig), All: *all}, nil, false)
	if err != nil {
		if !alive(st.Pid, st.PidStart) {
			return rtErrorf("container not running")
		}
		return err
	}
	if rep.Error != "" {
		return rtErrorf("%s", rep.Error)
	}
	return nil
}

// delete removes a stopped container, or with --force any, and runs the
// poststop hooks.
func (o *rtOptions) delete(args []string) error {
	fs := rtFlags("delete")
	force := fs.BoolP("force", "f", false, "kill a running container first")
	id, err := oneID("delete", fs, args)
	if err != nil {
		return err
	}
	st, dir, err := o.load(id)
	if err != nil && dir != "" {
		if _, serr := os.Stat(filepath.Join(dir, stateFile)); os.IsNotExist(serr) {
			// A create that was interrupted before the monitor wrote the
			// state leaves its directory, which only delete can remove.
			// With --force, a container that is not there is deleted
			// already, as runc has it.
			os.RemoveAll(dir)
			if *force {
				return nil
			}
		}
	}
	if err != nil {
		return err
	}
	if st.Status == statusRunning && !*force {
		return rtErrorf("cannot delete container %s that is not stopped: %s", id, st.Status)
	}
	if st.Status != statusStopped {
		call(dir, &rtRequest{Op: "delete"}, nil, false)
	}
	if !waitGone(st) {
		return rtErrorf("delete: the monitor of %s (pid %d) did not exit", id, st.Pid)
	}
	var parents []string
	_, hooks, cfg, specErr := readSpec(st.Bundle)
	if specErr == nil && cfg.Limits.CgroupParent != "" {
		parents = append(parents, cfg.Limits.CgroupParent)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	err = os.RemoveAll(dir)
	unlock()
	if err != nil {
		return err
	}
	// A monitor that was killed left its sandbox's control group; one
	// that closed the sandbox (st.Closed) left nothing to look for.
	if !st.Closed {
		if err := sandbox.Cleanup(context.Background(), parents...); err != nil {
			o.logf("warning", "%v", err)
		}
		if specErr == nil && cfg.Limits.CgroupName != "" {
			// linux.cgroupsPath's, which Cleanup does not recognise.
			if err := cgroup.RemoveNamed(context.Background(), cfg.Limits.CgroupParent, cfg.Limits.CgroupName); err != nil {
				o.logf("warning", "%v", err)
			}
		}
	}
	if specErr == nil && hooks != nil {
		st.Status = statusStopped
		o.warnHooks("poststop", hooks.Poststop, st.specState())
	}
	return nil
}

// ps lists the host pids of the container's processes.
func (o *rtOptions) ps(args []string) error {
	fs := rtFlags("ps")
	format := fs.StringP("format", "f", "table", "table or json")
	id, err := oneID("ps", fs, args)
	if err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return rtErrorf("ps: --format: %q is neither table nor json", *format)
	}
	st, _, err := o.load(id)
	if err != nil {
		return err
	}
	pids := []int{}
	if st.Status != statusStopped {
		pids = descendants(st.Pid)
	}
	if *format == "json" {
		fmt.Fprintf(o.io.out, "%s\n", mustJSON(pids))
		return nil
	}
	fmt.Fprintln(o.io.out, "PID\tCMD")
	for _, p := range pids {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		fmt.Fprintf(o.io.out, "%d\t%s\n", p, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return nil
}

// descendants lists the pids of pid's descendants, sorted, pid excluded.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	sort.Ints(out)
	return out
}

// features prints what this runtime supports, in the runtime-spec's
// features format.
func (o *rtOptions) features(args []string) error {
	if len(args) > 0 {
		return rtErrorf("features takes no arguments")
	}
	f := map[string]any{
		"ociVersionMin": "1.0.0",
		"ociVersionMax": specs.Version,
		"hooks":         []string{"prestart", "createRuntime", "poststart", "poststop"},
		// What package oci maps; noexec, suid and dev are refused. Shared
		// and unbindable hold inside the sandbox only; slave is taken as
		// private.
		"mountOptions": []string{"ro", "rdonly", "rw", "nosuid", "nodev", "exec", "defaults", "relatime", "norelatime",
			"noatime", "atime", "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime", "nolazytime",
			"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
			"bind", "rbind", "size", "nr_inodes", "mode", "uid", "gid"},
		"linux": map[string]any{
			"namespaces": []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"},
			"cgroup":     map[string]any{"v1": true, "v2": true, "systemd": false},
			"seccomp":    map[string]any{"enabled": true},
			"apparmor":   map[string]any{"enabled": false},
			"selinux":    map[string]any{"enabled": false},
		},
	}
	b, _ := json.MarshalIndent(f, "", "    ")
	fmt.Fprintf(o.io.out, "%s\n", b)
	return nil
}

// spec writes a config.json that stockade runs as it is: sh in the
// bundle's rootfs, as the sandbox's defaults describe it.
func (o *rtOptions) spec(args []string) error {
	fs := rtFlags("spec")
	bundle := fs.StringP("bundle", "b", ".", "write config.json in `DIR`")
	fs.Bool("rootless", false, "ignored: the same spec serves both")
	if err := fs.Parse(args); err != nil {
		return rtErrorf("spec: %v", err)
	}
	if fs.NArg() > 0 {
		return rtErrorf("spec takes no arguments")
	}
	file := filepath.Join(*bundle, oci.ConfigFile)
	if _, err := os.Stat(file); err == nil {
		return rtErrorf("file %s exists: remove it first", file)
	}
	spec, err := oci.ToSpec(sandbox.Config{Args: []string{"sh"}, RootDir: "rootfs"})
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(spec, "", "\t")
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

// forwardSignals catches the signals stockade passes on and calls f with
// each, until the returned stop is called.
func forwardSignals(f func(syscall.Signal)) (stop func()) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				f(s.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}
