//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by operations on a namespace, pool, network or
// manager that was already closed.
var ErrClosed = errors.New("netns: closed")

// NS is a network namespace held by a file descriptor. The namespace lives
// at least as long as the descriptor is open, and longer while a process is
// inside it or a socket created in it is open.
//
// A namespace made by New is owned by the caller's user namespace (the
// host's, for a program running as root). A sandbox that joins it from its
// own user namespace holds no capability over it: it cannot change its
// addresses, routes or links, bring lo down, or open raw sockets, which is
// what keeps the setup made here in force.
//
// An NS is safe for concurrent use.
type NS struct {
	// mu guards fd: Close takes it for writing, everything that uses fd
	// takes it for reading, so that a closed number is never reused by
	// mistake.
	mu sync.RWMutex
	fd int // -1 once closed
}

// New creates a network namespace with lo up and returns it. The caller's
// threads never change namespace: the namespace is made on a locked thread
// that unshares, opens the namespace and moves back, and that thread is
// discarded if moving back fails.
//
// Inside the new namespace, ports below 1024 may be bound and ICMP echo
// sockets opened by any user (the namespace belongs to one sandbox alone),
// and IPv4 forwarding is off even when the host forwards.
//
// New needs CAP_SYS_ADMIN in the caller's user namespace: in practice, root.
func New() (*NS, error) { return makeNS(prepare, false) }

// NewLoopback creates a network namespace with lo up and nothing else
// changed: what a sandbox would see had it made its own namespace, for a
// sandbox without a network. Like New, it needs root.
func NewLoopback() (*NS, error) { return makeNS(loopbackUp, false) }

// makeNS makes a namespace and runs prepare in it, on a thread of its own;
// idle runs that thread at the SCHED_IDLE policy, so that the work is done
// only when a CPU has nothing else to do.
func makeNS(prepare func() error, idle bool) (*NS, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var saved *unix.SchedAttr
		if idle {
			if a, err := unix.SchedGetAttr(0, 0); err == nil && unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_IDLE}, 0) == nil {
				saved = a
			}
		}
		fd, err, restored := newOnThisThread(prepare)
		if saved != nil && unix.SchedSetAttr(0, saved, 0) != nil {
			restored = false // the thread keeps the idle policy: end it
		}
		if restored {
			runtime.UnlockOSThread()
		}
		// Otherwise the goroutine ends locked, and the runtime ends the
		// thread with it rather than reuse a thread in the wrong namespace.
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return &NS{fd: r.fd}, nil
}

// newOnThisThread does the work of New on a locked thread, with prepare
// run inside the new namespace. It reports whether the thread is back in
// the namespace it started in.
func newOnThisThread(prepare func() error) (fd int, err error, restored bool) {
	orig, err := openThreadNS()
	if err != nil {
		return -1, err, true
	}
	defer unix.Close(orig)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("netns: unshare network namespace: %w", err), true
	}
	fd, err = openThreadNS()
	if err == nil {
		err = prepare()
	}
	if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("netns: return to the original network namespace: %w", rerr), false
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, err, true
	}
	return fd, nil, true
}

// nsSysctls are written in every namespace that New creates. They only
// affect that namespace.
var nsSysctls = []struct{ path, value string }{
	// The namespace belongs to one sandbox: let any user there bind low
	// ports, since the sandbox has no capability over this namespace.
	{"/proc/sys/net/ipv4/ip_unprivileged_port_start", "0"},
	// ICMP echo sockets for every group, so ping works without raw sockets.
	{"/proc/sys/net/ipv4/ping_group_range", "0 2147483647"},
	// A new namespace inherits IPv4 forwarding from the host's; a sandbox
	// must never route between its links.
	{"/proc/sys/net/ipv4/ip_forward", "0"},
}

