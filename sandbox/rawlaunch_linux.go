//go:build linux && (amd64 || arm64)

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/reaper"
	"github.com/stockade/stockade/internal/sysplan"
)

// The owner's side of a raw start: the clone, the id maps, the release
// and the wait for the exec.

// rawStart is one start on the raw path, up to the command's exec.
type rawStart struct {
	pid, pidfd int
	run        *sysplan.Run
	relW       int  // the parent's end of the release pipe, until released
	gone       bool // the child has left the owner's memory (see sharing)
	// marks are the child's stage timestamps.
	marks      []int64
	landlocked bool
	// report is the owner's end of the reaper's report pipe, and cmd the
	// command's pidfd, copied from pid 1 (-1 if none).
	report, cmd int
	// ttySock is the owner's end of the socket the command sends its
	// terminal's master on (-1 if none), and tty that master once
	// received.
	ttySock int
	tty     *os.File
}

// launchRaw clones the child that runs rp, on the calling goroutine's
// thread (a spawner's: the parent-death signal follows it, and so do its
// network namespace and, on cgroup v1, its cgroup). The child waits to be
// released by finish. files are stdin, stdout, stderr and the extra files;
// sources the parent's clones of the root and the bind sources, in plan
// order. A negative cgroupFD means no CLONE_INTO_CGROUP. A new user
// namespace belongs to owner, unless it is zero (see asNamespaceOwner).
func launchRaw(rp *rawProgram, flags uint64, owner int, cgroupFD int, files []int, sources []int, values ...cellValue) (rs *rawStart, err error) {
	run, err := rp.prog.NewRun()
	if err != nil {
		return nil, err
	}
	for _, c := range values {
		run.Set(c.ref, c.v)
	}
	// Every descriptor the child dups into 0, 1, 2, 3 ... must be above
	// those numbers, and so must the failure pipe.
	low := 0
	if rp.command {
		low = 3 + len(rp.extra)
	}
	minFD := max(low, reaper.MinFD)
	rel, report := [2]int{-1, -1}, [2]int{-1, -1}
	if !rp.release.IsNil() {
		if err := unix.Pipe2(rel[:], unix.O_CLOEXEC); err != nil {
			run.Release()
			return nil, err
		}
		defer unix.Close(rel[0])
		run.Set(rp.release, uint64(rel[0]))
		run.Set(rp.releaseW, uint64(rel[1]))
	}
	var dups []int
	ttyOwn, ttyChild := -1, -1
	defer func() {
		for _, fd := range dups {
			unix.Close(fd)
		}
		if ttyChild >= 0 {
			unix.Close(ttyChild)
		}
		if err != nil && ttyOwn >= 0 {
			unix.Close(ttyOwn)
		}
		if report[1] >= 0 {
			unix.Close(report[1])
		}
		if err != nil {
			if rel[1] >= 0 {
				unix.Close(rel[1])
			}
			if report[0] >= 0 {
				unix.Close(report[0])
			}
			run.Release()
		}
	}()
	if !rp.timens.IsNil() {
		off, err := linux.TimeNamespaceOffsets()
		if err != nil {
			return nil, err
		}
		copy(run.Bytes(rp.timens, 64), off)
		run.Set(rp.timensLen, uint64(len(off)))
	}
	if !rp.report.IsNil() {
		mfd, err := reaper.Open()
		if err != nil {
			return nil, &SetupError{Stage: "reaper", Err: err}
		}
		run.Set(rp.reaper, uint64(mfd))
		if err := unix.Pipe2(report[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return nil, err
		}
		w, err := unix.FcntlInt(uintptr(report[1]), unix.F_DUPFD_CLOEXEC, minFD)
		if err != nil {
			return nil, err
		}
		unix.Close(report[1])
		report[1] = w
		run.Set(rp.report, uint64(w))
	}
	if !rp.ttySock.IsNil() {
		if ttyOwn, ttyChild, err = ttySocket(minFD); err != nil {
			return nil, setupErr("tty", "", err)
		}
		run.Set(rp.ttySock, uint64(ttyChild))
	}
	if len(files) != low {
		return nil, fmt.Errorf("rawstart: %d descriptors for %d", len(files), low)
	}
	for i, fd := range files {
		if fd < low {
			d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, low)
			if err != nil {
				return nil, err
			}
			dups = append(dups, d)
			fd = d
		}
		if i < 3 {
			run.Set(rp.stdio[i], uint64(fd))
		} else {
			run.Set(rp.extra[i-3], uint64(fd))
		}
	}
	var cells []sysplan.Ref
	if rp.mounts != nil {
		if !rp.mounts.RootFD.IsNil() {
			cells = append(cells, rp.mounts.RootFD)
		}
		cells = append(cells, rp.mounts.OverlayFDs...)
		cells = append(cells, rp.mounts.BindFDs...)
		cells = append(cells, rp.mounts.NodesFD)
	}
	k := 0
	for _, c := range cells {
		if c.IsNil() {
			continue
		}
		if k >= len(sources) {
			return nil, errors.New("rawstart: fewer sources than the plan binds")
		}
		run.Set(c, uint64(sources[k]))
		k++
	}
	ca := sysplan.CloneArgs{Flags: flags, MinFD: minFD}
	if cgroupFD >= 0 {
		ca.Flags |= unix.CLONE_INTO_CGROUP
		ca.CgroupFD = cgroupFD
	}
	sharing.begin()
	pid, pidfd := 0, -1
	err = asNamespaceOwner(owner, func() (err error) {
		pid, pidfd, err = run.Start(ca)
		return err
	})
	if err != nil {
		var tt *taintedThread
		if errors.As(err, &tt) && pidfd >= 0 {
			// Started, but this thread is unfit: end the child.
			unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
			waitPidfd(pidfd)
			unix.Close(pidfd)
		}
		sharing.end()
		if errors.As(err, &tt) || errors.As(err, new(*SetupError)) {
			return nil, err
		}
		return nil, &SetupError{Stage: "clone", Errno: errnoOf(err), Err: err}
	}
	return &rawStart{pid: pid, pidfd: pidfd, run: run, relW: rel[1], report: report[0], cmd: -1, ttySock: ttyOwn}, nil
}

