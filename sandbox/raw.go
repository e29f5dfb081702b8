//go:build linux && (amd64 || arm64)

package sandbox

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/sysplan"
	"github.com/stockade/stockade/mount"
)

// rawProc is the command of a sandbox started on the raw path: pid 1 of
// the sandbox, supervised through its pidfd.
type rawProc struct {
	pid   int
	pidfd int // closed once the watch is over
	st    *stdio
	// exited is closed once the command has been reaped; ws and ru are
	// then final.
	exited chan struct{}
	ws     unix.WaitStatus
	ru     unix.Rusage
	// emulated is the signal Kill delivered as SIGKILL to a command that
	// has no handler for it (see Kill).
	emulated syscall.Signal
	// spec is what the sandbox was compiled from; Exec compiles its
	// processes from it.
	spec *proto.Spec
}

// rawCache keeps compiled programs by their Spec: a Config is compiled
// once, not at every start.
var rawCache struct {
	sync.Mutex
	m map[string]*rawProgram
}

const rawCacheSize = 64

// rawProgramFor returns spec compiled for the raw path, or an error that
// wraps errNotCompiled when the init stage must start it.
func rawProgramFor(spec *proto.Spec, id identity, parentClones bool) (*rawProgram, error) {
	return cachedProgram("start", spec, id, strconv.FormatBool(parentClones), func() (*rawProgram, error) {
		return compileSpec(spec, id, parentClones)
	})
}

// rawExecProgramFor is rawProgramFor for the processes of Exec.
func rawExecProgramFor(spec *proto.Spec, id identity) (*rawProgram, error) {
	return cachedProgram("exec", spec, id, "", func() (*rawProgram, error) {
		return compileExec(spec, id)
	})
}

// cachedProgram returns the program of kind for spec and id (and extra)
// from rawCache, compiling it the first time.
func cachedProgram(kind string, spec *proto.Spec, id identity, extra string, compile func() (*rawProgram, error)) (*rawProgram, error) {
	b, err := spec.MarshalBinary()
	if err != nil {
		return nil, err
	}
	key := kind + "\x00" + extra + "\x00" + strconv.FormatBool(id.setGroups) + "\x00" +
		strconv.Itoa(id.initUID) + "/" + strconv.Itoa(id.initGID) + "\x00" + string(b)
	rawCache.Lock()
	rp := rawCache.m[key]
	rawCache.Unlock()
	if rp != nil {
		return rp, nil
	}
	if rp, err = compile(); err != nil {
		return nil, err
	}
	rawCache.Lock()
	if rawCache.m == nil || len(rawCache.m) >= rawCacheSize {
		rawCache.m = map[string]*rawProgram{}
	}
	rawCache.m[key] = rp
	rawCache.Unlock()
	return rp, nil
}

// startEnv chooses the start path: "raw" opts into the raw path for every
// sandbox it can start; unset, or "init", sandboxes start through the init
// stage. The raw path becomes the default once its pid 1 is a raw reaper
// (see the package documentation).
const startEnv = "STOCKADE_START"

// rawWanted reports whether sandboxes take the raw path.
func rawWanted() bool { return sysplan.Supported && os.Getenv(startEnv) == "raw" }

