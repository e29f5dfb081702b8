//go:build linux

package sandbox

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/netns"
)

// A sandbox without a network needs a network namespace of its own with
// only lo in it. Made inside the start's clone, it is most of the clone's
// cost (the kernel sets up the namespace's protocol state); made ahead, on
// another thread, it costs the start a setns on the spawner's thread.
//
// So a process that runs as root can keep a few such namespaces ready (lo
// up, nothing else changed), made by a thread at the SCHED_IDLE policy,
// and a start takes one when one is ready, else the clone makes one as
// before. Each namespace serves one sandbox and goes with it: nothing is
// reused. A pooled namespace belongs to the host's user namespace, not the
// sandbox's, so root inside holds no capability over it; a sandbox that
// keeps capabilities (Security.Capabilities) or mounts /sys (which needs
// them over the namespace) makes its own, as do the sandboxes of an
// ordinary user, who cannot make namespaces outside one.
//
// The pool is off by default: measured side by side on the 2-core machine
// the project is built on, it took 0.3 ms off the clone but added as much
// to the rest of the start (the refill contends for the CPUs), so the
// median start did not change, and it cost 5 to 10 % more CPU per sandbox
// (see the README's Performance section). STOCKADE_NETNS_POOL=1 turns it
// on, for hosts with CPUs to spare. It is made in the background at a
// process's second start without a network; DefaultNetworking().Close()
// closes it
// (later starts make it anew). Namespace reuse (Network.ReuseNamespace)
// is what saves the namespace's cost.
var isolated struct {
	mu     sync.Mutex
	starts int // starts that asked, until the pool is made
	pool   *netns.Pool
	taken  atomic.Int64 // namespaces taken from the pool, for tests
}

const (
	netnsPoolEnv     = "STOCKADE_NETNS_POOL"
	isolatedPoolSize = 4
)

// takeIsolatedNS returns a ready namespace for a sandbox of cfg without a
// network, or nil when the clone must make one.
func takeIsolatedNS(cfg *Config) *netns.NS {
	if len(cfg.Security.Capabilities) > 0 || cfg.Security.Sysfs || os.Getenv(netnsPoolEnv) != "1" || unix.Geteuid() != 0 {
		return nil
	}
	return fromPool()
}

// fromPool takes a namespace from the pool if one is ready.
func fromPool() *netns.NS {
	isolated.mu.Lock()
	p := isolated.pool
	if p == nil {
		isolated.starts++
		if isolated.starts == 2 {
			go makeIsolatedPool()
		}
	}
	isolated.mu.Unlock()
	if p == nil {
		return nil
	}
	ns := p.TryGet()
	if ns != nil {
		isolated.taken.Add(1)
	}
	return ns
}

// makeIsolatedPool makes the pool, if the host lets us make namespaces:
// one made here tells, since the pool would otherwise retry in the
// background for good.
func makeIsolatedPool() {
	ns, err := netns.NewLoopback()
	if err != nil {
		return
	}
	ns.Close()
	p := netns.NewLoopbackPool(isolatedPoolSize)
	isolated.mu.Lock()
	defer isolated.mu.Unlock()
	if isolated.starts < 2 {
		// Closed meanwhile.
		p.Close()
		return
	}
	isolated.pool = p
}

// reusable holds the namespaces that sandboxes with
// Network.ReuseNamespace gave back, for the next such sandbox.
var reusable struct {
	mu     sync.Mutex
	nss    []*netns.NS
	reused atomic.Int64 // namespaces taken a second time or more, for tests
}

// reusableMax bounds the namespaces kept for reuse: as many as sandboxes
// with Network.ReuseNamespace ran at once, up to this.
const reusableMax = 64

// takeReusableNS returns a namespace that an earlier sandbox gave back,
// else a fresh one (from the pool if one is ready), or nil when the owner
// cannot make one outside the sandbox (an ordinary user): the clone makes
// it then.
func takeReusableNS() *netns.NS {
	if unix.Geteuid() != 0 {
		return nil
	}
	reusable.mu.Lock()
	if n := len(reusable.nss); n > 0 {
		ns := reusable.nss[n-1]
		reusable.nss = reusable.nss[:n-1]
		reusable.mu.Unlock()
		reusable.reused.Add(1)
		return ns
	}
	reusable.mu.Unlock()
	if ns := fromPool(); ns != nil {
		return ns
	}
	ns, err := netns.NewLoopback()
	if err != nil {
		return nil
	}
	return ns
}

// giveBackNS keeps ns, whose sandbox has ended, for the next sandbox that
// reuses namespaces. Every process that was in it is gone: pid 1 has been
// reaped, and its pid namespace ended only once every process in it had.
func giveBackNS(ns *netns.NS) {
	reusable.mu.Lock()
	if len(reusable.nss) < reusableMax {
		reusable.nss = append(reusable.nss, ns)
		ns = nil
	}
	reusable.mu.Unlock()
	if ns != nil {
		ns.Close()
	}
}

// closeIsolatedPool closes the pool and the namespaces still in it, and
// those kept for reuse.
func closeIsolatedPool() error {
	isolated.mu.Lock()
	p := isolated.pool
	isolated.pool, isolated.starts = nil, 0
	isolated.mu.Unlock()
	reusable.mu.Lock()
	nss := reusable.nss
	reusable.nss = nil
	reusable.mu.Unlock()
	var errs []error
	for _, ns := range nss {
		errs = append(errs, ns.Close())
	}
	if p != nil {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
