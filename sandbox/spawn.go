//go:build linux

package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The init stage is started with a parent-death signal, which the kernel
// sends when the *thread* that forked it exits, not the process. Go may end
// a thread whenever a goroutine exits while locked to it, so a sandbox
// forked from an arbitrary goroutine could be killed long before its owner
// dies. Every fork therefore happens on a spawner: a goroutine locked to its
// thread, which exits only once no process it forked is left.
//
// A burst of concurrent starts makes as many spawners; afterwards at most
// maxIdleSpawners stay, and the others are retired by a sweep once the
// processes they forked have been reaped (see sweepSpawners), so that the
// owner's threads come back down.

type spawner struct {
	jobs chan func()
	tid  int // the thread's id, once the loop runs
}

var (
	spawnMu  sync.Mutex
	idle     []*spawner
	sweeping bool // a sweep is scheduled
)

// maxIdleSpawners is how many idle spawners stay after a burst: as many as
// there are starts at once in a steady stream (a Pool starts GOMAXPROCS).
func maxIdleSpawners() int { return max(2, runtime.GOMAXPROCS(0)) }

// sweepInterval is how often the sweep looks for spawners to retire while
// there are more than maxIdleSpawners idle.
var sweepInterval = 500 * time.Millisecond

// onSpawner runs f on a spawner's thread and returns when f has. While f
// runs, the thread is pinned to the CPU it is on, so that a process forked
// by f starts pinned there (see pinCPU), and, when netns is not negative,
// it is in that network namespace, so that a process forked by f starts in
// it. It returns the CPUs the thread may run on otherwise, which the
// sandbox's command gets back.
func onSpawner(netns int, f func() error) ([]int, error) {
	spawnMu.Lock()
	var s *spawner
	if n := len(idle); n > 0 {
		s, idle = idle[n-1], idle[:n-1]
	}
	spawnMu.Unlock()
	if s == nil {
		s = &spawner{jobs: make(chan func())}
		started := make(chan struct{})
		go s.loop(started)
		<-started
	}
	done := make(chan struct{})
	var cpus []int
	var err error
	healthy := true
	s.jobs <- func() {
		defer close(done)
		if netns < 0 {
			cpus, healthy = pinCPU(func() { err = f() })
			return
		}
		// Come back to the thread's own network namespace afterwards: the
		// process's, as for every thread the runtime makes for unlocked
		// goroutines. Not /proc/self's: that is the main thread's, which
		// may be another spawner's, inside a sandbox's namespace now.
		home, openErr := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if openErr != nil {
			err = fmt.Errorf("open the process's network namespace: %w", openErr)
			return
		}
		defer unix.Close(home)
		if setErr := unix.Setns(netns, unix.CLONE_NEWNET); setErr != nil {
			err = fmt.Errorf("enter network namespace: %w", setErr)
			return
		}
		cpus, healthy = pinCPU(func() { err = f() })
		if unix.Setns(home, unix.CLONE_NEWNET) != nil {
			healthy = false
		}
	}
	<-done
	var tt *taintedThread
	if errors.As(err, &tt) {
		healthy, err = false, tt.err
	}
	if healthy {
		spawnMu.Lock()
		idle = append(idle, s)
		if len(idle) > maxIdleSpawners() && !sweeping {
			sweeping = true
			time.AfterFunc(sweepInterval, sweepSpawners)
		}
		spawnMu.Unlock()
	} else {
		// The thread can no longer be trusted to fork with the right
		// affinity or in the right namespace; end it.
		s.jobs <- nil
	}
	return cpus, err
}

// pinCPU runs f with the calling thread's affinity narrowed to the CPU it
// runs on, restores the affinity, and returns it as a list of CPUs (nil
// when it could not narrow it). It reports false when the affinity could
// not be restored.
//
// The init stage is a Go program: its threads would otherwise spread over
// every CPU at once, and then every copy-on-write fault of its start-up
// needs a TLB shootdown by inter-processor interrupt, and every handoff
// between its threads a cross-CPU wakeup. On a virtual machine those
// interrupts cost more than the work. Kept on one CPU, the init starts
// markedly faster; it widens its own affinity again before it starts the
// command.
func pinCPU(f func()) ([]int, bool) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		f()
		return nil, true
	}
	var cpu uint32
	if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); errno != 0 || !all.IsSet(int(cpu)) {
		f()
		return nil, true
	}
	var one unix.CPUSet
	one.Set(int(cpu))
	if unix.SchedSetaffinity(0, &one) != nil {
		f()
		return nil, true
	}
	f()
	if err := unix.SchedSetaffinity(0, &all); err != nil {
		return nil, false
	}
	var cpus []int
	for c := 0; c < len(all)*64; c++ {
		if all.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, true
}

// taintedThread is the error of a job that left its spawner's thread
// unfit for further forks; the thread is ended.
type taintedThread struct{ err error }

func (e *taintedThread) Error() string { return e.err.Error() }

// sweepSpawners retires idle spawners beyond maxIdleSpawners whose
// thread has no child left, and comes back later while there are more.
// A spawner it looks at is taken out of the idle list meanwhile, so that
// no start can use it as it ends.
func sweepSpawners() {
	spawnMu.Lock()
	defer spawnMu.Unlock()
	keep := idle[:0]
	excess := len(idle) - maxIdleSpawners()
	for _, s := range idle {
		// The oldest first: the most recently used stay warm.
		if excess > 0 && !s.hasChildren() {
			s.jobs <- nil
			excess--
			continue
		}
		keep = append(keep, s)
	}
	clear(idle[len(keep):])
	idle = keep
	if len(idle) > maxIdleSpawners() {
		time.AfterFunc(sweepInterval, sweepSpawners)
	} else {
		sweeping = false
	}
}

// hasChildren reports whether a process forked by the spawner's thread is
// still there (running, or a zombie not yet reaped): the thread must not
// exit before, or its parent-death signal would kill it. It reports true
// when it cannot tell (a kernel without /proc/PID/task/TID/children).
func (s *spawner) hasChildren() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/children", s.tid))
	return err != nil || len(bytes.TrimSpace(b)) > 0
}

func (s *spawner) loop(started chan<- struct{}) {
	// Never unlocked: this thread must outlive every process it forks,
	// unless it ends for good (below), which takes its thread with it.
	runtime.LockOSThread()
	s.tid = unix.Gettid()
	close(started)
	for f := range s.jobs {
		if f == nil {
			return // exits while locked: the runtime ends the thread
		}
		f()
	}
}

// awaitExit waits until the process pid, a child not yet reaped, has
// exited, through the runtime's poller on a pidfd, so that the Wait that
// follows returns at once. Wait alone blocks a thread in waitid for the
// life of the sandbox, and the Go runtime keeps every thread it has made:
// a burst of concurrent sandboxes would leave as many threads behind. It
// returns at once when it cannot poll, and Wait then blocks as before.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// The pidfd reads ready once the process has exited. Look at it each
	// time rather than count on the poller: the wait forgets a readiness
	// the poller took before it began, and a pidfd that is ready stays so
	// without another edge, so a process that exited early would never be
	// seen.
	rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			// On an error, Wait blocks as it would without awaitExit.
			return err != nil || n > 0
		}
	})
}
