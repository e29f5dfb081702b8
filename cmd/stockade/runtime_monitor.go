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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/sandbox"
)

// monitor owns one container: see the package documentation (runtime.go).
type monitor struct {
	o    *rtOptions
	dir  string
	cfg  sandbox.Config
	done chan int // the exit status, once the container has stopped
	// busy counts the requests being served: the monitor exits only once
	// they have replied, or a request that ended the container (a start of
	// a command that ends at once, a delete) would lose its reply.
	busy sync.WaitGroup

	// sb is the sandbox, made at create with no command of its own; the
	// container's process runs in it from start as proc.
	sb   *sandbox.Sandbox
	proc sandbox.Cmd // the container's process, as create read it
	// console is the other end of the terminal whose master create sent
	// to --console-socket (process.terminal), else nil: the monitor's
	// standard streams.
	console *os.File
	sigs    chan syscall.Signal // signals for proc, once it runs
	ran     chan struct{}       // closed once proc has ended, or never ran

	mu  sync.Mutex // guards the fields below
	st  *containerState
	cmd *sandbox.Cmd // proc, once started
}

// monitor is "stockade runtime-monitor --bundle DIR ID", started by create
// with descriptor 3 the pipe on which it says "ok" once ready, or why not.
// It returns only when it fails before it is ready; else it exits with the
// container's exit status.
func (o *rtOptions) monitor(args []string) int {
	ready := os.NewFile(3, "ready")
	fail := func(err error) int {
		fmt.Fprintln(ready, strings.TrimPrefix(err.Error(), "stockade: "))
		o.logf("error", "monitor: %v", err)
		return 1
	}
	fs := rtFlags("runtime-monitor")
	bundle := fs.String("bundle", "", "the bundle directory")
	id, err := oneID("runtime-monitor", fs, args)
	if err != nil {
		return fail(err)
	}
	dir, err := o.containerDir(id)
	if err != nil {
		return fail(err)
	}
	spec, _, cfg, err := readSpec(*bundle)
	if err != nil {
		return fail(err)
	}
	m := &monitor{o: o, dir: dir, cfg: cfg, proc: processOf(&cfg), done: make(chan int, 1),
		sigs: make(chan syscall.Signal, 16), ran: make(chan struct{})}
	if m.proc.TTY != nil {
		m.console = os.Stdin
	}
	start, err := procStart(os.Getpid())
	if err != nil {
		return fail(err)
	}
	m.st = &containerState{OCIVersion: specs.Version, ID: id, Status: statusCreated, Pid: os.Getpid(),
		Bundle: *bundle, Annotations: spec.Annotations, Created: time.Now().UTC(), PidStart: start}
	if err := m.create(); err != nil {
		return fail(err)
	}
	defer m.sb.Close()
	sock := filepath.Join(dir, socketFile)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		return fail(err)
	}
	if err := save(dir, m.st); err != nil {
		ln.Close()
		return fail(err)
	}
	stop := forwardSignals(m.signal)
	go m.serve(ln)
	fmt.Fprintln(ready, "ok")
	ready.Close()

	status := <-m.done
	stop()
	ln.Close()
	os.Remove(sock)
	// Everything of the container's ends here, before the monitor
	// exits: its processes, and what the sandbox made on the host; delete
	// need not look for what a killed monitor would have left.
	if err := m.sb.Close(); err == nil {
		m.mu.Lock()
		m.st.Closed = true
		if err := save(m.dir, m.st); err != nil {
			m.o.logf("error", "monitor: %v", err)
		}
		m.mu.Unlock()
	}
	replied := make(chan struct{})
	go func() { m.busy.Wait(); close(replied) }()
	select {
	case <-replied:
	case <-time.After(replyGrace):
		m.o.logf("warning", "monitor: requests still unanswered after %v", replyGrace)
	}
	exitWith(status)
	return status
}

// serve serves each connection to ln in a goroutine of its own.
func (m *monitor) serve(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		m.busy.Add(1)
		go func() {
			defer m.busy.Done()
			m.handle(conn)
		}()
	}
}

// replyGrace bounds how long a stopped container's monitor waits for the
// requests it is serving to reply (an exec's may wait on its process, which
// the container's end kills).
const replyGrace = 5 * time.Second

