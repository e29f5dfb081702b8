package sandbox

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The init stage is started with a parent-death signal, which the kernel
// sends when the *thread* that forked it exits, not the process. Go may end
// a thread whenever a goroutine exits while locked to it, so a sandbox
// forked from an arbitrary goroutine could be killed long before its owner
// dies. Every fork therefore happens on a spawner: a goroutine locked to its
// thread for the life of the process, which never exits.

type spawner struct {
	jobs chan func()
}

var (
	spawnMu sync.Mutex
	idle    []*spawner
)

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
		go s.loop()
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
		// Come back to the process's network namespace afterwards (a
		// spawner thread starts in it, like every thread the runtime makes
		// for unlocked goroutines).
		home, openErr := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
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

func (s *spawner) loop() {
	// Never unlocked: this thread must outlive every process it forks,
	// unless it ends for good (below), which takes its thread with it.
	runtime.LockOSThread()
	for f := range s.jobs {
		if f == nil {
			return // exits while locked: the runtime ends the thread
		}
		f()
	}
}