// cellValue is a value launchRaw stores in a cell before the clone.
type cellValue struct {
	ref sysplan.Ref
	v   uint64
}

// finish writes the child's id maps, calls before (placement in a cgroup
// by pid, the network's links) and releases the child, and waits until
// the command runs. On error the caller kills and reaps the child with
// abort.
func (rs *rawStart) finish(ctx context.Context, rp *rawProgram, id identity, before func(pid int) error) error {
	if id.viaHelpers {
		if err := writeMaps(ctx, rs.pid, id); err != nil {
			return rs.diedOr(err)
		}
	} else if err := writeIDMaps(rs.pid, id); err != nil {
		return rs.diedOr(setupErr("id-maps", "", err))
	}
	if before != nil {
		if err := before(rs.pid); err != nil {
			return rs.diedOr(err)
		}
	}
	if _, err := unix.Write(rs.relW, []byte{1}); err != nil {
		return rs.diedOr(setupErr("handshake", "", err))
	}
	werr := rs.run.Wait(ctx)
	if werr == nil {
		// The exec happened, or the child died: the child needs the pipe
		// no more (see the parent-death step).
		unix.Close(rs.relW)
		rs.relW = -1
	}
	if werr == nil || !errors.Is(werr, ctx.Err()) {
		rs.left()
	}
	if werr == nil {
		// The failure pipe also ends when the child dies before its exec,
		// killed from outside.
		if err := rs.died(); err != nil {
			return err
		}
	}
	if werr != nil {
		var se *sysplan.StepError
		if errors.As(werr, &se) {
			return &SetupError{Stage: se.Op, Path: se.Path, Errno: se.Errno, Err: se.Errno}
		}
		return setupErr("start", "", werr)
	}
	for i := 0; i < rp.nmarks; i++ {
		ts := rs.run.Bytes(rp.marks.Field(16*i), 16)
		t := *(*unix.Timespec)(unsafe.Pointer(&ts[0]))
		rs.marks = append(rs.marks, t.Nano())
	}
	if rs.ttySock >= 0 {
		// The command sent it before its exec, which has happened.
		tty, err := recvTTY(rs.ttySock)
		unix.Close(rs.ttySock)
		rs.ttySock = -1
		if err != nil {
			return err
		}
		rs.tty = tty
	}
	rs.landlocked = run0(rs.run.Get(rp.landlock))
	if !rp.kept.IsNil() && rp.command {
		// A command that has ended already took the reaper with it: then
		// there is nothing left to signal.
		if fd, err := pidfdGetfd(rs.pidfd, int(int32(rs.run.Get(rp.kept)))); err == nil {
			rs.cmd = fd
		}
	}
	rs.run.Release()
	return nil
}

func run0(v uint64) bool { return v == 0 }

// abort kills the child, and with it the sandbox it built, reaps it and
// closes what the owner holds of it: the undo of launchRaw, for a start
// that fails after the clone, finished or not.
func (rs *rawStart) abort() {
	if rs.relW >= 0 {
		unix.Close(rs.relW)
		rs.relW = -1
	}
	unix.PidfdSendSignal(rs.pidfd, unix.SIGKILL, nil, 0)
	waitPidfd(rs.pidfd)
	unix.Close(rs.pidfd)
	rs.pidfd = -1
	for _, fd := range []*int{&rs.report, &rs.cmd, &rs.ttySock} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if rs.tty != nil {
		rs.tty.Close()
		rs.tty = nil
	}
	rs.left()
	rs.run.Release()
}

// diedOr returns the error of a child that died before its exec (see
// died) when it did, else err: a step that failed because the child had
// been killed names the kill, not the step.
func (rs *rawStart) diedOr(err error) error {
	if derr := rs.died(); derr != nil {
		return derr
	}
	return err
}

