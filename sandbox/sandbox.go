//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/initproc"
	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/mount"
	"github.com/stockade/stockade/netns"
)

// Sandbox is one sandbox and its command, run once.
type Sandbox struct {
	cfg Config
	id  identity
	seq uint64 // the sandbox's id in logs and Events

	mu      sync.Mutex // guards the fields below
	started bool
	cmd     *exec.Cmd
	conn    *os.File // the parent's end of the init's socket
	stdinW  *os.File // the write end of a stdin pipe fed by a goroutine
	out     *outputPipes
	pidfd   int      // the init's pidfd, ours; -1 once the init is reaped
	lim     *limiter // enforces cfg.Limits; nil when there are none
	// killReason is set when the parent kills the sandbox for a timeout or
	// a cancellation, before the kill.
	killReason Reason
	killCause  error
	raw        *rawProc                     // the command, when started on the raw path
	tty        *os.File                     // the master of the command's terminal (Config.TTY), or nil
	net        *netns.Net                   // the sandbox's managed network, or nil
	reuseNS    *netns.NS                    // the namespace it gives back at its end (Network.ReuseNamespace), or nil
	joined     *netns.NS                    // Network.Join's namespace, open from prepareNetwork to the launch
	netInfo    NetworkInfo                  // what net turned out to be
	conf       Confinement                  // the defences in force, once started
	closing    bool                         // Close was called
	exited     bool                         // the init has exited; the sandbox is being torn down
	execs      map[int64]chan *proto.Report // open Exec requests
	execTTYs   map[int64]int                // masters of Exec'd terminals, until their Exec takes them
	final      *proto.Report                // the init's last report
	nextExec   int64
	pipes      stdPipes      // made by StdinPipe, StdoutPipe and StderrPipe
	ov         *overlayUpper // the upper layer of Config.Overlay, or nil
	ovClosed   bool          // Close released ov
	ovKept     string        // the kept upper layer's path, after Close

	start    time.Time
	times    startTimes
	readDone chan struct{} // closed when the init's socket is drained
	endOnce  sync.Once     // closes readDone and done after a failed Start
	done     chan struct{} // closed when result and err are final
	result   *Result
	err      error
}

