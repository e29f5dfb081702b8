//go:build linux

package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Manager sets up the networks of sandboxes: it hands out link addresses,
// keeps the private networks by name and the pool of ready namespaces. One
// Manager per process and host namespace is the rule; two managers (in one
// process or two) must use disjoint link subnets, which NewManager checks
// against the host. A Manager is safe for concurrent use.
type Manager struct {
	link4, link6 netip.Prefix
	host         *NS // nil: the caller's namespace
	hostH        *netlink.Handle
	pool         *Pool // nil without a pool

	// bg counts the links being deleted in the background.
	bg sync.WaitGroup

	// mu guards the fields below.
	mu       sync.Mutex
	closed   bool
	blocks   map[uint64]bool          // link blocks in use
	leaving  map[uint64]chan struct{} // blocks whose link is being deleted; closed when it is gone
	bgErrs   []error                  // what background deletions reported
	networks map[string]*Network
	nets     map[*Net]struct{}
}

// NewManager checks cfg, removes stale links of dead owners (see Cleanup),
// checks that the link subnets are free on the host, and starts the pool.
// It needs CAP_NET_ADMIN and CAP_SYS_ADMIN over the host namespace.
func NewManager(cfg ManagerConfig) (_ *Manager, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{
		link4:    cfg.LinkSubnet,
		link6:    cfg.LinkSubnet6,
		host:     cfg.Host,
		blocks:   map[uint64]bool{},
		leaving:  map[uint64]chan struct{}{},
		networks: map[string]*Network{},
		nets:     map[*Net]struct{}{},
	}
	if !m.link4.IsValid() {
		m.link4 = defaultLinkSubnet
	}
	if m.host == nil {
		m.hostH, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		m.hostH, err = m.host.handle()
	}
	if err != nil {
		return nil, fmt.Errorf("netns: new manager: %w", err)
	}
	defer func() {
		if err != nil {
			m.hostH.Close()
		}
	}()
	if _, err := Cleanup(m.host); err != nil {
		return nil, fmt.Errorf("netns: new manager: %w", err)
	}
	if err := m.checkHostSubnets(); err != nil {
		return nil, err
	}
	if cfg.PoolSize > 0 {
		m.pool = NewPool(cfg.PoolSize)
	}
	return m, nil
}

// checkHostSubnets fails when an address or a route of the host namespace
// falls in a link subnet: another manager uses it, or the host's own
// network does.
func (m *Manager) checkHostSubnets() error {
	for _, c := range []struct {
		field  string
		subnet netip.Prefix
		family int
	}{{"LinkSubnet", m.link4, netlink.FAMILY_V4}, {"LinkSubnet6", m.link6, netlink.FAMILY_V6}} {
		if !c.subnet.IsValid() {
			continue
		}
		addrs, err := dump(func() ([]netlink.Addr, error) { return m.hostH.AddrList(nil, c.family) })
		if err != nil {
			return fmt.Errorf("netns: new manager: list host addresses: %w", err)
		}
		for _, a := range addrs {
			if ip := addrFromIP(a.IP); c.subnet.Contains(ip) {
				where := a.Label // IPv4 addresses only
				if where == "" {
					where = fmt.Sprintf("link %d", a.LinkIndex)
				}
				return &ConfigError{Field: c.field, Err: fmt.Errorf("%s is in use on the host: %s has address %s", c.subnet, where, a.IPNet)}
			}
		}
		routes, err := dump(func() ([]netlink.Route, error) { return m.hostH.RouteList(nil, c.family) })
		if err != nil {
			return fmt.Errorf("netns: new manager: list host routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst == nil {
				continue // The default route overlaps everything.
			}
			ones, _ := r.Dst.Mask.Size()
			dst := netip.PrefixFrom(addrFromIP(r.Dst.IP), ones)
			if ones > 0 && dst.Overlaps(c.subnet) {
				return &ConfigError{Field: c.field, Err: fmt.Errorf("%s overlaps the host route to %s", c.subnet, dst)}
			}
		}
	}
	return nil
}

