package sandbox

import (
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
// by f starts pinned there (see pinCPU). It returns the CPUs the thread may
// run on otherwise, which the sandbox's command gets back.
func onSpawner(f func()) []int {
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
	healthy := true
	s.jobs <- func() {
		cpus, healthy = pinCPU(f)
		close(done)
		if !healthy {
			// This thread can no longer be trusted to fork with the right
			// affinity; end it (it is locked, so its thread ends too).
			runtime.Goexit()
		}
	}
	<-done
	if healthy {
		spawnMu.Lock()
		idle = append(idle, s)
		spawnMu.Unlock()
	}
	return cpus
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

func (s *spawner) loop() {
	// Never unlocked: this thread must outlive every process it forks.
	runtime.LockOSThread()
	for f := range s.jobs {
		f()
	}
}
