package netns

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// dialTimeout bounds how long a forwarded connection waits for the
// sandbox's server to accept.
const dialTimeout = 10 * time.Second

// proxy forwards the connections that arrive on a host listener to a port
// on the loopback of a sandbox's namespace. It runs in the owner's process:
// every connection costs two sockets and two goroutines there, and the
// sandbox sees its clients as 127.0.0.1.
type proxy struct {
	l      net.Listener
	ns     *NS
	target string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards conns.
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startProxy(l net.Listener, ns *NS, port uint16) *proxy {
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{
		l:      l,
		ns:     ns,
		target: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))),
		ctx:    ctx,
		cancel: cancel,
		conns:  map[net.Conn]struct{}{},
	}
	p.wg.Add(1)
	go p.serve()
	return p
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			// A transient failure such as running out of descriptors:
			// wait a little rather than spin.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track records c so that close can end it, and reports false when the
// proxy is closing.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *proxy) forward(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	server, err := p.ns.Dial(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		return // The client sees the connection closed.
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	done := make(chan struct{})
	go func() {
		pipe(server, client)
		close(done)
	}()
	pipe(client, server)
	<-done
}

// pipe copies src to dst, then passes the end of the stream on.
func pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}

// addr returns the host address the proxy listens on.
func (p *proxy) addr() net.Addr { return p.l.Addr() }

// close stops accepting, ends every forwarded connection and waits for the
// proxy's goroutines.
func (p *proxy) close() {
	p.cancel()
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