// died returns a *SetupError saying how the child ended when it has died
// without running the reaper to its report (killed from outside, or with
// its group, before its exec), as Exec says of its processes; nil while
// it runs, and once the reaper it exec'd has reported. It waits, within
// a bound, for a child that is exiting to end, and leaves it unreaped.
func (rs *rawStart) died() error {
	if !pidfdExited(rs.pidfd, 0) && !procExiting(rs.pid) {
		return nil
	}
	what := "died"
	if pidfdExited(rs.pidfd, 10*time.Second) {
		if ws, ok := peekPidfd(rs.pidfd); ok {
			what = describeWait(ws)
		}
	}
	if rs.report >= 0 {
		fds := []unix.PollFd{{Fd: int32(rs.report), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, 0); n > 0 && fds[0].Revents&unix.POLLIN != 0 {
			return nil // the reaper ran, and reported the command's end
		}
	}
	return &SetupError{Stage: "start", Err: errors.New("pid 1 died as the sandbox started: " + what)}
}

// pidfdExited reports whether the process behind pidfd has exited,
// waiting up to d for it.
func pidfdExited(pidfd int, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for deadline := time.Now().Add(d); ; {
		// Never negative: poll waits for ever on a negative timeout, and
		// the time left is below zero as soon as a millisecond has passed
		// since a deadline of now (d = 0).
		n, err := unix.Poll(fds, pollTimeout(time.Until(deadline)))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

// peekPidfd returns how the exited child behind pidfd ended, leaving it
// to be reaped.
func peekPidfd(pidfd int) (unix.WaitStatus, bool) {
	var info unix.Siginfo
	for {
		_, _, errno := unix.Syscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(pidfd), uintptr(unsafe.Pointer(&info)), unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, false
		}
		break
	}
	runtime.KeepAlive(&info)
	return siginfoStatus(&info)
}

// siginfoStatus is the wait status of the child a waitid's info is of;
// false when it names none.
func siginfoStatus(info *unix.Siginfo) (unix.WaitStatus, bool) {
	// si_status follows si_pid and si_uid in the union.
	status := *(*int32)(unsafe.Add(unsafe.Pointer(info), 24))
	switch info.Code {
	case 1: // CLD_EXITED
		return unix.WaitStatus(status << 8), true
	case 2, 3: // CLD_KILLED, CLD_DUMPED
		return unix.WaitStatus(status), true
	}
	return 0, false
}

// procExiting reports whether the process pid is a zombie or exiting,
// from its /proc/PID/stat: its state, and PF_EXITING in its flags, the
// ninth field. A process that is gone counts as exiting.
func procExiting(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	if len(f) < 7 {
		return false
	}
	if f[0][0] == 'Z' || f[0][0] == 'X' {
		return true
	}
	flags, _ := strconv.ParseUint(string(f[6]), 10, 64)
	const pfExiting = 0x4
	return flags&pfExiting != 0
}

// left records that the child no longer shares the owner's memory.
func (rs *rawStart) left() {
	if !rs.gone {
		rs.gone = true
		sharing.end()
	}
}

// writeIDMaps writes the child's uid and gid maps as the init's clone
// would have.
func writeIDMaps(pid int, id identity) error {
	line := func(m []syscall.SysProcIDMap) []byte {
		var s strings.Builder
		for _, e := range m {
			fmt.Fprintf(&s, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
		}
		return []byte(s.String())
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), line(id.uidMap), 0); err != nil {
		return err
	}
	if !id.setGroups {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0); err != nil {
			return err
		}
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), line(id.gidMap), 0)
}

// waitPidfd waits for the child behind pidfd, which stays open.
func waitPidfd(pidfd int) (unix.WaitStatus, unix.Rusage) {
	var info unix.Siginfo
	var ru unix.Rusage
	for {
		_, _, errno := unix.Syscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(pidfd), uintptr(unsafe.Pointer(&info)), unix.WEXITED, uintptr(unsafe.Pointer(&ru)), 0)
		if errno != unix.EINTR {
			break
		}
	}
	runtime.KeepAlive(&info)
	// si_status follows si_pid and si_uid in the union.
	status := *(*int32)(unsafe.Add(unsafe.Pointer(&info), 24))
	if info.Code == 1 { // CLD_EXITED
		return unix.WaitStatus(status << 8), ru
	}
	return unix.WaitStatus(status), ru
}

// pidfdGetfd copies the descriptor fd of the process behind pidfd,
// close-on-exec.
func pidfdGetfd(pidfd, fd int) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), uintptr(fd), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	errors.As(err, &e)
	return e
}

// pollTimeout is the time left, for poll(2): in whole milliseconds, and 0,
// not the "for ever" of a negative count, once none is left.
func pollTimeout(left time.Duration) int {
	return int(max(0, left.Milliseconds()))
}
