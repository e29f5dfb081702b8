//go:build linux

package netns

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
)

// Network is a private network that sandboxes join: a bridge in a namespace
// of its own, with one veth pair per member. Nothing of it is on the host,
// and nothing connects it to the host or to other networks, so members reach
// each other and nothing else unless a sandbox is also given a Link or other
// networks. When the network's namespace goes (Close, or the owner's death)
// the bridge and every member's link go with it.
//
// Members find each other by name through their hosts files
// (Net.HostsFile). A Network is safe for concurrent use.
type Network struct {
	m      *Manager
	name   string
	subnet netip.Prefix
	ns     *NS
	h      *netlink.Handle
	bridge int // index of the bridge in ns

	// bg counts the members' links being deleted in the background.
	bg sync.WaitGroup

	// mu guards the fields below.
	mu       sync.Mutex
	closed   bool
	leaving  map[string]chan struct{} // members whose link is being deleted; closed when it is gone
	reserved map[string]netip.Addr    // names given in NetworkConfig.Members
	joined   map[string]*member       // members now joined, by name
	used     map[netip.Addr]string    // every taken address, reserved or joined
}

// portSeq numbers the bridge ports of all networks of the process.
var portSeq atomic.Uint64

const bridgeName = "br0"

// newNetwork creates the namespace and the bridge. nc has been checked.
func newNetwork(m *Manager, nc *NetworkConfig) (_ *Network, err error) {
	n := &Network{
		m:        m,
		name:     nc.Name,
		subnet:   nc.Subnet,
		reserved: map[string]netip.Addr{},
		joined:   map[string]*member{},
		leaving:  map[string]chan struct{}{},
		used:     map[netip.Addr]string{},
	}
	for i, name := range nc.Members {
		a, _ := addrAt(n.subnet, uint64(i)+1)
		n.reserved[name] = a
		n.used[a] = name
	}
	if n.ns, err = New(); err != nil {
		return nil, fmt.Errorf("netns: create network %q: %w", nc.Name, err)
	}
	defer func() {
		if err != nil {
			n.ns.Close()
		}
	}()
	if n.h, err = n.ns.handle(); err != nil {
		return nil, fmt.Errorf("netns: create network %q: %w", nc.Name, err)
	}
	defer func() {
		if err != nil {
			n.h.Close()
		}
	}()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = bridgeName
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := n.h.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("netns: create network %q: add bridge: %w", nc.Name, err)
	}
	bl, err := n.h.LinkByName(bridgeName)
	if err != nil {
		return nil, fmt.Errorf("netns: create network %q: find bridge: %w", nc.Name, err)
	}
	if err := n.h.LinkSetUp(bl); err != nil {
		return nil, fmt.Errorf("netns: create network %q: set bridge up: %w", nc.Name, err)
	}
	n.bridge = bl.Attrs().Index
	return n, nil
}

// Name returns the network's name.
func (n *Network) Name() string { return n.name }

// Subnet returns the network's IPv4 subnet.
func (n *Network) Subnet() netip.Prefix { return n.subnet }

// Hosts returns an entry for every member, reserved or joined, in address
// order.
func (n *Network) Hosts() []HostEntry {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]HostEntry, 0, len(n.used))
	for a, name := range n.used {
		out = append(out, HostEntry{Addr: a, Names: []string{name}})
	}
	slices.SortFunc(out, func(x, y HostEntry) int { return x.Addr.Compare(y.Addr) })
	return out
}

// allocate picks the address of a joining member: want when given, else
// the one reserved for name, else the first free one.
func (n *Network) allocate(field, name string, want netip.Addr) (netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// A member of this name that just left keeps its address until its
	// link is gone; wait for that rather than have two on the bridge.
	for {
		done, ok := n.leaving[name]
		if !ok {
			break
		}
		n.mu.Unlock()
		<-done
		n.mu.Lock()
	}
	if n.closed {
		return netip.Addr{}, fmt.Errorf("netns: join network %q: %w", n.name, ErrClosed)
	}
	if _, ok := n.joined[name]; ok {
		return netip.Addr{}, invalid(field+".Name", "%q is already a member of network %q", name, n.name)
	}
	if r, ok := n.reserved[name]; ok {
		if want.IsValid() && want != r {
			return netip.Addr{}, invalid(field+".Addr", "%s differs from %s, reserved for %q on network %q", want, r, name, n.name)
		}
		want = r
	}
	if want.IsValid() {
		if other, ok := n.used[want]; ok && other != name {
			return netip.Addr{}, invalid(field+".Addr", "%s is taken by %q on network %q", want, other, n.name)
		}
	} else {
		last := capacity(n.subnet, maxMembers+2) - 2
		for off := uint64(1); off <= last; off++ {
			a, _ := addrAt(n.subnet, off)
			if _, ok := n.used[a]; !ok {
				want = a
				break
			}
		}
		if !want.IsValid() {
			return netip.Addr{}, fmt.Errorf("netns: join network %q: no free address in %s", n.name, n.subnet)
		}
	}
	n.used[want] = name
	n.joined[name] = nil // Filled in by connect once the link exists.
	return want, nil
}