// prepare brings lo up and sets nsSysctls in the calling thread's network
// namespace.
func prepare() error {
	if err := loopbackUp(); err != nil {
		return err
	}
	for _, s := range nsSysctls {
		if err := writeSysctl(s.path, s.value); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp brings lo up in the calling thread's network namespace,
// with the ioctl of a datagram socket (cheaper than a netlink handle).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: set lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("netns: set lo up: %w", err)
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("netns: set lo up: %w", err)
	}
	return nil
}

// writeSysctl writes value to a file under /proc/sys. Files under
// /proc/sys/net belong to the network namespace of the thread that opens
// them.
func writeSysctl(path, value string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("netns: write %s: %w", path, err)
	}
	return nil
}

func openThreadNS() (int, error) {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("netns: open /proc/thread-self/ns/net: %w", err)
	}
	return fd, nil
}

// Fd returns the namespace's file descriptor, for setns(2) or
// IFLA_NET_NS_FD. It stays valid until Close; it is -1 after.
func (n *NS) Fd() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.fd
}

// Close releases the descriptor, after any Do in progress has returned.
// The kernel destroys the namespace, with its links, addresses and routes,
// once no descriptor, process or socket refers to it any more. Closing
// twice is not an error.
func (n *NS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	if err != nil {
		return fmt.Errorf("netns: close namespace: %w", err)
	}
	return nil
}

// doPanic carries a panic from the goroutine of Do back to its caller.
type doPanic struct{ v any }

// Do runs fn on a locked OS thread that has joined the namespace, and
// returns fn's error. The thread moves back before it is used for anything
// else; if moving back fails, the thread is discarded and Do returns that
// error. Only fn's own goroutine runs in the namespace: goroutines that fn
// starts do not. A panic in fn is raised again in the caller.
//
// Sockets created by fn keep the namespace for their whole life, wherever
// they are used afterwards; processes forked by fn start in it. A process
// started with SysProcAttr.Pdeathsig gets the signal when the thread that
// forked it ends, which only happens here if moving back failed.
func (n *NS) Do(fn func() error) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.fd < 0 {
		return fmt.Errorf("netns: enter namespace: %w", ErrClosed)
	}
	type result struct {
		err   error
		panic *doPanic
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		restored := doOnThisThread(n.fd, fn, &r.err, &r.panic)
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- r
	}()
	r := <-ch
	if r.panic != nil {
		panic(r.panic.v)
	}
	return r.err
}

// doOnThisThread enters fd, runs fn and moves back, on a locked thread. It
// reports whether the thread is back in its original namespace.
func doOnThisThread(fd int, fn func() error, errp *error, panicp **doPanic) (restored bool) {
	orig, err := openThreadNS()
	if err != nil {
		*errp = err
		return true
	}
	defer unix.Close(orig)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		*errp = fmt.Errorf("netns: enter namespace: %w", err)
		return true
	}
	defer func() {
		if v := recover(); v != nil {
			*panicp = &doPanic{v}
		}
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			*errp = fmt.Errorf("netns: return to the original network namespace: %w", err)
			restored = false
			return
		}
		restored = true
	}()
	*errp = fn()
	return true
}

// Start starts cmd in the namespace, as cmd.Start does. The child is forked
// from a thread inside the namespace and inherits it; cmd must not ask for a
// new network namespace of its own (CLONE_NEWNET), or it would get that
// one instead.
func (n *NS) Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Cloneflags&unix.CLONE_NEWNET != 0 {
		return errors.New("netns: start process: SysProcAttr.Cloneflags asks for a new network namespace")
	}
	return n.Do(cmd.Start)
}

// Dial connects to address from inside the namespace, as net.Dialer
// DialContext does. The socket is created in the namespace and stays there
// while the connection is used from any goroutine.
func (n *NS) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen listens on address inside the namespace, as net.Listen does.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// handle returns a netlink handle bound to the namespace. Requests on it act
// in the namespace whatever thread sends them.
func (n *NS) handle() (*netlink.Handle, error) {
	var h *netlink.Handle
	err := n.Do(func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: open netlink socket in namespace: %w", err)
	}
	return h, nil
}