// New returns a sandbox for a copy of cfg; Start reports a bad config.
func New(cfg Config) *Sandbox {
	s := &Sandbox{
		cfg:      cfg.clone(),
		seq:      sandboxIDs.Add(1),
		pidfd:    -1,
		execs:    map[int64]chan *proto.Report{},
		readDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.cfg.Logger != nil {
		s.cfg.Logger = s.cfg.Logger.With(slog.Uint64("sandbox", s.seq))
	}
	return s
}

// Run starts the sandbox and waits for its end; no Args is a *ConfigError.
func (s *Sandbox) Run(ctx context.Context) (*Result, error) {
	if len(s.cfg.Args) == 0 {
		return nil, configErr("Args", "Run needs a command; a sandbox without one is started with Start and ended with Close")
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s.Wait()
}

// Start creates the sandbox and returns once the command runs: a bad config
// is a *ConfigError before anything exists, a failed step a *SetupError.
func (s *Sandbox) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	s.started = true
	defer func() {
		if err != nil {
			s.failStart(err)
		}
		s.pipes.afterStart(err)
		// Under s.mu, so that the end, which takes it first, comes after.
		s.observe(s.startEvent(err))
	}()
	cfg := s.cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	// Exec's default is the working directory chosen now, even if RootDir
	// changes (see Config.Dir).
	s.cfg.Dir = cfg.Dir
	id, err := cfg.identity()
	if err != nil {
		return err
	}
	if len(cfg.Groups) > 0 && !id.setGroups {
		return configErr("Groups", "this sandbox's user namespace denies setgroups (an ordinary user's, without SubordinateIDs): no supplementary groups can be set")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.start = time.Now()
	s.times.begin = proto.Monotonic()
	// Every step that acquires something pushes its undo; a failed start
	// unwinds them, a started sandbox owns what they acquired.
	var undo rollback
	defer undo.unwind()
	// Host root's sandbox leases host ids of its own before anything else
	// is made (see idlease.go), and gives them back last, once its
	// processes are gone.
	if err := id.lease(); err != nil {
		return err
	}
	s.id = id
	undo.push(id.leased.release)
	// The upper layer of an Overlay, mapped as the leased ids are.
	if s.ov, err = prepareOverlay(&cfg, id); err != nil {
		return err
	}
	if s.ov != nil {
		undo.push(func() {
			// Nothing of a sandbox that did not start is kept.
			s.ov.cfg.Keep = false
			s.ov.release()
			s.ov = nil
		})
	}
	// The network the sandbox takes (a managed one here, or a namespace to
	// reuse as it launches) goes back once its init is reaped or never ran.
	undo.push(s.releaseNetwork)
	if err := fault("network"); err != nil {
		return err
	}
	if err := s.prepareNetwork(&cfg); err != nil {
		return err
	}
	if err := fault("cgroup"); err != nil {
		return err
	}
	if s.lim, err = newLimiter(&cfg); err != nil {
		return err
	}
	undo.push(func() { s.lim.end(s) })
	if ok, err := s.startRaw(ctx, &cfg, id, &undo); ok {
		if err == nil {
			undo.release()
		}
		return err
	}
	l, err := s.prepare(&cfg, id, &undo)
	if err != nil {
		return err
	}
	defer l.release()
	if l.upperSock != nil {
		defer l.upperSock.Close()
	}
	s.lim.attach(s)
	s.times.prepared = proto.Monotonic()
	if err := fault("fork"); err != nil {
		return err
	}
	cpus, err := onSpawner(l.netnsFD(), s.lim.spawn(s, func() error { return asNamespaceOwner(id.owner, s.cmd.Start) }))
	s.times.forked = proto.Monotonic()
	// The init has its own copies now. Ours of its end of the socket would
	// keep the socket from reaching its end should the init die before it
	// reports, and Start would wait for a report that never comes.
	l.release()
	if s.cmd.Process != nil {
		// Forked, placed or not: a failure from here on kills it and waits
		// for it.
		undo.push(s.reapInit)
	}
	if err != nil {
		return startError(s.cmd.Path, err)
	}
	if startHook != nil {
		startHook("forked", s.cmd.Process.Pid)
	}
	if err := setOOMScoreAdj(s.cmd.Process.Pid, cfg.Limits.OOMScoreAdj); err != nil {
		return err
	}
	if err := fault("forked"); err != nil {
		return err
	}
	// Whatever ends the start, the links are made (or failed) before the
	// network is released.
	connected := sync.OnceValue(s.connectNetwork())
	undo.push(func() { connected() })
	if id.viaHelpers {
		if err := sendAfterMaps(ctx, s.conn, s.cmd.Process.Pid, id, l.spec); err != nil {
			return s.initReport(ctx, err)
		}
	}
	if err := connected(); err != nil {
		return err
	}
	// The init is in its cgroup and network: let it go on.
	if err := fault("handshake"); err != nil {
		return err
	}
	if err := send(s.conn, &proto.Request{Go: true, CPUs: cpus}); err != nil {
		return s.initReport(ctx, setupErr("handshake", "", err))
	}
	if startHook != nil {
		startHook("go", s.cmd.Process.Pid)
	}
	actx, cancel := startDeadline(ctx, s.start, cfg.Timeout)
	rep, err := s.awaitStart(actx)
	cancel()
	if err != nil {
		return startTimeoutErr(ctx, err, cfg.Timeout)
	}
	if l.upperSock != nil {
		// The init sent it before its report.
		if s.ov.hold, err = recvUpper(int(l.upperSock.Fd())); err != nil {
			return err
		}
	}
	if err := fault("started"); err != nil {
		return err
	}
	undo.release()
	s.times.ready, s.times.init = proto.Monotonic(), rep.Marks
	s.confined(l.conf, rep, &cfg)
	s.logStages(cfg)
	s.id = id
	go s.readLoop()
	s.lim.watch(cpus, s.cmd.Process.Pid)
	go s.watch(ctx, cfg.Timeout)
	return nil
}

// initReport returns, for a write to the init that failed with err, what
// the init said or how it died: it may have failed before it read what was
// sent (a command not found, say) and reported why before it exited, or
// been killed; that report, queued on the socket, or its wait status is
// the error, not the broken pipe. Without either in a short while, err.
func (s *Sandbox) initReport(ctx context.Context, err error) error {
	if !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.ECONNRESET) {
		return err // the init is not gone: nothing to read
	}
	rctx, cancel := context.WithTimeout(ctx, 2*drainGrace)
	defer cancel()
	if _, rerr := s.awaitStart(rctx); rerr != nil && rctx.Err() == nil {
		return rerr
	}
	return err
}

// launch holds what a start prepares before the fork; the parent's copies
// of it are released once the init has its own.
type launch struct {
	spec      []byte     // the encoded spec, when it must wait for the id maps
	files     []*os.File // the init's socket end, stdin pipe, cloned mounts
	netns     *netns.NS  // a prepared network namespace for the init, or nil; s.net owns it, unless closeNS
	closeNS   bool       // netns is the launch's own (from the pool of isolated namespaces, or Network.Join's): release closes it
	shareHost bool       // the init stays in the caller's network namespace
	upperSock *os.File   // the socket the init sends the overlay's tmpfs on, or nil
	conf      Confinement
}

func (l *launch) netnsFD() int {
	if l.netns == nil {
		return -1
	}
	return l.netns.Fd()
}

func (l *launch) release() {
	closeAll(l.files)
	l.files = nil
	if l.closeNS {
		// The sandbox's processes hold the namespace now, if it started.
		l.netns.Close()
		l.netns, l.closeNS = nil, false
	}
}

// startHook, when set (by tests), is called by Start with the init's pid
// (on the raw path, pid 1's) once it is forked ("forked") and once it has
// the go-ahead ("go"; on the raw path, just before).
var startHook func(stage string, pid int)

// prepare builds the spec, clones the mount sources, takes a network
// namespace, queues the spec on a new socket pair and sets up s.cmd.
func (s *Sandbox) prepare(cfg *Config, id identity, undo *rollback) (l *launch, err error) {
	l = &launch{}
	defer func() {
		if err != nil {
			l.release()
		}
	}()
	if err := fault("spec"); err != nil {
		return l, err
	}
	spec := cfg.spec(id)
	s.ov.patch(&spec.Plan)
	s.networkFiles(cfg, spec, l)
	if s.lim != nil {
		spec.Rlimits = append(spec.Rlimits, s.lim.rlimits...)
	}
	if l.conf, err = cfg.confine(spec); err != nil {
		return l, err
	}
	// Host root resolves and clones every bind source itself, with its own
	// rights; the init, an unprivileged id on the host, might not be
	// allowed to reach them.
	var sources []*os.File
	if os.Geteuid() == 0 {
		if sources, err = cloneSources(&spec.Plan, proto.InitFD+1+len(cfg.ExtraFiles), cfg.userBinds(&spec.Plan, id), s.ov); err != nil {
			return l, err
		}
		l.files = append(l.files, sources...)
	}
	if s.ov.upperTmpfsSend() {
		// The init makes the upper layer's tmpfs and sends it back.
		own, child, err := fdSocket()
		if err != nil {
			return l, setupErr("overlay-upper", "socketpair", err)
		}
		l.upperSock = own
		undo.push(func() { own.Close() })
		l.files = append(l.files, child)
		sources = append(sources, child)
		spec.Plan.Root.Overlay.SendFD = proto.InitFD + len(cfg.ExtraFiles) + len(sources)
	}
	data, err := spec.MarshalBinary()
	if err != nil {
		return l, setupErr("encode-spec", "", err)
	}
	if err := fault("socketpair"); err != nil {
		return l, err
	}
	parentFD, childFD, err := socketPair()
	if err != nil {
		return l, setupErr("socketpair", "", err)
	}
	s.conn = os.NewFile(uintptr(parentFD), "stockade-control")
	undo.push(func() {
		s.conn.Close()
		s.conn = nil // not started: see runningLocked
	})
	child := os.NewFile(uintptr(childFD), "stockade-init")
	l.files = append(l.files, child)
	// Queue the spec before the init exists, so that it finds it waiting;
	// with subordinate ids it waits for the maps instead.
	if id.viaHelpers {
		l.spec = data
	} else if err := packed(data, nil, func(pkt, oob []byte) error {
		return unix.Sendmsg(parentFD, pkt, oob, nil, unix.MSG_NOSIGNAL)
	}); err != nil {
		return l, setupErr("send-spec", "", err)
	}
	s.cmd = cfg.initCommand(child, id)
	if err := fault("output"); err != nil {
		return l, err
	}
	if s.out, err = newOutputPipes(cfg.Stdout, cfg.Stderr, s.lim.counter()); err != nil {
		return l, setupErr("output", "", err)
	}
	l.files = append(l.files, s.out.own...) // the init holds its own copies
	s.cmd.Stdout, s.cmd.Stderr = s.out.stdout, s.out.stderr
	// A pidfd of our own, to check that the init still runs while we look
	// into its root (see files.go); the os package keeps its own copy.
	s.cmd.SysProcAttr.PidFD = &s.pidfd
	s.cmd.ExtraFiles = append(s.cmd.ExtraFiles, sources...)
	if l.netns != nil || l.shareHost {
		// The init joins the prepared namespace, or stays in the caller's,
		// as it is forked.
		s.cmd.SysProcAttr.Cloneflags &^= unix.CLONE_NEWNET
	}
	if cfg.Stdin != nil {
		if f, ok := cfg.Stdin.(*os.File); ok {
			s.cmd.Stdin = f
		} else {
			if err := fault("stdin"); err != nil {
				return l, err
			}
			stdin, err := s.pipeStdin(cfg.Stdin)
			if err != nil {
				return l, setupErr("stdin", "", err)
			}
			undo.push(func() { s.stdinW.Close() })
			l.files = append(l.files, stdin) // the init holds its own copy
		}
	}
	return l, nil
}

// cloneSources clones the root directory and every Bind source of p into
// detached mounts (an Overlay's layers and upper layer, through ov),
// idmaps the writable binds of b (and for RootIDMap the root and the
// binds from inside it), and records in p the descriptor number
// each will have in the init, counting from fd.
func cloneSources(p *mount.Plan, fd int, b binds, ov *overlayUpper) ([]*os.File, error) {
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		closeAll(files)
		var me *mount.Error
		if errors.As(err, &me) {
			return nil, setupErr(me.Op, me.Path, me.Err)
		}
		return nil, setupErr("bind", "", err)
	}
	if p.Root.Overlay != nil && ov != nil {
		fs, err := ov.sources()
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
		p.Root.Overlay.FDs = nil
		for range fs {
			p.Root.Overlay.FDs = append(p.Root.Overlay.FDs, fd)
			fd++
		}
	}
	userns, err := b.rootNS()
	if err != nil {
		closeAll(files)
		return nil, err
	}
	if userns >= 0 {
		// The namespace is needed for the clones only.
		defer unix.Close(userns)
	}
	if p.Root.Dir != "" {
		f, err := cloneRoot(p.Root, userns)
		if err != nil {
			closeAll(files)
			return nil, err
		}
		files = append(files, f)
		p.Root.FD = fd
		fd++
	}
	for i := range p.Mounts {
		m := &p.Mounts[i]
		if m.Kind != mount.Bind {
			continue
		}
		if b.inRoot(i, m) {
			// A part of the root, idmapped as it is.
			f, err := b.cloneInRoot(i, m, userns)
			if err != nil {
				closeAll(files)
				return nil, err
			}
			files = append(files, f)
			m.FD = fd
			fd++
			continue
		}
		f, err := mount.CloneSource(*m)
		if err != nil {
			return fail(err)
		}
		files = append(files, f)
		if err := b.idmap(i, m, f); err != nil {
			closeAll(files)
			return nil, err
		}
		m.FD = fd
		fd++
	}
	// The device nodes last: their tmpfs is the compiled plan's last cell.
	nodes, err := mount.MakeNodes(p, fd, b.id.hostIDs)
	if err != nil {
		return fail(err)
	}
	if nodes != nil {
		files = append(files, nodes)
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// pipeStdin connects r to the command's standard input through a pipe fed
// by a goroutine. Wait does not wait for that goroutine: a reader that
// blocks forever must not keep a finished sandbox from being reported.
func (s *Sandbox) pipeStdin(r io.Reader) (*os.File, error) {
	pr, pw, err := newPipe()
	if err != nil {
		return nil, err
	}
	s.cmd.Stdin = pr
	s.stdinW = pw
	go func() {
		io.Copy(pw, r)
		pw.Close()
	}()
	return pr, nil
}

// initCommand returns the command that starts the init stage: this very
// binary, re-executed in fresh namespaces with the socket as descriptor 3.
func (c *Config) initCommand(sock *os.File, id identity) *exec.Cmd {
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{initproc.Arg0},
		// The init runs pinned to one CPU; saying so also spares its runtime
		// the search for cgroup CPU limits it would otherwise make at start.
		// The command never sees this environment.
		Env:        []string{"GOMAXPROCS=1"},
		Stdout:     c.Stdout,
		Stderr:     c.Stderr,
		ExtraFiles: append([]*os.File{sock}, c.ExtraFiles...),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID |
				unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
			UidMappings:                id.uidMap,
			GidMappings:                id.gidMap,
			GidMappingsEnableSetgroups: id.setGroups,
			Credential: &syscall.Credential{
				Uid: uint32(id.initUID), Gid: uint32(id.initGID),
				NoSetGroups: !id.setGroups,
			},
			Setsid:    true,
			Pdeathsig: unix.SIGKILL,
		},
	}
	if id.viaHelpers {
		// The helpers write the maps after the clone; until then no id is
		// mapped and the init cannot change its own.
		cmd.SysProcAttr.UidMappings, cmd.SysProcAttr.GidMappings = nil, nil
		cmd.SysProcAttr.Credential = nil
	}
	if id.ambient {
		for c := 0; c <= linux.LastCap(); c++ {
			cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, uintptr(c))
		}
	}
	return cmd
}

