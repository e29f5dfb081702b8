//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
)

// readLoop reads the init's reports until its socket closes, which happens
// when the init exits: the final one is kept for the Result, the others go
// to the Exec calls waiting for them.
func (s *Sandbox) readLoop() {
	for {
		rep, fds, err := s.readReportFiles()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// watch stopped waiting for the end of the socket: the init has
			// exited, and what it sent before is still worth reading.
			s.drainReports()
			break
		}
		if err != nil {
			break
		}
		s.deliver(rep, fds)
	}
	// The init is gone: Exec calls still waiting will hear nothing more.
	// readDone closes under s.mu, so that an Exec that finds it open has
	// registered in time to be told.
	s.mu.Lock()
	for id, ch := range s.execs {
		close(ch)
		delete(s.execs, id)
	}
	for id, fd := range s.execTTYs {
		unix.Close(fd)
		delete(s.execTTYs, id)
	}
	close(s.readDone)
	s.mu.Unlock()
}

// deliver keeps a final report for the Result and hands the others to the
// Exec calls waiting for them, with the master of the terminal that came
// with the Started report of a process with Cmd.TTY.
func (s *Sandbox) deliver(rep *proto.Report, fds []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.execs[rep.ID]; ok && rep.ID != 0 && rep.Kind == proto.Started && len(fds) > 0 {
		if s.execTTYs == nil {
			s.execTTYs = map[int64]int{}
		}
		s.execTTYs[rep.ID], fds = fds[0], fds[1:]
	}
	closeFDs(fds)
	if rep.ID == 0 {
		if rep.Kind == proto.Exited || rep.Kind == proto.Closed {
			s.final = rep
		}
	} else if ch, ok := s.execs[rep.ID]; ok {
		ch <- rep // buffered for every report an Exec can get
		if rep.Kind != proto.Started {
			delete(s.execs, rep.ID)
		}
	}
}

// drainReports delivers the reports queued on the init's socket without
// waiting for more. A read deadline that has passed fails every read, even
// of a report that is queued; readLoop calls this then, so that a reader
// late to run (a loaded machine) loses no report.
func (s *Sandbox) drainReports() {
	if s.conn.SetReadDeadline(time.Time{}) != nil {
		return
	}
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, maxReport)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return true // never wait
		})
		if rerr == unix.ECONNRESET {
			continue // said once, ahead of what is queued (see readReport)
		}
		if err != nil || rerr != nil || n <= 0 {
			return
		}
		var rep proto.Report
		if rep.UnmarshalBinary(buf[:n]) != nil {
			return
		}
		s.deliver(&rep, nil)
	}
}

// watch waits for the init to exit, killing the sandbox when the context is
// done or the timeout expires, and then builds the Result.
func (s *Sandbox) watch(ctx context.Context, timeout time.Duration) {
	exited := make(chan error, 1)
	go func() {
		awaitExit(s.cmd.Process.Pid) // without holding a thread
		exited <- s.cmd.Wait()
	}()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout - time.Since(s.start))
		defer t.Stop()
		timer = t.C
	}
	var werr error
	select {
	case werr = <-exited:
	case <-ctx.Done():
		s.killFor(Cancelled, context.Cause(ctx))
		werr = <-exited
	case <-timer:
		s.killFor(Timeout, nil)
		werr = <-exited
	case r := <-s.lim.exceeded():
		s.killFor(r, nil)
		werr = <-exited
	}
	end := time.Now()
	// Every process of the sandbox died with the init, so the output ends
	// at once unless the writer holds it up.
	outDeadline := end.Add(waitDelay(s.cfg.WaitDelay))
	// The init has exited, so its last report is queued or never coming;
	// the socket reaches its end at once unless something inherited it.
	s.conn.SetReadDeadline(time.Now().Add(drainGrace))
	<-s.readDone
	s.mu.Lock() // senders check readDone under s.mu (see Exec)
	s.conn.Close()
	s.exited = true // Stats must not read the group that s.lim.end removes
	s.mu.Unlock()
	if s.stdinW != nil {
		// Release the pipe even if the copier is blocked reading.
		s.stdinW.Close()
	}
	s.lim.end(s)
	s.releaseNetwork()
	s.id.leased.release() // every process of the sandbox is gone
	s.mu.Lock()
	unix.Close(s.pidfd)
	s.pidfd = -1
	rep := s.final
	s.mu.Unlock()

	outErr := s.out.wait(outDeadline)
	res, err := s.buildResult(rep, werr, end)
	s.finish(res, err, outErr)
}

// finish records the sandbox's Result and error (outErr, the output's,
// where the command's is nil) and tells Wait and the observers.
func (s *Sandbox) finish(res *Result, err, outErr error) {
	if err == nil {
		err = outErr
	}
	s.mu.Lock()
	s.result, s.err = res, err
	s.mu.Unlock()
	s.ended(res, err)
	close(s.done)
}

// drainGrace is how long watch waits, once the init has exited, for the
// end of its socket; readLoop then reads what is queued and stops.
const drainGrace = time.Second

func (s *Sandbox) killFor(r Reason, cause error) {
	s.mu.Lock()
	if s.killReason == 0 {
		s.killReason, s.killCause = r, cause
	}
	if s.raw != nil {
		s.raw.signalLocked(unix.SIGKILL)
		s.mu.Unlock()
		s.lim.thaw(s.cfg.Logger)
		return
	}
	s.mu.Unlock()
	s.killInit()
}