// stopped records that the container has stopped with status and ends the
// monitor. Only the first call counts.
func (m *monitor) stopped(status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.Status == statusStopped {
		return
	}
	m.st.Status = statusStopped
	m.st.ExitStatus = &status
	if err := save(m.dir, m.st); err != nil {
		m.o.logf("error", "monitor: %v", err)
	}
	m.done <- status
}

// signal passes a signal the monitor received on to the command.
func (m *monitor) signal(sig syscall.Signal) {
	if err := m.kill(sig, false); err != nil {
		m.o.logf("warning", "monitor: pass on %v: %v", sig, err)
	}
}

// kill sends sig to the container's process, and with all to every
// process of the container. A container not started yet stops as if its
// process had been killed, unless sig is one whose default is to be
// ignored.
func (m *monitor) kill(sig syscall.Signal, all bool) error {
	m.mu.Lock()
	status := m.st.Status
	m.mu.Unlock()
	if all && status != statusStopped {
		for _, p := range descendants(os.Getpid()) {
			unix.Kill(p, sig)
		}
	}
	switch status {
	case statusCreated:
		switch sig {
		case unix.SIGCHLD, unix.SIGCONT, unix.SIGURG, unix.SIGWINCH:
			return nil
		}
		go m.stopped(128 + int(sig))
		return nil
	case statusStopped:
		return errors.New("container not running")
	}
	select {
	case m.sigs <- sig:
		return nil
	case <-m.ran:
		return errors.New("container not running")
	case <-time.After(replyGrace):
		return fmt.Errorf("signal %v not taken within %v", sig, replyGrace)
	}
}

// handle serves one request.
func (m *monitor) handle(conn *net.UnixConn) {
	defer conn.Close()
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	var files []*os.File
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, msg := range msgs {
			fds, _ := unix.ParseUnixRights(&msg)
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "stdio"))
			}
		}
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	reply := func(rep rtReply) { conn.Write(mustJSON(rep)) }
	var req rtRequest
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		reply(rtReply{Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case "start":
		if err := m.start(); err != nil {
			reply(rtReply{Error: err.Error()})
			return
		}
		reply(rtReply{})
	case "kill":
		if err := m.kill(syscall.Signal(req.Signal), req.All); err != nil {
			reply(rtReply{Error: err.Error()})
			return
		}
		reply(rtReply{})
	case "delete":
		m.sb.Close()
		reply(rtReply{})
		m.stopped(128 + int(unix.SIGKILL))
	case "exec":
		m.exec(conn, &req, files, reply)
	default:
		reply(rtReply{Error: fmt.Sprintf("unknown request %q", req.Op)})
	}
}