// free returns a member's address, keeping it if it was reserved.
// n.mu is held.
func (n *Network) freeLocked(name string, a netip.Addr) {
	if _, ok := n.reserved[name]; !ok {
		delete(n.used, a)
	}
}

// member is one sandbox's place on a network.
type member struct {
	net    *Network
	name   string
	addr   netip.Addr
	port   string // the bridge's side, in the network's namespace
	ifname string // the sandbox's side
}

// reserve takes the address of a member that joins under name, on the
// sandbox's interface ifname; connect then creates its link. A reserved
// member leaves like a connected one.
func (n *Network) reserve(field, name string, want netip.Addr, ifname string) (*member, error) {
	a, err := n.allocate(field, name, want)
	if err != nil {
		return nil, err
	}
	return &member{net: n, name: name, addr: a, ifname: ifname, port: "p" + strconv.FormatUint(portSeq.Add(1), 36)}, nil
}

// connect creates the member's link between the bridge and guest, whose
// handle is guestH.
func (mb *member) connect(guest *NS, guestH *netlink.Handle) error {
	n, a, ifname := mb.net, mb.addr, mb.ifname
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return fmt.Errorf("netns: join network %q: %w", n.name, ErrClosed)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = mb.port
	attrs.MasterIndex = n.bridge
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         ifname,
		PeerNamespace:    netlink.NsFd(guest.Fd()),
		PeerHardwareAddr: memberMAC(a),
	}
	if err := n.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("netns: join network %q: add veth: %w", n.name, err)
	}
	pl, err := n.h.LinkByName(mb.port)
	if err != nil {
		return fmt.Errorf("netns: join network %q: find bridge port: %w", n.name, err)
	}
	if err := n.h.LinkSetUp(pl); err != nil {
		return fmt.Errorf("netns: join network %q: set bridge port up: %w", n.name, err)
	}
	gl, err := guestH.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netns: join network %q: find %s in sandbox: %w", n.name, ifname, err)
	}
	if err := addAddr(guestH, gl, a, n.subnet.Bits()); err != nil {
		return fmt.Errorf("netns: join network %q: add address %s: %w", n.name, a, err)
	}
	if err := guestH.LinkSetUp(gl); err != nil {
		return fmt.Errorf("netns: join network %q: set %s up: %w", n.name, ifname, err)
	}
	if err := waitUp(n.h, pl.Attrs().Index, netip.Addr{}, "bridge port "+mb.port+" of network "+strconv.Quote(n.name)); err != nil {
		return err
	}
	if err := waitUp(guestH, gl.Attrs().Index, netip.Addr{}, ifname+" in sandbox"); err != nil {
		return err
	}
	n.mu.Lock()
	n.joined[mb.name] = mb
	n.mu.Unlock()
	return nil
}

// memberMAC returns the hardware address of the member at a: locally
// administered, unicast, and made of a's four bytes. A member that leaves
// and comes back at the same address comes back with the same hardware
// address, so the other members' ARP caches stay right; with a fresh one,
// they would send to the old one for seconds.
func memberMAC(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x53, b[0], b[1], b[2], b[3]}
}

// leave waits in the background for the member's link to go (see
// Net.Release), if the network still has it, and then frees its address.
// The returned channel is closed when that is done.
func (mb *member) leave() chan struct{} {
	n := mb.net
	done := make(chan struct{})
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.joined, mb.name)
	n.leaving[mb.name] = done
	closed := n.closed
	// Registered under n.mu, so that Close, which sets closed under it,
	// waits for this deletion before closing the handle.
	n.bg.Go(func() {
		var gone error
		if !closed {
			// Off the bridge, the old port cannot clash with a new member
			// of the same address, so the address is free at once, long
			// before the kernel has deleted the port.
			err := n.h.LinkSetNoMaster(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: mb.port}})
			if err != nil && !isNotFound(err) {
				if there, lerr := linkExists(n.h, mb.port, 0); lerr != nil || there {
					gone = awaitGone(n.h, mb.port, 0)
				}
			}
		}
		n.mu.Lock()
		n.freeLocked(mb.name, mb.addr)
		delete(n.leaving, mb.name)
		n.mu.Unlock()
		close(done)
		if !closed && gone == nil {
			gone = awaitGone(n.h, mb.port, 0)
		}
		if gone != nil {
			n.m.addBgErr(fmt.Errorf("netns: leave network %q: %w", n.name, gone))
		}
	})
	return done
}

// Close removes the network from its manager and releases its namespace:
// the kernel then deletes the bridge and every member's link to it, in the
// background and in one batch. Members keep running, with one interface
// less, and their Release still works. Closing twice is not an error.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.m.forget(n)
	// Members leaving now use the handle until they are done.
	n.bg.Wait()
	n.h.Close()
	return n.ns.Close()
}
