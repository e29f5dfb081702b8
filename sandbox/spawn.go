package sandbox

import (
	"runtime"
	"sync"
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

// onSpawner runs f on a spawner's thread and returns when f has.
func onSpawner(f func()) {
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
	s.jobs <- func() { f(); close(done) }
	<-done
	spawnMu.Lock()
	idle = append(idle, s)
	spawnMu.Unlock()
}

func (s *spawner) loop() {
	// Never unlocked: this thread must outlive every process it forks.
	runtime.LockOSThread()
	for f := range s.jobs {
		f()
	}
}