// processOf takes the container's process out of cfg: the sandbox is
// made at create with no command of its own (its pid 1 waits, in the
// namespaces, for what runs in it), and the process runs in it at start.
// It is the container's process only there: it alone takes any signal
// (Cmd.Signals), and its end is the container's.
//
// The sandbox gets Config.TTY whether or not the process has a terminal,
// so that exec may give one to a process it runs: the runtime hands the
// sandbox no terminal of the host's (see runtime_console.go), so every
// terminal in it is its own.
func processOf(cfg *sandbox.Config) sandbox.Cmd {
	p := sandbox.Cmd{Args: cfg.Args, Env: cfg.Env, Dir: cfg.Dir, UID: cfg.UID, GID: cfg.GID, RunAsRoot: cfg.RunAsRoot}
	if cfg.TTY != nil {
		p.TTY = cfg.TTY
	} else {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	if p.Env == nil {
		p.Env = []string{}
	}
	cfg.Args, cfg.TTY = nil, &sandbox.TTY{}
	return p
}

// create makes the container's sandbox, namespaces, mounts and control
// group, with nothing running in it but its pid 1; the state names that
// pid, whose /proc/PID/ns are the container's (hooks may enter them).
func (m *monitor) create() error {
	if err := makeMountPoints(&m.cfg); err != nil {
		return fmt.Errorf("create: mount points: %w", err)
	}
	m.sb = sandbox.New(m.cfg)
	if err := m.sb.Start(context.Background()); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	m.st.ContainerPid = m.sb.Pid()
	go func() {
		// The sandbox ends before its process only when something from
		// outside ended it (its pid 1 killed, say).
		res, _ := m.sb.Wait()
		m.stopped(statusOf(res))
	}()
	return nil
}

// start starts the container's process, and records its end.
func (m *monitor) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.st.Status {
	case statusRunning:
		return errors.New("cannot start an already running container")
	case statusStopped:
		return errors.New("cannot start a container that has stopped")
	}
	cmd := m.sb.Command(m.proc.Args[0], m.proc.Args[1:]...)
	cmd.Env, cmd.Dir, cmd.UID, cmd.GID, cmd.RunAsRoot = m.proc.Env, m.proc.Dir, m.proc.UID, m.proc.GID, m.proc.RunAsRoot
	cmd.Stdin, cmd.Stdout, cmd.Stderr = m.proc.Stdin, m.proc.Stdout, m.proc.Stderr
	if m.console != nil {
		cmd.TTY = consoleTTY(m.console, m.proc.TTY)
	}
	cmd.Signals = m.sigs
	if err := cmd.Start(context.Background()); err != nil {
		close(m.ran)
		go m.stopped(startStatus(err))
		return fmt.Errorf("start: %w", err)
	}
	m.cmd = cmd
	m.st.Status = statusRunning
	if err := save(m.dir, m.st); err != nil {
		m.o.logf("error", "monitor: %v", err)
	}
	var output <-chan struct{}
	var master *os.File
	if m.console != nil {
		master = cmd.Terminal()
		output = relay(m.console, master)
		if _, err := takeConsole(m.console, func(rows, cols uint16) { cmd.Resize(rows, cols) }); err != nil {
			m.o.logf("warning", "monitor: %v", err)
		}
	}
	go func() {
		res, _ := cmd.Wait()
		if output != nil {
			drained(output)
			master.Close()
		}
		close(m.ran)
		m.stopped(statusOf(res))
	}()
	return nil
}

// exec runs a process in the container with the standard streams in
// files: a first reply once the request is taken, a second with its exit
// status. Anything the client sends meanwhile, or its going away, kills
// the process.
func (m *monitor) exec(conn *net.UnixConn, req *rtRequest, files []*os.File, reply func(rtReply)) {
	m.mu.Lock()
	status, sb := m.st.Status, m.sb
	m.mu.Unlock()
	if status != statusRunning {
		reply(rtReply{Error: "cannot exec in a container that is not running"})
		return
	}
	p, err := execCmd(req.Process)
	if err != nil {
		reply(rtReply{Error: err.Error()})
		return
	}
	cmd := sb.Command(p.Args[0], p.Args[1:]...)
	cmd.Env, cmd.Dir, cmd.UID, cmd.GID, cmd.RunAsRoot = p.Env, p.Dir, p.UID, p.GID, p.RunAsRoot
	var console *os.File
	switch {
	case p.TTY != nil && len(files) != 3:
		reply(rtReply{Error: "exec: process.terminal: the console was not passed"})
		return
	case p.TTY != nil:
		console = files[0]
		cmd.TTY = consoleTTY(console, p.TTY)
	case len(files) == 3:
		cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[1], files[2]
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan syscall.Signal, 8)
	cmd.Signals = sigs
	reply(rtReply{})
	go func() {
		// "signal N" passes signal N on to the process, "resize ROWS
		// COLS" sizes its terminal; anything else, or the end of the
		// connection (the exec'd copy of stockade was killed), kills it.
		for {
			var b [64]byte
			n, err := conn.Read(b[:])
			if err != nil || n == 0 {
				break
			}
			var rows, cols uint16
			if _, err := fmt.Sscanf(string(b[:n]), "resize %d %d", &rows, &cols); err == nil {
				cmd.Resize(rows, cols)
				continue
			}
			v, ok := strings.CutPrefix(string(b[:n]), "signal ")
			sig, err := strconv.Atoi(v)
			if !ok || err != nil || sig <= 0 || sig >= 65 {
				break
			}
			select {
			case sigs <- syscall.Signal(sig):
			case <-ctx.Done():
				return
			}
		}
		cancel()
	}()
	var res *sandbox.Result
	err = cmd.Start(ctx)
	if err == nil {
		var output <-chan struct{}
		if console != nil {
			master := cmd.Terminal()
			output = relay(console, master)
			defer master.Close()
		}
		res, err = cmd.Wait()
		if output != nil {
			drained(output)
		}
	}
	code := statusOf(res)
	if res == nil {
		code = startStatus(err)
		if errors.Is(err, sandbox.ErrFinished) {
			code = 128 + int(unix.SIGKILL)
		}
		m.o.logf("warning", "monitor: exec %v: %v", p.Args, err)
	}
	reply(rtReply{Exit: &code})
}

