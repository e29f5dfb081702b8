//go:build linux && (amd64 || arm64)

package sandbox

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/reaper"
	"github.com/stockade/stockade/internal/sysplan"
	"github.com/stockade/stockade/mount"
)

// rawProc is a sandbox started on the raw path: its pid 1, the reaper,
// and its command, supervised through their pidfds.
type rawProc struct {
	pid   int // pid 1's
	pidfd int // pid 1's; closed once the watch is over
	// cmd is the command's pidfd: -1 for a long-lived sandbox, or when the
	// command ended before the owner could copy it.
	cmd int
	// report is the owner's end of the pipe the reaper reports the
	// command's end on.
	report int
	st     *stdio // nil for a long-lived sandbox
	// exited is closed once pid 1 has been reaped; ws and ru, the
	// command's as the reaper reported them (else pid 1's), are then
	// final.
	exited chan struct{}
	ws     unix.WaitStatus
	ru     unix.Rusage
	// spec is what the sandbox was compiled from; Exec compiles its
	// processes from it.
	spec *proto.Spec
}

// command reports whether the sandbox has a command of its own.
func (p *rawProc) command() bool { return p.spec.Path != "" }

// rawCache keeps compiled programs by their Spec: a Config is compiled
// once, not at every start.
var rawCache struct {
	sync.Mutex
	m map[string]*rawProgram
}

const rawCacheSize = 64

// rawProgramFor returns spec compiled for the raw path.
func rawProgramFor(spec *proto.Spec, id identity, parentClones bool, ntasks int) (*rawProgram, error) {
	return cachedProgram("start", spec, id, strconv.FormatBool(parentClones)+"/"+strconv.Itoa(ntasks), func() (*rawProgram, error) {
		return compileSpec(spec, id, parentClones, ntasks)
	})
}

