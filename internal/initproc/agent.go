//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
)

// agent is the init's life after setup, as the sandbox's pid 1. Its main
// goroutine, on the locked thread that dropped every privilege, serves the
// parent's requests and forks every process of the sandbox; a second
// goroutine reaps. The sandbox ends when its own command exits (everything
// else is killed then), when the parent closes it, or when the parent is
// gone.
//
// Signals reach the sandbox's processes only through the parent's requests.
// The init does not use os/signal: enabling a signal costs two thread
// handoffs in the runtime, and enabling all of them tripled the init's CPU
// time. A catchable signal sent to the init itself, from the host or by
// root in the sandbox, ends it, and the sandbox with it.
type agent struct {
	s *stage

	// mu guards the fields below. It is held across a fork and the record
	// of the new process, so that the reaper, which may reap the process
	// before the fork returns, always finds it.
	mu       sync.Mutex
	ids      map[int]int64 // pid → the ID of the request that started it
	pids     map[int64]int // and back
	mainPid  int           // the sandbox's own command, or 0
	ending   bool          // the command has exited or the parent closed
	status   unix.WaitStatus
	children chan struct{} // poked when there may be something to reap
}

func newAgent(s *stage) *agent {
	return &agent{
		s:        s,
		ids:      map[int]int64{},
		pids:     map[int64]int{},
		children: make(chan struct{}, 1),
	}
}

func (a *agent) poke() {
	select {
	case a.children <- struct{}{}:
	default:
	}
}

// startMain starts the sandbox's own command, if it has one, with the
// init's standard streams and the extra files that follow the socket. It
// returns its pid inside the sandbox, or 0.
func (a *agent) startMain() (int, error) {
	spec := a.s.spec
	if a.s.argv0 == "" {
		return 0, nil
	}
	files := []int{0, 1, 2}
	if a.s.ttyPeer >= 0 {
		files = []int{a.s.ttyPeer, a.s.ttyPeer, a.s.ttyPeer}
	}
	for i := 0; i < spec.ExtraFiles; i++ {
		files = append(files, proto.InitFD+1+i)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	pid, err := a.fork(a.s.argv0, spec.Args, spec.Env, spec.Dir, spec.UID, spec.GID, files, a.s.ttyPeer >= 0)
	if errors.Is(err, unix.EINVAL) && spec.TimeNS {
		// Kernels before 6.x refuse a vfork (CLONE_VM), which Go uses, into
		// a new time namespace.
		return 0, step("time-namespace", "", err)
	}
	if err != nil {
		return 0, step("exec", a.s.argv0, err)
	}
	a.mainPid = pid
	a.ids[pid], a.pids[0] = 0, pid
	return pid, nil
}

// fork starts a process from the calling thread, which must be the locked
// one whose privileges were dropped. With ctty, files[0] becomes the
// process's controlling terminal. The caller holds a.mu.
func (a *agent) fork(argv0 string, args, env []string, dir string, uid, gid int, files []int, ctty bool) (int, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = uintptr(f)
	}
	if err := enterDir(dir); err != nil {
		return 0, err
	}
	pid, err := syscall.ForkExec(argv0, args, &syscall.ProcAttr{
		Env:   env,
		Files: fds,
		Sys: &syscall.SysProcAttr{
			AmbientCaps: a.s.ambientCaps(uid),
			Setsid:      true,
			Setctty:     ctty, // Ctty 0: the child's descriptor 0
			Credential: &syscall.Credential{
				Uid:         uint32(uid),
				Gid:         uint32(gid),
				NoSetGroups: !a.s.spec.SetGroups,
				Groups:      a.s.groups(),
			},
		},
	})
	if err == nil {
		// A soft limit is no bound a process cannot lift itself (up to
		// the hard one), so setting it once the process runs leaves
		// nothing open.
		for _, rl := range a.s.spec.Rlimits {
			if rl.Cur != rl.Max {
				unix.Prlimit(pid, rl.Resource, &unix.Rlimit{Cur: rl.Cur, Max: rl.Max}, nil)
			}
		}
		a.poke()
	}
	return pid, err
}

// run serves the parent and never returns.
func (a *agent) run() {
	go a.reap()
	for {
		b, files, err := proto.RecvFiles(a.s.fd)
		if err != nil {
			os.Exit(137) // the parent is gone: the sandbox goes with it
		}
		var req proto.Request
		if req.UnmarshalBinary(b) != nil {
			closeFDs(files)
			continue
		}
		switch {
		case req.Exec != nil:
			a.exec(req.Exec, files)
		case req.Signal > 0:
			a.mu.Lock()
			pid, ok := a.pids[req.Target]
			a.mu.Unlock()
			if ok {
				unix.Kill(pid, unix.Signal(req.Signal))
			}
		case req.Close:
			a.end()
		}
		closeFDs(files)
	}
}

