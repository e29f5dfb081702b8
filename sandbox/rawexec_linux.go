//go:build linux && (amd64 || arm64)

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/sysplan"
)

// Exec on the raw path: a child joins the sandbox by pid 1's pidfd and
// starts the process, confined as the command is.

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
	// The sandbox's command's terminal is not the process's: it has its
	// own (Cmd.TTY), or none. Its size is a value of the start, not of
	// the program (see ttySteps).
	spec.TTY, spec.TTYRows, spec.TTYCols = x.TTY, 0, 0
	spec.DefaultSignals = ignoredSignals()
	tasks, tasksDone, err := s.lim.tasksFiles()
	if errors.Is(err, ErrFinished) {
		return nil, err
	}
	if err != nil {
		s.mu.Lock()
		ending := s.raw.exitedLocked() || s.killReason != 0
		s.mu.Unlock()
		if ending {
			return nil, ErrFinished // its group is being removed
		}
		return nil, setupErr("cgroup", s.lim.group.Name(), err)
	}
	rp, err := rawExecProgramFor(&spec, id, len(tasks))
	if err != nil {
		tasksDone()
		return nil, setupErr("compile", "", err)
	}
	lim := s.execLimits(cfg)
	st, err := newStdio(&cmd, lim.output)
	if err != nil {
		tasksDone()
		return nil, setupErr("exec", x.Path, err)
	}
	cgroupFD := -1
	if s.lim != nil && s.lim.group != nil {
		if fd, ok := s.lim.group.FD(); ok {
			cgroupFD = fd
		}
	}
	values := append(tasksValues(rp, tasks), cellValue{rp.target, uint64(target)})
	if !rp.ttySize.IsNil() {
		values = append(values, cellValue{rp.ttySize, ttySize(x.TTYRows, x.TTYCols)})
	}
	if !rp.timeNS.IsNil() {
		// pid 1 is our child, not reaped yet: its pid names it.
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/time", s.raw.pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			tasksDone()
			st.closeChildEnds()
			return nil, setupErr("setns", "time", err)
		}
		defer unix.Close(fd)
		values = append(values, cellValue{rp.timeNS, uint64(fd)})
	}
	var rs *rawStart
	_, err = onSpawner(-1, func() error {
		var err error
		rs, err = launchRaw(rp, 0, 0, cgroupFD, st.childFDs(), nil, values...)
		return err
	})
	tasksDone()
	st.closeChildEnds()
	if err != nil {
		return nil, startError(x.Path, err)
	}
	defer func() {
		if rs.ttySock >= 0 {
			unix.Close(rs.ttySock)
		}
	}()
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
	stopped := werr != nil && errors.Is(werr, wctx.Err())
	if stopped {
		// Kill both and thaw the group so that they die; Release then
		// waits until they have left the memory. The process's pid is in
		// its cell as soon as it exists (CLONE_PARENT_SETTID), so once the
		// child is reaped, the cell names any process it started.
		unix.PidfdSendSignal(rs.pidfd, unix.SIGKILL, nil, 0)
		s.lim.thaw(s.cfg.Logger)
	}
	cancel()
	hws, _ := waitPidfd(rs.pidfd)
	unix.Close(rs.pidfd)
	// The pid is ours to kill and reap until we reap it (CLONE_PARENT
	// made the process our child); 0 means none was made. A kill with 0
	// or less would reach our own process group, or every process.
	pid := int(int64(rs.run.Get(rp.child)))
	reap := func() {
		if pid > 0 {
			unix.Kill(pid, unix.SIGKILL)
			s.lim.thaw(s.cfg.Logger)
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
		}
	}
	if stopped && pid > 0 {
		unix.Kill(pid, unix.SIGKILL)
		s.lim.thaw(s.cfg.Logger)
	}
	rs.run.Release()
	rs.left()
	if werr == nil && (pid <= 0 || !hws.Exited() || hws.ExitStatus() != 0) {
		// The child died without a report: a kill from outside, or the
		// kill of the sandbox's group, which it had entered.
		werr = fmt.Errorf("start of %s died: %s", x.Path, describeWait(hws))
		s.mu.Lock()
		ending := s.raw.exitedLocked() || s.killReason != 0
		s.mu.Unlock()
		if ending {
			werr = ErrFinished
		}
	}
	if werr != nil && errors.Is(werr, context.Canceled) && ctx.Err() == nil {
		// The sandbox ended first.
		werr = ErrFinished
	}
	if werr != nil {
		if errors.Is(werr, ErrFinished) || errors.Is(werr, context.DeadlineExceeded) || errors.Is(werr, context.Canceled) {
			reap()
			if errors.Is(werr, ErrFinished) {
				return nil, ErrFinished
			}
			// Killed before its exec, for its Timeout or ctx, as the init
			// stage would kill a process it has not started yet.
			killed, cause := Timeout, error(nil)
			if ctx.Err() != nil {
				killed, cause = Cancelled, context.Cause(ctx)
			}
			outErr := st.out.wait(time.Now().Add(waitDelay(cfg.WaitDelay)))
			res := &Result{ExitCode: -1, Wall: time.Since(start), Reason: Signaled, Signal: unix.SIGKILL}
			lim.verdict(res, killed)
			return res, outputVerdict(res, cause, outErr)
		}
		reap()
		var se *sysplan.StepError
		if errors.As(werr, &se) {
			// The sandbox's pid 1 is gone (ESRCH), or its pid namespace
			// is ending and takes no new process (ENOMEM).
			if (se.Op == "setns" && errors.Is(se.Errno, unix.ESRCH)) || (se.Op == "clone" && errors.Is(se.Errno, unix.ENOMEM)) {
				return nil, ErrFinished
			}
			// A sandbox ending under the Exec fails any step of it: an
			// exiting pid 1 may refuse the join (EPERM, for an ordinary
			// user), and a group being removed the move into it (ENODEV).
			s.mu.Lock()
			ending := s.raw.exitedLocked() || s.killReason != 0
			s.mu.Unlock()
			if ending {
				return nil, ErrFinished
			}
			return nil, &SetupError{Stage: se.Op, Path: se.Path, Errno: se.Errno, Err: se.Errno}
		}
		return nil, setupErr("exec", x.Path, werr)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		// Not to be supervised, then: kill and reap it. A sandbox that
		// ended under the start (its pid 1 exiting) is the usual cause.
		reap()
		s.mu.Lock()
		ending := s.raw.exitedLocked()
		s.mu.Unlock()
		if ending {
			return nil, ErrFinished
		}
		return nil, setupErr("exec", x.Path, err)
	}
	defer unix.Close(pidfd)
	var tty *os.File
	if rs.ttySock >= 0 {
		// The process sent it before its exec, which has happened.
		var terr error
		if tty, terr = recvTTY(rs.ttySock); terr != nil {
			tty = nil // as if without: its Terminal is nil
		}
	}
	if cmd.onStart != nil {
		cmd.onStart(tty)
	} else if tty != nil {
		tty.Close()
	}
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
	sigs := cmd.Signals
	for waiting := true; waiting; {
		select {
		case <-exited:
			waiting = false
		case sig := <-sigs:
			unix.PidfdSendSignal(pidfd, sig, nil, 0)
			if sig == unix.SIGKILL {
				s.lim.thaw(s.cfg.Logger)
			}
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
	// Killed with the sandbox? pid 1 may still be waiting for this process
	// to be reaped (a pid namespace ends once all of it is), so a kill of
	// the sandbox that is under way counts too.
	ended := false
	if ws.Signaled() && ws.Signal() == unix.SIGKILL {
		s.mu.Lock()
		ending := s.killReason != 0
		s.mu.Unlock()
		select {
		case <-s.raw.exited:
			ended = true
		default:
			ended = ending
		}
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
