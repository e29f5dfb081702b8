//go:build linux

package sandbox

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Pool keeps sandboxes ready, so each Run costs an Exec; concurrency-safe.
type Pool struct {
	cfg     Config
	timeout time.Duration // the Config's Timeout, for each Run
	ready   chan *Sandbox

	ctx    context.Context // cancelled by Close, ends refills under way
	cancel context.CancelFunc
	wake   chan struct{}
	wg     sync.WaitGroup // refill workers and sandboxes being closed

	mu     sync.Mutex // guards the fields below
	closed bool
	err    error // why the last start failed, if it did
}

// NewPool returns a pool keeping n sandboxes of cfg, without Args, ready.
func NewPool(cfg Config, n int) (*Pool, error) {
	if len(cfg.Args) > 0 {
		return nil, configErr("Args", "must be empty for a pool: each Run brings its command")
	}
	if n < 1 || n > MaxPoolSize {
		return nil, configErr("n", "a pool keeps from 1 to %d sandboxes ready, not %d", MaxPoolSize, n)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Network.checkPool(); err != nil {
		return nil, err
	}
	p := &Pool{cfg: cfg.clone(), ready: make(chan *Sandbox, n), wake: make(chan struct{}, 1)}
	p.timeout, p.cfg.Timeout = cfg.Timeout, 0
	p.ctx, p.cancel = context.WithCancel(context.Background())
	// As many workers as the machine runs threads at once: a start is
	// mostly the kernel's and the new process's work, not ours.
	for range min(n, runtime.GOMAXPROCS(0)) {
		p.wg.Add(1)
		go p.refill()
	}
	return p, nil
}

// refill keeps the pool full until it is closed.
func (p *Pool) refill() {
	defer p.wg.Done()
	backoff := time.Millisecond
	for {
		select {
		case <-p.ctx.Done():
			return
		default:
		}
		if len(p.ready) == cap(p.ready) {
			select {
			case <-p.wake:
			case <-p.ctx.Done():
				return
			}
			continue
		}
		sb, err := p.start()
		if err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
			select {
			case <-time.After(backoff):
				backoff = min(2*backoff, time.Second)
			case <-p.ctx.Done():
				return
			}
			continue
		}
		backoff = time.Millisecond
		select {
		case p.ready <- sb:
		default:
			p.discard(sb) // another worker filled the last place
		}
	}
}

// start starts a sandbox for the pool. Close interrupts a start under
// way, but must not end a sandbox that has started: a Run may be using it,
// and runs under way finish first.
func (p *Pool) start() (*Sandbox, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(p.ctx))
	stop := context.AfterFunc(p.ctx, cancel)
	sb := New(p.cfg)
	if err := sb.Start(ctx); err != nil {
		cancel()
		return nil, err
	}
	if !stop() {
		// Close came as the start ended, and the cancel ends the sandbox.
		sb.Close()
		return nil, ErrPoolClosed
	}
	return sb, nil
}

// discard closes sb in the background; Close waits for it.
func (p *Pool) discard(sb *Sandbox) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		sb.Close()
	}()
}

// Run runs cmd in a fresh sandbox from the pool, as Exec does.
func (p *Pool) Run(ctx context.Context, cmd Cmd) (*Result, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	// Counted until the sandbox is handed to discard, so that Close waits
	// for runs under way and the sandboxes they used.
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	var sb *Sandbox
	select {
	case sb = <-p.ready:
	default:
		var err error
		if sb, err = p.start(); err != nil {
			if p.ctx.Err() != nil {
				return nil, ErrPoolClosed
			}
			return nil, err
		}
	}
	if cmd.Timeout == 0 {
		cmd.Timeout = p.timeout
	}
	// Throw the sandbox away and refill only once the run is over, so that
	// neither competes with it for the CPUs.
	defer func() {
		p.discard(sb)
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}()
	return sb.Exec(ctx, cmd)
}

// Output is Run with the terms of Sandbox.Output; cmd.Stdout must be nil.
func (p *Pool) Output(ctx context.Context, cmd Cmd) ([]byte, error) {
	if cmd.Stdout != nil {
		return nil, configErr("Cmd.Stdout", "already set; Output collects it")
	}
	var stdout lockedBuffer
	var stderr *headTail
	cmd.Stdout = &stdout
	if cmd.Stderr == nil {
		stderr = &headTail{}
		cmd.Stderr = stderr
	}
	_, err := p.Run(ctx, cmd)
	return stdout.Bytes(), withStderr(err, stderr)
}

// CombinedOutput is Output with standard error in the same stream.
func (p *Pool) CombinedOutput(ctx context.Context, cmd Cmd) ([]byte, error) {
	switch {
	case cmd.Stdout != nil:
		return nil, configErr("Cmd.Stdout", "already set; CombinedOutput collects it")
	case cmd.Stderr != nil:
		return nil, configErr("Cmd.Stderr", "already set; CombinedOutput collects it")
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_, err := p.Run(ctx, cmd)
	return out.Bytes(), err
}

// Ready reports how many sandboxes are waiting in the pool.
func (p *Pool) Ready() int { return len(p.ready) }

// Err returns why the last start of a sandbox for the pool failed, or nil.
func (p *Pool) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close closes the pool's sandboxes and waits for runs under way.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
drain:
	for {
		select {
		case sb := <-p.ready:
			p.discard(sb)
		default:
			break drain
		}
	}
	p.wg.Wait()
	// A worker may have put a sandbox in after the drain above.
	for len(p.ready) > 0 {
		(<-p.ready).Close()
	}
	return nil
}