// startRaw starts the sandbox on the raw path. It reports false, having
// done nothing, when cfg needs the init stage. s.mu is held; s.lim and
// s.net are prepared.
func (s *Sandbox) startRaw(ctx context.Context, cfg *Config, id identity) (bool, error) {
	if !rawWanted() || len(cfg.Args) == 0 || id.viaHelpers {
		return false, nil
	}
	spec := cfg.spec(id)
	l := &launch{parentFD: -1}
	s.networkFiles(cfg, spec, l)
	if s.lim != nil {
		spec.Rlimits = append(spec.Rlimits, s.lim.rlimits...)
	}
	conf, err := cfg.confine(spec)
	if err != nil {
		return true, err
	}
	root := os.Geteuid() == 0
	rp, err := rawProgramFor(spec, id, root)
	if errors.Is(err, errNotCompiled) {
		return false, nil
	}
	if err != nil {
		var me *mount.Error
		if errors.As(err, &me) {
			return true, setupErr(me.Op, me.Path, me.Err)
		}
		return true, setupErr("compile", "", err)
	}
	var sources []int
	if root {
		files, err := cloneSources(&spec.Plan, 0)
		if err != nil {
			return true, err
		}
		defer closeAll(files)
		for _, f := range files {
			sources = append(sources, int(f.Fd()))
		}
	}
	cmd := Cmd{Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr, ExtraFiles: cfg.ExtraFiles}
	var counter *outputCounter
	if s.lim != nil {
		counter = s.lim.output
	}
	st, err := newStdio(&cmd, counter)
	if err != nil {
		return true, setupErr("stdio", "", err)
	}
	flags := uint64(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET)
	if l.netns != nil || l.shareHost {
		flags &^= unix.CLONE_NEWNET
	}
	cgroupFD := -1
	if s.lim != nil && s.lim.group != nil {
		if fd, ok := s.lim.group.FD(); ok {
			cgroupFD = fd
		}
	}
	s.times.prepared = proto.Monotonic()
	var rs *rawStart
	launch := func() error {
		var err error
		rs, err = launchRaw(rp, flags, cgroupFD, st.childFDs(), sources)
		return err
	}
	cpus, err := onSpawner(l.netnsFD(), s.lim.spawnRaw(s, launch))
	s.times.forked = proto.Monotonic()
	st.closeChildEnds()
	if err != nil {
		s.lim.end(s)
		return true, startError(cfg.Args[0], err)
	}
	connected := s.connectNetwork()
	before := func(pid int) error {
		if !root && s.lim != nil && s.lim.group != nil {
			if err := s.lim.group.AddProc(pid); err != nil {
				return setupErr("cgroup", s.lim.group.Name(), err)
			}
		}
		return connected()
	}
	actx, cancel := startDeadline(ctx, s.start, cfg.Timeout)
	err = rs.finish(actx, rp, id, before)
	cancel()
	if err != nil {
		s.lim.end(s)
		if ctxErr := actx.Err(); ctxErr != nil {
			return true, startTimeoutErr(ctx, ctxErr, cfg.Timeout)
		}
		return true, err
	}
	s.times.ready = proto.Monotonic()
	s.times.init = rawMarks(rs.marks, s.times.ready)
	s.raw = &rawProc{pid: rs.pid, pidfd: rs.pidfd, st: st, exited: make(chan struct{}), spec: spec}
	rep := &proto.Report{Landlocked: rs.landlocked, Message: "landlock_restrict_self failed"}
	s.confined(conf, rep, cfg)
	s.logStages(*cfg)
	s.id = id
	close(s.readDone)
	s.lim.watch(cpus, rs.pid)
	go s.rawWatch(ctx, cfg.Timeout)
	return true, nil
}

// rawMarks spreads the raw child's marks (start, ids, mounts, system,
// confine) over the init stage's, so that the debug log times both
// paths alike.
func rawMarks(m []int64, ready int64) []int64 {
	if len(m) < 5 {
		return nil
	}
	out := make([]int64, proto.NumMarks)
	out[proto.MarkEntry], out[proto.MarkSpec] = m[0], m[1]
	out[proto.MarkMounts], out[proto.MarkSystem] = m[2], m[3]
	out[proto.MarkGo], out[proto.MarkPlaced] = m[3], m[3]
	out[proto.MarkConfined] = m[4]
	out[proto.MarkStarted] = ready
	return out
}

// rawWatch is watch for the raw path: it waits for the command, kills the
// sandbox when the context ends, the timeout expires or a limit trips, and
// builds the Result.
func (s *Sandbox) rawWatch(ctx context.Context, timeout time.Duration) {
	p := s.raw
	go func() {
		awaitExit(p.pid) // without holding a thread
		p.ws, p.ru = waitPidfd(p.pidfd)
		close(p.exited)
	}()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout - time.Since(s.start))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		s.killFor(Cancelled, context.Cause(ctx))
	case <-timer:
		s.killFor(Timeout, nil)
	case r := <-s.lim.exceeded():
		s.killFor(r, nil)
	}
	<-p.exited
	end := time.Now()
	// pid 1 is gone, so every process of the sandbox dies and the output
	// ends at once, unless the writer holds it up.
	outDeadline := end.Add(waitDelay(s.cfg.WaitDelay))
	if p.st.stdinW != nil {
		// Release the pipe even if the copier is blocked reading.
		p.st.stdinW.Close()
	}
	s.lim.end(s)
	s.releaseNetwork()
	s.mu.Lock()
	unix.Close(p.pidfd)
	p.pidfd = -1
	s.mu.Unlock()
	outErr := p.st.out.wait(outDeadline)
	res, err := s.rawResult(end)
	if err == nil {
		err = outErr
	}
	s.mu.Lock()
	s.result, s.err = res, err
	s.mu.Unlock()
	close(s.done)
}

