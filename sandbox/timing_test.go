//go:build linux

package sandbox

import (
	"testing"
	"time"
)

// latenessProbe measures, while a test runs, how late this process's
// timers fire and how many of them fire: the delay that the machine's
// load adds to every goroutine (the limits' watchdogs too), and the pace
// the process keeps. Timed assertions build their tolerance from it
// instead of from a constant that a loaded machine can break.
type latenessProbe struct {
	stop  chan struct{}
	done  chan struct{}
	start time.Time
	late  time.Duration // the most one 1 ms sleep overran
	ticks int64
	wall  time.Duration
}

// probeTick is the sleep the probe times.
const probeTick = time.Millisecond

func startLatenessProbe(t *testing.T) *latenessProbe {
	p := &latenessProbe{stop: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				p.wall = time.Since(p.start)
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(probeTick)
			p.late = max(p.late, time.Since(t0)-probeTick)
			p.ticks++
		}
	}()
	t.Cleanup(p.Stop)
	return p
}

// Stop ends the probe; a second call does nothing.
func (p *latenessProbe) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// rate is the ticks per second the probe managed.
func (p *latenessProbe) rate() float64 {
	if p.wall <= 0 {
		return 0
	}
	return float64(p.ticks) / p.wall.Seconds()
}