// inHost runs fn in the host namespace.
func (m *Manager) inHost(fn func() error) error {
	if m.host == nil {
		return fn()
	}
	return m.host.Do(fn)
}

// view returns the manager's subnets and networks for validation.
// m.mu is held.
func (m *Manager) viewLocked() *view {
	v := &view{link4: m.link4, link6: m.link6, networks: map[string]netip.Prefix{}}
	for name, n := range m.networks {
		v.networks[name] = n.subnet
	}
	return v
}

// NewNetwork creates a private network. Its subnet must not overlap the
// link subnets or another network's subnet; errors name the field of cfg.
func (m *Manager) NewNetwork(cfg NetworkConfig) (*Network, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("netns: new network: %w", ErrClosed)
	}
	v := m.viewLocked()
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = pickSubnet(v)
		if !cfg.Subnet.IsValid() {
			m.mu.Unlock()
			return nil, invalid("Subnet", "no free /24 left in %s; give one", defaultNetworkSpace)
		}
	}
	if err := checkNetwork(&cfg, v); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	// Hold the name while the namespace is made, outside the lock.
	m.networks[cfg.Name] = &Network{subnet: cfg.Subnet}
	m.mu.Unlock()

	n, err := newNetwork(m, &cfg)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		delete(m.networks, cfg.Name)
		return nil, err
	}
	if m.closed {
		delete(m.networks, cfg.Name)
		n.closed = true
		n.h.Close()
		n.ns.Close()
		return nil, fmt.Errorf("netns: new network: %w", ErrClosed)
	}
	m.networks[cfg.Name] = n
	return n, nil
}

// pickSubnet returns the first /24 of defaultNetworkSpace that overlaps no
// subnet of v, or the zero Prefix.
func pickSubnet(v *view) netip.Prefix {
	for i := uint64(0); i < capacity(defaultNetworkSpace, 1<<32)/256; i++ {
		a, _ := addrAt(defaultNetworkSpace, i*256)
		p := netip.PrefixFrom(a, 24)
		free := !p.Overlaps(v.link4)
		for _, s := range v.networks {
			free = free && !p.Overlaps(s)
		}
		if free {
			return p
		}
	}
	return netip.Prefix{}
}

func (m *Manager) forget(n *Network) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.networks[n.name] == n {
		delete(m.networks, n.name)
	}
}

// NS returns the sandbox's namespace, or nil with ShareHost. The Net owns
// it: it stays valid until Release.
func (s *Net) NS() *NS { return s.ns }

// Addrs returns the sandbox's addresses: the link's (IPv4, then IPv6), then
// one per network in the order of Config.Networks.
func (s *Net) Addrs() []netip.Addr {
	var out []netip.Addr
	if s.link != nil {
		out = append(out, s.link.guest4)
		if s.link.guest6.IsValid() {
			out = append(out, s.link.guest6)
		}
	}
	for _, mb := range s.members {
		out = append(out, mb.addr)
	}
	return out
}

// Gateway returns the host side's IPv4 and IPv6 addresses of the link (the
// second is zero without an IPv6 link subnet), or zero values without a
// link.
func (s *Net) Gateway() (v4, v6 netip.Addr) {
	if s.link == nil {
		return netip.Addr{}, netip.Addr{}
	}
	return s.link.host4, s.link.host6
}

// HostLink returns the name of the link's host side, or "" without a link.
func (s *Net) HostLink() string {
	if s.link == nil {
		return ""
	}
	return s.link.hostName
}

// Ports returns the host addresses that forward to the sandbox, in the
// order of Config.Ports, with the ports that were picked for port 0.
func (s *Net) Ports() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []netip.AddrPort
	for _, p := range s.proxies {
		out = append(out, p.addr().(*net.TCPAddr).AddrPort())
	}
	for _, l := range s.listeners { // bound, not yet forwarding
		out = append(out, l.Addr().(*net.TCPAddr).AddrPort())
	}
	return out
}