// execCmd maps the process of an exec to a Cmd.
func execCmd(p *specs.Process) (sandbox.Cmd, error) {
	if p == nil || len(p.Args) == 0 {
		return sandbox.Cmd{}, errors.New("process.args: the process needs a command")
	}
	cmd := sandbox.Cmd{Args: p.Args, Env: p.Env, Dir: p.Cwd}
	if p.Terminal {
		cmd.TTY = &sandbox.TTY{}
		if b := p.ConsoleSize; b != nil {
			cmd.TTY.Rows, cmd.TTY.Cols = uint16(min(b.Height, 0xffff)), uint16(min(b.Width, 0xffff))
		}
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	if cmd.Dir == "/" {
		cmd.Dir = ""
	}
	if p.User.UID == 0 {
		cmd.RunAsRoot = true
	} else {
		cmd.UID, cmd.GID = int(p.User.UID), int(p.User.GID)
	}
	return cmd, nil
}

// exec runs a process in a running container: "exec --process FILE ID", or
// "exec ID COMMAND..." with --cwd, --env and --user.
func (o *rtOptions) exec(args []string) (int, error) {
	fs := rtFlags("exec")
	processFile := fs.StringP("process", "p", "", "the process, as the process of a config.json, in `FILE`")
	detach := fs.BoolP("detach", "d", false, "return once the process has started")
	pidFile := fs.String("pid-file", "", "write the process's pid to `FILE`")
	consoleSocket := fs.String("console-socket", "", "send the master of the process's terminal to the socket at `PATH`")
	tty := fs.BoolP("tty", "t", false, "give the process a terminal (needs --console-socket)")
	cwd := fs.String("cwd", "", "the working directory")
	env := fs.StringArrayP("env", "e", nil, "add `NAME=VALUE` to the environment")
	user := fs.StringP("user", "u", "", "run as `UID[:GID]`")
	fs.Bool("no-new-privs", false, "ignored: always on")
	waitFD := fs.Int("wait-fd", -1, "")
	fs.MarkHidden("wait-fd")
	readyFD := fs.Int("ready-fd", -1, "")
	fs.MarkHidden("ready-fd")
	consoleFD := fs.Int("console-fd", -1, "")
	fs.MarkHidden("console-fd")
	if err := fs.Parse(args); err != nil {
		return 0, rtErrorf("exec: %v", err)
	}
	if *waitFD >= 0 {
		// The copy that --detach leaves behind: the connection is open.
		f := os.NewFile(uintptr(*waitFD), "monitor")
		conn, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return 0, err
		}
		var ready, console *os.File
		if *readyFD >= 0 {
			ready = os.NewFile(uintptr(*readyFD), "ready")
		}
		if *consoleFD >= 0 {
			console = os.NewFile(uintptr(*consoleFD), "console")
		}
		return waitExec(conn.(*net.UnixConn), ready, console)
	}
	if fs.NArg() < 1 {
		return 0, rtErrorf("exec: a container id is needed")
	}
	st, dir, err := o.load(fs.Arg(0))
	if err != nil {
		return 0, err
	}
	if st.Status != statusRunning {
		return 0, rtErrorf("cannot exec in a container that is not running")
	}
	var p specs.Process
	if *processFile != "" {
		b, err := os.ReadFile(*processFile)
		if err != nil {
			return 0, err
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return 0, rtErrorf("exec: %s: %v", *processFile, err)
		}
	} else {
		if fs.NArg() < 2 {
			return 0, rtErrorf("exec: a command or --process is needed")
		}
		p.Args = fs.Args()[1:]
		if _, _, cfg, err := readSpec(st.Bundle); err == nil {
			p.Env, p.Cwd = cfg.Env, cfg.Dir
			p.User.UID, p.User.GID = uint32(cfg.UID), uint32(cfg.GID)
			if cfg.RunAsRoot {
				p.User.UID, p.User.GID = 0, 0
			}
		}
		p.Env = append(p.Env, *env...)
		if *cwd != "" {
			p.Cwd = *cwd
		}
		if *user != "" {
			uid, gid, _ := strings.Cut(*user, ":")
			u, err := strconv.ParseUint(uid, 10, 32)
			if err != nil {
				return 0, rtErrorf("exec: --user: %q is not a number", uid)
			}
			p.User.UID, p.User.GID = uint32(u), 0
			if gid != "" {
				g, err := strconv.ParseUint(gid, 10, 32)
				if err != nil {
					return 0, rtErrorf("exec: --user: %q is not a number", gid)
				}
				p.User.GID = uint32(g)
			}
		}
	}
	p.Terminal = p.Terminal || *tty
	switch {
	case p.Terminal && *consoleSocket == "":
		return 0, rtErrorf("exec: a terminal (--tty, process.terminal) needs --console-socket")
	case !p.Terminal && *consoleSocket != "":
		return 0, rtErrorf("exec: --console-socket: the process has no terminal (--tty, process.terminal)")
	}
	stdio := []*os.File{fileOr(o.io.in, os.Stdin), fileOr(o.io.out, os.Stdout), fileOr(o.io.err, os.Stderr)}
	var console *os.File
	if p.Terminal {
		if console, err = openConsole(*consoleSocket); err != nil {
			return 0, rtErrorf("exec: %v", err)
		}
		defer console.Close()
		stdio = []*os.File{console, console, console}
	}
	conn, rep, err := call(dir, &rtRequest{Op: "exec", Process: &p}, stdio, true)
	if err != nil {
		return 0, err
	}
	if rep.Error != "" {
		return 0, rtErrorf("%s", rep.Error)
	}
	if !*detach {
		// Not a session leader, this process cannot take the console as
		// its controlling terminal: the process's terminal keeps the
		// size it started with.
		return waitExec(conn, nil, nil)
	}
	defer conn.Close()
	f, err := conn.File()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// The copy says when it passes signals on: until then a signal sent
	// to the pid in --pid-file would kill the copy, and with it the
	// process, whatever the signal.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer readyR.Close()
	cmd := exec.Command("/proc/self/exe", "--root", o.root, "--log", o.log, "--log-format", o.logFormat, "exec", "--wait-fd", "3", "--ready-fd", "4")
	cmd.Args[0] = "stockade"
	cmd.ExtraFiles = []*os.File{f, readyW}
	if console != nil {
		cmd.Args = append(cmd.Args, "--console-fd", "5")
		cmd.ExtraFiles = append(cmd.ExtraFiles, console)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return 0, err
	}
	// A byte once it is ready, or the end of the pipe if it died; bounded
	// all the same.
	readyR.SetReadDeadline(time.Now().Add(10 * time.Second))
	readyR.Read(make([]byte, 1))
	// Release sets Process.Pid to -1; the shim would signal that pid.
	pid := cmd.Process.Pid
	cmd.Process.Release()
	if *pidFile != "" {
		if err := writePidFile(*pidFile, pid); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

func fileOr(v any, def *os.File) *os.File {
	if f, ok := v.(*os.File); ok {
		return f
	}
	return def
}

// waitExec waits for the exit status of an exec'd process on conn, and
// passes the signals it receives on to the process (SIGKILL, which it
// cannot catch, kills it and with the connection's end the process). With
// ready, it writes a byte there once it passes signals on. With console,
// the process's console, it makes that its controlling terminal and
// passes its resizes on.
func waitExec(conn *net.UnixConn, ready, console *os.File) (int, error) {
	defer conn.Close()
	stop := forwardSignals(func(sig syscall.Signal) { conn.Write([]byte("signal " + strconv.Itoa(int(sig)))) })
	defer stop()
	if console != nil {
		stopConsole, err := takeConsole(console, func(rows, cols uint16) { conn.Write(fmt.Appendf(nil, "resize %d %d", rows, cols)) })
		if err != nil {
			return 0, err
		}
		defer stopConsole()
	}
	if ready != nil {
		ready.Write([]byte{1})
		ready.Close()
	}
	rep, err := readReply(conn)
	if err != nil {
		return 0, err
	}
	if rep.Exit == nil {
		return 0, rtErrorf("exec: %s", rep.Error)
	}
	exitWith(*rep.Exit)
	return *rep.Exit, nil
}