// rawResult builds the Result of a raw sandbox whose command was reaped.
func (s *Sandbox) rawResult(end time.Time) (*Result, error) {
	p := s.raw
	res := &Result{ExitCode: -1, Wall: end.Sub(s.start)}
	s.mu.Lock()
	killReason, killCause := s.killReason, s.killCause
	s.mu.Unlock()
	fillStatus(res, exitReport(p.ws, p.ru))
	switch {
	case killReason != 0:
		res.Reason, res.Signal = killReason, unix.SIGKILL
	case p.emulated != 0 && res.Reason == Signaled && res.Signal == unix.SIGKILL:
		res.Signal = p.emulated
	}
	s.lim.verdict(res)
	s.filterVerdict(res)
	if res.Success() {
		return res, nil
	}
	return res, &ExitError{Result: res, cause: killCause}
}

// exitReport is the Exited report the init would have sent for a process
// that ended with ws and used ru, so that both paths build a Result alike.
func exitReport(ws unix.WaitStatus, ru unix.Rusage) *proto.Report {
	return &proto.Report{
		Kind: proto.Exited, Status: int(ws),
		UserNanos: ru.Utime.Nano(), SysNanos: ru.Stime.Nano(), MaxRSSKiB: ru.Maxrss,
	}
}

// rawKill delivers sig to the command, pid 1 of its sandbox. The kernel
// gives pid 1 only the signals it has a handler for (SIGKILL and SIGSTOP
// aside), so a signal whose default action would end the command is
// delivered as SIGKILL and reported as sig; one that would stop it, as
// SIGSTOP; one it ignores, or whose default is to do nothing, not at all.
// s.mu is held.
func (s *Sandbox) rawKill(sig syscall.Signal) error {
	p := s.raw
	select {
	case <-p.exited:
		return ErrFinished
	default:
	}
	send := sig
	if sig != unix.SIGKILL && sig != unix.SIGSTOP && sig != unix.SIGCONT {
		caught, ignored := signalDispositions(p.pid)
		bit := uint64(1) << (uint(sig) - 1)
		switch {
		case caught&bit != 0:
		case ignored&bit != 0:
			return nil
		case defaultIgnored(sig):
			return nil
		case defaultStops(sig):
			send = unix.SIGSTOP
		default:
			send = unix.SIGKILL
			p.emulated = sig
		}
	}
	err := p.signalLocked(send)
	if send == unix.SIGKILL {
		s.lim.thaw(s.cfg.Logger)
	}
	return err
}

// signalLocked sends sig to the command through its pidfd. The caller
// holds the sandbox's mu, under which the pidfd is closed.
func (p *rawProc) signalLocked(sig syscall.Signal) error {
	if p.pidfd < 0 {
		return ErrFinished
	}
	if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrFinished
		}
		return err
	}
	return nil
}

// signalDispositions reads the caught and ignored signal masks of pid.
func signalDispositions(pid int) (caught, ignored uint64) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "SigCgt":
			caught = n
		case "SigIgn":
			ignored = n
		}
	}
	return caught, ignored
}

func defaultIgnored(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH:
		return true
	}
	return false
}

func defaultStops(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return true
	}
	return false
}

// spawnRaw wraps launch, which clones the raw child on a spawner's thread,
// so that on cgroup v1 the thread enters the group for the clone, as
// spawn does for the init. On v2 the clone names the group itself; an
// ordinary user's child is placed by pid before it is released.
func (l *limiter) spawnRaw(s *Sandbox, launch func() error) func() error {
	if l == nil || l.group == nil {
		return launch
	}
	s.times.cgroup = l.cost
	if _, ok := l.group.FD(); ok || os.Geteuid() != 0 {
		return launch
	}
	return l.inGroup(s, launch)
}