// HostsFile returns the contents of the sandbox's /etc/hosts: its own name
// on its first address (127.0.1.1 without links), then every member of its
// networks, reserved or joined, as of now. A member that joins later is in
// the next call's result; reserve members in NetworkConfig.Members to have
// them all from the start.
func (s *Net) HostsFile() []byte {
	own := netip.MustParseAddr("127.0.1.1")
	if a := s.Addrs(); len(a) > 0 {
		own = a[0]
	}
	entries := []HostEntry{{Addr: own, Names: []string{s.hostname}}}
	for _, mb := range s.members {
		for _, e := range mb.net.Hosts() {
			if e.Addr == own && e.Names[0] == s.hostname {
				continue
			}
			entries = append(entries, e)
		}
	}
	return HostsFile(entries)
}

// ResolvConf returns the contents of the sandbox's /etc/resolv.conf.
func (s *Net) ResolvConf() []byte { return ResolvConf(s.dns) }

// Release tears the sandbox's network down: the port forwarders stop and
// the namespace is closed. Call it once the sandbox's processes are gone:
// the kernel then destroys the namespace, and with it the sandbox's link
// and network memberships, within milliseconds and in the background. Their
// addresses are handed out again only once they are gone. If a process
// still holds the namespace, the links are deleted explicitly after a
// second. Manager.Close waits for all of it. Releasing twice is not an
// error.
func (s *Net) Release() error {
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return nil
	}
	s.released = true
	s.mu.Unlock()
	// Counted in bg, so that Manager.Close does not close the host handle
	// under a Release that is under way.
	s.m.mu.Lock()
	delete(s.m.nets, s)
	s.m.bg.Add(1)
	s.m.mu.Unlock()
	defer s.m.bg.Done()
	s.work.Lock() // wait for a Connect under way
	defer s.work.Unlock()
	return s.release()
}

func (s *Net) release() error {
	for _, p := range s.proxies {
		p.close()
	}
	for _, l := range s.listeners {
		l.Close()
	}
	// Closing the namespace is what deletes the links: once the sandbox's
	// processes are gone too, the kernel tears the namespace down with
	// its devices, in the background and in batches. Deleting each link
	// here instead costs tens of milliseconds of RCU grace periods, during
	// which the next sandbox's link cannot be created.
	var err error
	if s.ns != nil {
		err = s.ns.Close()
	}
	if s.link != nil {
		s.m.removeLink(s.link)
	}
	for _, mb := range s.members {
		mb.leave()
	}
	return err
}

// removeLink waits in the background for a released link to go, deletes it
// if it does not go by itself, and then frees its block; the returned
// channel is closed then. Close waits for these and reports their errors.
func (m *Manager) removeLink(l *link) chan struct{} {
	done := make(chan struct{})
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaving[l.block] = done
	m.bg.Go(func() {
		err := awaitGone(m.hostH, l.hostName, l.hostIndex)
		m.mu.Lock()
		delete(m.blocks, l.block)
		delete(m.leaving, l.block)
		if err != nil {
			m.bgErrs = append(m.bgErrs, err)
		}
		m.mu.Unlock()
		close(done)
	})
	return done
}

func (m *Manager) addBgErr(err error) {
	m.mu.Lock()
	m.bgErrs = append(m.bgErrs, err)
	m.mu.Unlock()
}

// Close releases every Net not yet released, closes every network and the
// pool, waits until the links of released sandboxes are deleted, and
// reports what went wrong, deletions in the background included. Closing
// twice is not an error.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var nets []*Net
	for s := range m.nets {
		nets = append(nets, s)
	}
	var networks []*Network
	for _, n := range m.networks {
		if n.ns != nil {
			networks = append(networks, n)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, s := range nets {
		errs = append(errs, s.Release())
	}
	for _, n := range networks {
		errs = append(errs, n.Close())
	}
	m.bg.Wait()
	if m.pool != nil {
		errs = append(errs, m.pool.Close())
	}
	m.hostH.Close()
	m.mu.Lock()
	errs = append(errs, m.bgErrs...)
	m.mu.Unlock()
	return errors.Join(errs...)
}