// rawExecProgramFor is rawProgramFor for the processes of Exec.
func rawExecProgramFor(spec *proto.Spec, id identity, ntasks int) (*rawProgram, error) {
	return cachedProgram("exec", spec, id, strconv.Itoa(ntasks), func() (*rawProgram, error) {
		return compileExec(spec, id, ntasks)
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

// startEnv chooses the start path: unset, or "raw", sandboxes take the raw
// path whenever it can start them; "init" sends every sandbox through the
// init stage (the fallback, kept for architectures without an interpreter
// and for what the raw path does not compile).
const startEnv = "STOCKADE_START"

// rawWanted reports whether sandboxes take the raw path.
func rawWanted() bool {
	if !sysplan.Supported || os.Getenv(startEnv) == "init" {
		return false
	}
	_, err := reaper.Open()
	return err == nil
}

// probeRawStart reports whether sandboxes start on the raw path here.
func probeRawStart() Support {
	switch {
	case os.Getenv(startEnv) == "init":
		return no("%s=init: sandboxes start through the init stage", startEnv)
	}
	if _, err := reaper.Open(); err != nil {
		return no("%v: sandboxes start through the init stage (is vm.memfd_noexec 2?)", err)
	}
	return yes("%s: no Go runtime in the sandbox, the reaper as pid 1", runtime.GOARCH)
}

// startRaw starts the sandbox on the raw path. It reports false, having
// done nothing, when sandboxes start through the init stage (see
// rawWanted). s.mu is held; s.lim and s.net are prepared.
func (s *Sandbox) startRaw(ctx context.Context, cfg *Config, id identity, undo *rollback) (bool, error) {
	if !rawWanted() {
		return false, nil
	}
	if err := fault("spec"); err != nil {
		return true, err
	}
	spec := cfg.spec(id)
	s.ov.patch(&spec.Plan)
	if s.ov.upperTmpfsSend() {
		spec.Plan.Root.Overlay.SendFD = 1 // compiled in; the socket is set per start
	}
	l := &launch{}
	defer l.release()
	s.networkFiles(cfg, spec, l)
	if s.lim != nil {
		spec.Rlimits = append(spec.Rlimits, s.lim.rlimits...)
	}
	conf, err := cfg.confine(spec)
	if err != nil {
		return true, err
	}
	root := os.Geteuid() == 0
	tasks, tasksDone, err := s.lim.tasksFiles()
	if err != nil {
		return true, setupErr("cgroup", s.lim.group.Name(), err)
	}
	tasksDone = sync.OnceFunc(tasksDone)
	defer tasksDone()
	// The terminal's size is set at each launch, not compiled in.
	rows, cols := spec.TTYRows, spec.TTYCols
	spec.TTYRows, spec.TTYCols = 0, 0
	if err := fault("compile"); err != nil {
		return true, err
	}
	rp, err := rawProgramFor(spec, id, root, len(tasks))
	if err != nil {
		var me *mount.Error
		if errors.As(err, &me) {
			return true, setupErr(me.Op, me.Path, me.Err)
		}
		return true, setupErr("compile", "", err)
	}
	var sources []int
	if root {
		if err := fault("sources"); err != nil {
			return true, err
		}
		files, err := cloneSources(&spec.Plan, 0, cfg.userBinds(&spec.Plan, id), s.ov)
		if err != nil {
			return true, err
		}
		defer closeAll(files) // the child has its own copies, if it runs
		for _, f := range files {
			sources = append(sources, int(f.Fd()))
		}
	}
	var st *stdio
	if rp.command {
		if err := fault("stdio"); err != nil {
			return true, err
		}
		cmd := Cmd{Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr, ExtraFiles: cfg.ExtraFiles}
		var counter *outputCounter
		if s.lim != nil {
			counter = s.lim.output
		}
		if st, err = newStdio(&cmd, counter); err != nil {
			return true, setupErr("stdio", "", err)
		}
		undo.push(st.abandon)
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
	var upperOwn, upperChild int = -1, -1
	if !rp.mounts.SendFD.IsNil() {
		// The child makes the upper layer's tmpfs and sends it back.
		if upperOwn, upperChild, err = ttySocket(reaper.MinFD); err != nil {
			return true, setupErr("overlay-upper", "socketpair", err)
		}
		defer unix.Close(upperOwn)
		defer unix.Close(upperChild)
	}
	s.times.prepared = proto.Monotonic()
	if err := fault("clone"); err != nil {
		return true, err
	}
	var rs *rawStart
	launch := func() error {
		var err error
		var files []int
		if st != nil {
			files = st.childFDs()
		}
		values := tasksValues(rp, tasks)
		if !rp.ttySize.IsNil() {
			values = append(values, cellValue{rp.ttySize, ttySize(rows, cols)})
		}
		if upperChild >= 0 {
			values = append(values, cellValue{rp.mounts.SendFD, uint64(upperChild)})
		}
		rs, err = launchRaw(rp, flags, id.owner, cgroupFD, files, sources, values...)
		return err
	}
	cpus, err := onSpawner(l.netnsFD(), launch)
	tasksDone()
	s.times.forked = proto.Monotonic()
	if st != nil {
		st.closeChildEnds()
	}
	if err != nil {
		if len(cfg.Args) == 0 {
			return true, err
		}
		return true, startError(cfg.Args[0], err)
	}
	undo.push(rs.abort)
	if startHook != nil {
		startHook("forked", rs.pid)
	}
	if err := fault("cloned"); err != nil {
		return true, err
	}
	// Whatever ends the start, the links are made (or failed) before the
	// network is released.
	connected := sync.OnceValue(s.connectNetwork())
	undo.push(func() { connected() })
	before := func(pid int) error {
		if err := setOOMScoreAdj(pid, cfg.Limits.OOMScoreAdj); err != nil {
			return err
		}
		if cgroupFD < 0 && len(tasks) == 0 && s.lim != nil && s.lim.group != nil {
			if err := s.lim.group.AddProc(pid); err != nil {
				return setupErr("cgroup", s.lim.group.Name(), err)
			}
		}
		if err := connected(); err != nil {
			return err
		}
		if startHook != nil {
			startHook("go", pid)
		}
		return fault("handshake")
	}
	actx, cancel := startDeadline(ctx, s.start, cfg.Timeout)
	err = rs.finish(actx, rp, id, before)
	cancel()
	if err != nil {
		if ctxErr := actx.Err(); ctxErr != nil {
			return true, startTimeoutErr(ctx, ctxErr, cfg.Timeout)
		}
		return true, err
	}
	if err := fault("started"); err != nil {
		return true, err
	}
	if upperOwn >= 0 {
		// Sent before the exec, which has happened.
		if s.ov.hold, err = recvUpper(upperOwn); err != nil {
			// The sandbox runs: end it, and everything in it with pid 1.
			unix.PidfdSendSignal(rs.pidfd, unix.SIGKILL, nil, 0)
			waitPidfd(rs.pidfd)
			for _, fd := range []int{rs.pidfd, rs.report, rs.cmd} {
				if fd >= 0 {
					unix.Close(fd)
				}
			}
			if rs.tty != nil {
				rs.tty.Close()
			}
			return true, err
		}
	}
	s.times.ready = proto.Monotonic()
	s.times.init = rawMarks(rs.marks, s.times.ready)
	s.tty = rs.tty
	s.raw = &rawProc{pid: rs.pid, pidfd: rs.pidfd, cmd: rs.cmd, report: rs.report, st: st, exited: make(chan struct{}), spec: spec}
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
		// The reaper wrote its report before it exited, if it did.
		var rep [reaper.ReportSize]byte
		if n, _ := unix.Read(p.report, rep[:]); n == len(rep) {
			p.ws = unix.WaitStatus(*(*int32)(unsafe.Pointer(&rep[0])))
			p.ru = *(*unix.Rusage)(unsafe.Pointer(&rep[8]))
		}
		unix.Close(p.report)
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
	s.mu.Lock()
	s.exited = true // Stats: the group goes next
	s.mu.Unlock()
	// pid 1 is gone, so every process of the sandbox dies and the output
	// ends at once, unless the writer holds it up.
	outDeadline := end.Add(waitDelay(s.cfg.WaitDelay))
	if p.st != nil && p.st.stdinW != nil {
		// Release the pipe even if the copier is blocked reading.
		p.st.stdinW.Close()
	}
	s.lim.end(s)
	s.releaseNetwork()
	s.id.leased.release() // every process of the sandbox is gone
	s.mu.Lock()
	unix.Close(p.pidfd)
	p.pidfd = -1
	if p.cmd >= 0 {
		unix.Close(p.cmd)
		p.cmd = -1
	}
	s.mu.Unlock()
	var outErr error
	if p.st != nil {
		outErr = p.st.out.wait(outDeadline)
	}
	res, err := s.rawResult(end)
	s.finish(res, err, outErr)
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
	case killReason == Closed:
		res.Reason, res.Signal, res.ExitCode = Closed, 0, -1
	case killReason != 0:
		res.Reason, res.Signal = killReason, unix.SIGKILL
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

// rawKill delivers sig to the command, pid 2 of its sandbox, through its
// pidfd; SIGKILL goes to pid 1 and so ends the whole sandbox. A sandbox
// with no command takes only SIGKILL. s.mu is held.
func (s *Sandbox) rawKill(sig syscall.Signal) error {
	p := s.raw
	select {
	case <-p.exited:
		return ErrFinished
	default:
	}
	if sig == unix.SIGKILL {
		err := p.signalLocked(unix.SIGKILL)
		s.lim.thaw(s.cfg.Logger)
		return err
	}
	if !p.command() {
		return nil
	}
	if p.cmd < 0 {
		return ErrFinished
	}
	if err := unix.PidfdSendSignal(p.cmd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrFinished
		}
		return err
	}
	return nil
}

// exitedLocked reports whether pid 1 has exited or is exiting (killed
// from outside, say: its pid namespace then ends, which waits for every
// process in it to be reaped). The caller holds the sandbox's mu.
func (p *rawProc) exitedLocked() bool {
	if p.pidfd < 0 {
		return true
	}
	fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
		return true
	}
	// A SIGKILL sent, not yet acted on: pending.
	if status, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "SigPnd" || k == "ShdPnd" {
				if m, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64); m&(1<<(unix.SIGKILL-1)) != 0 {
					return true
				}
			}
		}
	}
	// Acted on.
	return procExiting(p.pid)
}