// rawExec is Exec for a sandbox started on the raw path: no agent inside
// starts the process, a child of the owner joins the sandbox and starts it
// (see compileExec), and the owner supervises it through its pidfd.
func (s *Sandbox) rawExec(ctx context.Context, cmd Cmd, x *proto.Exec, cfg *Config, start time.Time) (*Result, error) {
	s.mu.Lock()
	if err := s.runningLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	spec, id := *s.raw.spec, s.id
	// Our own copy of pid 1's pidfd: the watch closes the sandbox's.
	target, err := unix.FcntlInt(uintptr(s.raw.pidfd), unix.F_DUPFD_CLOEXEC, 3)
	s.mu.Unlock()
	if err != nil {
		return nil, ErrFinished
	}
	defer unix.Close(target)
	spec.Path, spec.Args, spec.Env, spec.Dir, spec.UID, spec.GID = x.Path, x.Args, x.Env, x.Dir, x.UID, x.GID
	spec.ExtraFiles = len(cmd.ExtraFiles)
	rp, err := rawExecProgramFor(&spec, id)
	if err != nil {
		return nil, setupErr("compile", "", err)
	}
	lim := s.execLimits(cfg)
	st, err := newStdio(&cmd, lim.output)
	if err != nil {
		return nil, setupErr("exec", x.Path, err)
	}
	cgroupFD := -1
	if s.lim != nil && s.lim.group != nil {
		if fd, ok := s.lim.group.FD(); ok {
			cgroupFD = fd
		}
	}
	var rs *rawStart
	_, err = onSpawner(-1, s.lim.spawnRaw(s, func() error {
		var err error
		rs, err = launchRaw(rp, 0, cgroupFD, st.childFDs(), nil, cellValue{rp.target, uint64(target)})
		return err
	}))
	st.closeChildEnds()
	if err != nil {
		return nil, startError(x.Path, err)
	}
	// The child, and the process while it shares the child's memory, wait
	// for nothing; but a group frozen from outside holds them, so the wait
	// ends with ctx, the Timeout and the sandbox too.
	wctx, cancel := context.WithCancel(ctx)
	if cmd.Timeout > 0 {
		wctx, cancel = context.WithDeadline(ctx, start.Add(cmd.Timeout))
	}
	go func() {
		select {
		case <-s.raw.exited:
			cancel()
		case <-wctx.Done():
		}
	}()
	werr := rs.run.Wait(wctx)
	pid := int(int64(rs.run.Get(rp.child)))
	if werr != nil && errors.Is(werr, wctx.Err()) {
		// Kill both and thaw the group so that they die; Release then
		// waits until they have left the memory.
		unix.PidfdSendSignal(rs.pidfd, unix.SIGKILL, nil, 0)
		if pid > 0 {
			unix.Kill(pid, unix.SIGKILL)
		}
		s.lim.thaw(s.cfg.Logger)
	}
	cancel()
	rs.left()
	waitPidfd(rs.pidfd)
	unix.Close(rs.pidfd)
	pid = int(int64(rs.run.Get(rp.child)))
	rs.run.Release()
	if werr != nil && errors.Is(werr, context.Canceled) && ctx.Err() == nil {
		// The sandbox ended first.
		werr = ErrFinished
	}
	if werr != nil {
		if errors.Is(werr, ErrFinished) || errors.Is(werr, context.DeadlineExceeded) || errors.Is(werr, context.Canceled) {
			if pid > 0 {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, 0, nil)
			}
			if errors.Is(werr, ErrFinished) {
				return nil, ErrFinished
			}
			return nil, setupErr("exec", x.Path, werr)
		}
		if pid > 0 {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
		}
		var se *sysplan.StepError
		if errors.As(werr, &se) {
			// The sandbox's pid 1 is gone (ESRCH), or its pid namespace
			// is ending and takes no new process (ENOMEM).
			if (se.Op == "setns" && errors.Is(se.Errno, unix.ESRCH)) || (se.Op == "clone" && errors.Is(se.Errno, unix.ENOMEM)) {
				return nil, ErrFinished
			}
			return nil, &SetupError{Stage: se.Op, Path: se.Path, Errno: se.Errno, Err: se.Errno}
		}
		return nil, setupErr("exec", x.Path, werr)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, setupErr("exec", x.Path, err)
	}
	defer unix.Close(pidfd)
	var ws unix.WaitStatus
	var ru unix.Rusage
	exited := make(chan struct{})
	go func() {
		awaitExit(pid) // without holding a thread
		ws, ru = waitPidfd(pidfd)
		close(exited)
	}()
	var timer <-chan time.Time
	if cmd.Timeout > 0 {
		t := time.NewTimer(cmd.Timeout - time.Since(start))
		defer t.Stop()
		timer = t.C
	}
	var killed Reason
	var cause error
	hit := lim.hit
	kill := func(r Reason, c error) {
		if killed == 0 {
			killed, cause = r, c
		}
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		s.lim.thaw(s.cfg.Logger)
	}
	for waiting := true; waiting; {
		select {
		case <-exited:
			waiting = false
		case r := <-hit:
			hit = nil
			kill(r, nil)
		case <-ctx.Done():
			kill(Cancelled, context.Cause(ctx))
			ctx = context.Background()
		case <-timer:
			timer = nil
			kill(Timeout, nil)
		}
	}
	ended := false
	select {
	case <-s.raw.exited:
		ended = ws.Signaled() && ws.Signal() == unix.SIGKILL
	default:
	}
	outErr := st.out.wait(time.Now().Add(waitDelay(cfg.WaitDelay)))
	res := &Result{ExitCode: -1, Wall: time.Since(start)}
	fillStatus(res, exitReport(ws, ru))
	s.filterVerdict(res)
	if killed == 0 && ended {
		killed, cause = s.endReason(time.Now().Add(waitDelay(cfg.WaitDelay)))
	}
	lim.verdict(res, killed)
	return res, outputVerdict(res, cause, outErr)
}