// killInit kills the init, and so every process of the sandbox (its pid
// namespace ends with it), even when its group is frozen.
func (s *Sandbox) killInit() error {
	err := s.cmd.Process.Kill()
	s.lim.thaw(s.cfg.Logger)
	if errors.Is(err, os.ErrProcessDone) {
		// The init has exited, but the Result is not final yet.
		return ErrFinished
	}
	return err
}

// buildResult builds the Result of a sandbox whose init has exited.
func (s *Sandbox) buildResult(rep *proto.Report, werr error, end time.Time) (*Result, error) {
	res := &Result{ExitCode: -1, Wall: end.Sub(s.start)}
	s.mu.Lock()
	killReason, killCause := s.killReason, s.killCause
	s.mu.Unlock()
	switch {
	case rep != nil && rep.Kind == proto.Closed:
		res.Reason = Closed
		res.UserTime = time.Duration(rep.UserNanos)
		res.SystemTime = time.Duration(rep.SysNanos)
		res.MaxRSS = rep.MaxRSSKiB << 10
	case rep != nil:
		fillStatus(res, rep)
	default:
		// The init was killed before the command ended: by us for a timeout
		// or a cancellation, by Kill, or by something else on the host.
		ps := s.cmd.ProcessState
		ws, _ := ps.Sys().(syscall.WaitStatus)
		switch {
		case killReason != 0:
			res.Reason, res.Signal = killReason, unix.SIGKILL
		case ws.Signaled():
			res.Reason, res.Signal = Signaled, ws.Signal()
		default:
			return nil, setupErr("init", "", errors.New("the init stage ended without a report: "+ps.String()))
		}
		res.UserTime, res.SystemTime = ps.UserTime(), ps.SystemTime()
	}
	s.lim.verdict(res)
	s.filterVerdict(res)
	if res.Success() {
		return res, nil
	}
	return res, &ExitError{Result: res, cause: killCause}
}

// fillStatus sets the reason, status and times of res from an Exited
// report.
func fillStatus(res *Result, rep *proto.Report) {
	ws := rep.WaitStatus()
	if ws.Exited() {
		res.Reason, res.ExitCode = Exited, ws.ExitStatus()
	} else {
		res.Reason, res.Signal = Signaled, ws.Signal()
	}
	res.UserTime = time.Duration(rep.UserNanos)
	res.SystemTime = time.Duration(rep.SysNanos)
	res.MaxRSS = rep.MaxRSSKiB << 10
}

// Wait returns the Result at the end, and an *ExitError unless status 0.
func (s *Sandbox) Wait() (*Result, error) {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil, ErrNotStarted
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pipes.afterWait()
	return s.result, s.err
}

// Kill sends sig to the command; SIGKILL ends the whole sandbox.
func (s *Sandbox) Kill(sig syscall.Signal) error {
	if sig < 1 || sig > maxSignal {
		return fmt.Errorf("stockade: kill: %d is not a signal (1 to %d): %w", int(sig), maxSignal, unix.EINVAL)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.runningLocked(); err != nil {
		return err
	}
	if s.raw != nil {
		return s.rawKill(sig)
	}
	if sig == unix.SIGKILL {
		return s.killInit()
	}
	if err := send(s.conn, &proto.Request{Signal: int(sig)}); err != nil {
		return ErrFinished
	}
	return nil
}

// Close kills the sandbox's processes and releases all, an Overlay's upper
// layer too (Run leaves it); one without a command ends as Closed.
func (s *Sandbox) Close() error {
	// Once the sandbox has ended: nothing writes the upper layer then.
	defer s.closeOverlay()
	s.mu.Lock()
	s.closeTTY()
	if err := s.runningLocked(); err != nil {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	if s.raw != nil {
		// As the init does for Close: every process is killed, and the
		// command's Result says so; a sandbox without one was Closed.
		if !s.raw.command() && s.killReason == 0 && !s.raw.exitedLocked() {
			s.killReason = Closed
		}
		s.raw.signalLocked(unix.SIGKILL)
		s.mu.Unlock()
		s.lim.thaw(s.cfg.Logger)
		<-s.done
		return nil
	}
	err := send(s.conn, &proto.Request{Close: true})
	s.mu.Unlock()
	if err != nil {
		s.killInit()
		<-s.done
		return nil
	}
	// The init kills every process when it reads the request; a group
	// frozen from outside must be thawed for it to do so.
	s.lim.thaw(s.cfg.Logger)
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		// The init does not answer (stopped, say): end it from here.
		if len(s.cfg.Args) == 0 {
			s.killFor(Closed, nil)
		} else {
			s.killInit()
		}
		<-s.done
	}
	return nil
}

// maxSignal is the last signal number Linux has (SIGRTMAX).
const maxSignal = 64

// closeGrace is how long Close waits for the init to end the sandbox
// before it kills the init itself.
const closeGrace = 2 * time.Second

// runningLocked returns nil when the sandbox runs, and why not otherwise.
// The caller holds s.mu.
func (s *Sandbox) runningLocked() error {
	if !s.started || (s.conn == nil && s.raw == nil) {
		return ErrNotStarted
	}
	select {
	case <-s.done:
		return ErrFinished
	default:
		return nil
	}
}