// signalLocked sends sig to pid 1 through its pidfd. The caller holds the
// sandbox's mu, under which the pidfd is closed.
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

// tasksFiles returns the tasks files of the sandbox's group on cgroup v1,
// which a raw child writes itself into (none on v2, where the clone names
// the group, nor without a group), opened once per sandbox. The caller
// calls done once the child is cloned: until then end cannot close them.
func (l *limiter) tasksFiles() (files []*os.File, done func(), err error) {
	if l == nil || l.group == nil {
		return nil, func() {}, nil
	}
	if _, ok := l.group.FD(); ok {
		return nil, func() {}, nil
	}
	l.tasksMu.Lock()
	if l.tasksClosed {
		l.tasksMu.Unlock()
		return nil, nil, ErrFinished
	}
	if l.tasks == nil {
		if l.tasks, err = l.group.OpenTasks(); err != nil {
			l.tasksMu.Unlock()
			return nil, nil, err
		}
	}
	return l.tasks, l.tasksMu.Unlock, nil
}

// tasksValues puts the descriptors of files in rp's cells for them.
func tasksValues(rp *rawProgram, files []*os.File) []cellValue {
	var v []cellValue
	for i, f := range files {
		v = append(v, cellValue{rp.tasks[i], uint64(f.Fd())})
	}
	return v
}