// spec is what the init stage receives.
func (c *Config) spec(id identity) *proto.Spec {
	var path string
	if len(c.Args) > 0 {
		path = c.Args[0]
	}
	spec := &proto.Spec{
		Plan:       c.plan(),
		Hostname:   c.Hostname,
		Path:       path,
		Args:       c.Args,
		Env:        c.Env,
		Dir:        c.Dir,
		UID:        c.UID,
		GID:        c.GID,
		SetGroups:  id.setGroups,
		ExtraFiles: len(c.ExtraFiles),
		TimeNS:     c.TimeNamespace,
		Loopback:   true,
		Rlimits:    append(c.Limits.rlimits(), c.Limits.Kernel.rlimits()...),
		Sysctls:    c.Limits.Kernel.sysctls(),
		NewPrivs:   c.Security.AllowNewPrivileges,
		Umask:      -1,
		Groups:     c.Groups,
		// See signals_linux.go.
		DefaultSignals: ignoredSignals(),
	}
	if c.Umask != nil {
		spec.Umask = int(c.Umask.Perm())
	}
	c.TTY.toSpec(spec)
	return spec
}

// awaitStart waits for the init to report that the command runs, or why it
// does not. The wait ends with ctx, and with the init's death: its socket
// then reaches its end (the parent holds no copy of the init's end), and
// the init's pidfd is the second way out.
func (s *Sandbox) awaitStart(ctx context.Context) (*proto.Report, error) {
	stop := context.AfterFunc(ctx, func() {
		s.conn.SetReadDeadline(time.Unix(1, 0))
	})
	unwatch := s.onInitExit(func() {
		// What it sent before it died is queued: read it, then give up.
		s.conn.SetReadDeadline(time.Now().Add(drainGrace))
	})
	rep, fds, err := s.readReportFiles()
	defer func() { closeFDs(fds) }()
	unwatch()
	if !stop() {
		// ctx ended the wait, or ended as the report came: the deadline it
		// set stays, and would end the reading of the next reports.
		return nil, ctx.Err()
	}
	s.conn.SetReadDeadline(time.Time{})
	if err != nil {
		// The init died before it could report; its exit status is all
		// there is to say.
		s.killInit()
		werr := s.cmd.Wait()
		if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			// Said as the raw path says it of its pid 1.
			werr = errors.New("pid 1 died as the sandbox started: " + describeWait(unix.WaitStatus(ws)))
		}
		s.cmd = nil
		if werr == nil {
			werr = err
		}
		return nil, setupErr("init", "", werr)
	}
	switch rep.Kind {
	case proto.Started:
		if err := s.takeTTY(&fds); err != nil {
			return nil, err
		}
		return rep, nil
	case proto.Failed:
		if rep.Stage == "time-namespace" && rep.Errno == int(unix.EINVAL) {
			return nil, &FeatureError{Feature: "time namespaces", MinKernel: "5.6", Err: errors.New("this kernel cannot start a process in a new time namespace with vfork")}
		}
		if err := deniedInside(rep.Stage, unix.Errno(rep.Errno), readUserNSSettings(), os.Geteuid() == 0); err != nil {
			return nil, err
		}
		return nil, &SetupError{
			Stage: rep.Stage, Path: rep.Path, Errno: unix.Errno(rep.Errno),
			Err: errors.New(rep.Message),
		}
	}
	return nil, setupErr("init", "", errors.New("unexpected report "+string(rep.Kind)))
}