// exec starts the process of an Exec request with the files that came with
// it (standard input, output, error, then extra files) and reports.
func (a *agent) exec(x *proto.Exec, files []int) {
	report := proto.Report{Kind: proto.Failed, ID: x.ID, Stage: "exec", Path: x.Path}
	argv0, err := lookPath(x.Path, x.Env)
	master := -1
	if err == nil && x.TTY {
		// The terminal is the process's standard streams; what came with
		// the request are its extra files.
		var peer int
		if master, peer, err = openPTY(x.TTYRows, x.TTYCols, x.UID, x.GID); err == nil {
			defer unix.Close(peer)
			defer unix.Close(master)
			files = append([]int{peer, peer, peer}, files...)
		}
	}
	if err == nil && len(files) < 3 {
		err = errors.New("exec request without its standard streams")
	}
	if err == nil {
		a.mu.Lock()
		if a.ending {
			// ESHUTDOWN, which no exec returns, tells the parent that the
			// sandbox has finished rather than that the command failed.
			err = fmt.Errorf("the sandbox is ending: %w", unix.ESHUTDOWN)
		} else {
			var pid int
			if pid, err = a.fork(argv0, x.Args, x.Env, x.Dir, x.UID, x.GID, files, x.TTY); err == nil {
				a.ids[pid], a.pids[x.ID] = x.ID, pid
				report = proto.Report{Kind: proto.Started, ID: x.ID, Pid: pid}
			} else {
				report.Path = argv0
			}
		}
		a.mu.Unlock()
	}
	if err != nil {
		report.Message = err.Error()
		var errno unix.Errno
		if errors.As(err, &errno) {
			report.Errno = int(errno)
		}
	}
	if report.Kind == proto.Started && master >= 0 {
		proto.SendFiles(a.s.fd, &report, []int{master})
		return
	}
	proto.Send(a.s.fd, &report)
}

// end kills every process of the sandbox; the reaper reports and exits
// once they are all gone.
func (a *agent) end() {
	a.mu.Lock()
	a.ending = true
	a.mu.Unlock()
	unix.Kill(-1, unix.SIGKILL)
	a.poke()
}

// reap waits for every child: it reports the end of each Exec'd process,
// ends the sandbox when its own command exits, and when the sandbox is
// ending and nothing is left, reports the total and exits.
func (a *agent) reap() {
	for {
		var ws unix.WaitStatus
		var ru unix.Rusage
		pid, err := unix.Wait4(-1, &ws, 0, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil { // ECHILD: nothing to reap now
			a.mu.Lock()
			ending := a.ending
			a.mu.Unlock()
			if ending {
				a.finish()
			}
			<-a.children
			continue
		}
		a.mu.Lock()
		id, ok := a.ids[pid]
		delete(a.ids, pid)
		if ok {
			delete(a.pids, id)
		}
		isMain := ok && id == 0 && pid == a.mainPid
		if isMain {
			a.status, a.ending = ws, true
		}
		a.mu.Unlock()
		switch {
		case isMain:
			// Everything else in the sandbox ends with its command.
			unix.Kill(-1, unix.SIGKILL)
		case ok:
			proto.Send(a.s.fd, &proto.Report{
				Kind: proto.Exited, ID: id, Status: int(ws),
				UserNanos: ru.Utime.Nano(), SysNanos: ru.Stime.Nano(), MaxRSSKiB: int64(ru.Maxrss),
			})
		}
	}
}

// finish reports how the sandbox ended, with the CPU time of every process
// the init reaped, and exits, which tears the pid namespace down.
func (a *agent) finish() {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_CHILDREN, &ru)
	kind := proto.Exited
	if a.mainPid == 0 {
		kind = proto.Closed
	}
	proto.Send(a.s.fd, &proto.Report{
		Kind:      kind,
		Status:    int(a.status),
		UserNanos: ru.Utime.Nano(),
		SysNanos:  ru.Stime.Nano(),
		MaxRSSKiB: int64(ru.Maxrss),
	})
	os.Exit(0)
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// groups returns the Spec's supplementary groups as ForkExec takes them.
func (s *stage) groups() []uint32 {
	var g []uint32
	for _, id := range s.spec.Groups {
		g = append(g, uint32(id))
	}
	return g
}
