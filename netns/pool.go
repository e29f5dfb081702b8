//go:build linux

package netns

import (
	"fmt"
	"sync"
	"time"
)

// Pool keeps up to a fixed number of ready namespaces (made by New, lo up)
// so that taking one costs a channel receive instead of the kernel's
// namespace creation (about 0.6 ms). A background goroutine refills it.
// A Pool is safe for concurrent use.
type Pool struct {
	ready chan *NS
	wake  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup

	// mu guards closed.
	mu     sync.Mutex
	closed bool

	// newNS makes one namespace; tests replace it.
	newNS func() (*NS, error)
}

// NewPool returns a pool that keeps size namespaces ready (at least one)
// and starts filling it in the background. Close it to stop the refill and
// release the namespaces it holds.
func NewPool(size int) *Pool {
	return newPool(size, New)
}

// NewLoopbackPool is NewPool for namespaces made as NewLoopback makes
// them, by a thread at the SCHED_IDLE policy: the refill takes no CPU time
// from anything else.
func NewLoopbackPool(size int) *Pool {
	return newPool(size, func() (*NS, error) { return makeNS(loopbackUp, true) })
}

func newPool(size int, newNS func() (*NS, error)) *Pool {
	size = max(size, 1)
	p := &Pool{
		ready: make(chan *NS, size),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		newNS: newNS,
	}
	p.wg.Add(1)
	go p.refill()
	return p
}

// Get returns a ready namespace, or makes one on the spot when the pool is
// empty, and asks for a refill. The caller owns the namespace and closes it.
func (p *Pool) Get() (*NS, error) {
	if ns := p.TryGet(); ns != nil {
		return ns, nil
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("netns: take namespace from pool: %w", ErrClosed)
	}
	return p.newNS()
}

// TryGet returns a ready namespace, or nil when none is ready or the pool
// is closed; it never makes one on the spot. It asks for a refill.
func (p *Pool) TryGet() *NS {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil
	}
	select {
	case ns := <-p.ready:
		p.poke()
		return ns
	default:
		p.poke()
		return nil
	}
}

// Ready reports how many namespaces are ready now.
func (p *Pool) Ready() int { return len(p.ready) }

func (p *Pool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// refill keeps the pool full until Close. After a failure it waits before
// trying again, doubling the wait up to a second, so that a host that
// refuses namespaces is not hammered; Get then reports the error itself.
func (p *Pool) refill() {
	defer p.wg.Done()
	backoff := time.Duration(0)
	for {
		for len(p.ready) < cap(p.ready) {
			select {
			case <-p.done:
				return
			default:
			}
			ns, err := p.newNS()
			if err != nil {
				backoff = min(max(2*backoff, 10*time.Millisecond), time.Second)
				break
			}
			backoff = 0
			select {
			case p.ready <- ns:
			default:
				ns.Close() // Cannot happen: this goroutine is the only sender.
			}
		}
		var retry <-chan time.Time
		if backoff > 0 {
			retry = time.After(backoff)
		}
		select {
		case <-p.done:
			return
		case <-p.wake:
		case <-retry:
		}
	}
}

// Close stops the refill and closes every namespace still in the pool.
// Namespaces already handed out are their takers' to close. Closing twice
// is not an error.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.done)
	p.wg.Wait()
	var first error
	for {
		select {
		case ns := <-p.ready:
			if err := ns.Close(); err != nil && first == nil {
				first = err
			}
		default:
			return first
		}
	}
}