// reapInit kills the init of a sandbox whose start failed and waits for
// it, so that nothing is left behind; it is the undo of the fork.
func (s *Sandbox) reapInit() {
	if s.cmd != nil {
		s.killInit()
		s.cmd.Wait()
	}
	if s.pidfd >= 0 {
		unix.Close(s.pidfd)
		s.pidfd = -1
	}
	if s.tty != nil {
		s.tty.Close()
		s.tty = nil
	}
}

// onInitExit calls f, on a goroutine of its own, if the init exits before
// the returned stop is called; stop waits until f has returned if it runs.
// It watches a pidfd of its own through the runtime's poller: a new one,
// as making a copy of the os package's non-blocking would make its Wait
// return before the init has exited. The init is an unreaped child, so its
// pid is still its own.
func (s *Sandbox) onInitExit(f func()) (stop func()) {
	fd, err := unix.PidfdOpen(s.cmd.Process.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return func() {}
	}
	pf := os.NewFile(uintptr(fd), "stockade-init-pidfd")
	rc, err := pf.SyscallConn()
	if err != nil {
		pf.Close()
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var exited bool
		err := rc.Read(func(fd uintptr) bool {
			// A pidfd is readable once its process has exited.
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(fds, 0)
			exited = n > 0
			return exited
		})
		if err == nil && exited {
			f()
		}
	}()
	return func() {
		pf.SetReadDeadline(time.Unix(1, 0))
		<-done
		pf.Close()
	}
}

// failStart makes a failed Start final: Wait then returns err rather than
// waiting for a sandbox that will never run.
func (s *Sandbox) failStart(err error) {
	s.err = err
	s.endOnce.Do(func() {
		close(s.readDone)
		close(s.done)
	})
}

// startDeadline bounds the wait for the init to start the command by
// Config.Timeout, counted from Start like the run itself: an init that
// cannot start (one that thrashes under a memory limit too small for it,
// say) must not hold Start forever.
func startDeadline(ctx context.Context, start time.Time, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, start.Add(timeout))
}

// startTimeoutErr says that the init was not ready within timeout when
// that, and not ctx, ended the wait.
func startTimeoutErr(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return setupErr("init", "", fmt.Errorf("the command did not start within Config.Timeout (%v): %w", timeout, err))
	}
	return err
}
