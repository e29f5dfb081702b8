//go:build linux

package netns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
)

// Net is the network of one sandbox, made by Manager.Setup, or by
// Manager.Prepare and then Net.Connect. Release it when the sandbox has
// ended.
type Net struct {
	m        *Manager
	ns       *NS
	link     *link
	members  []*member
	proxies  []*proxy
	hostname string
	dns      []netip.Addr

	// listeners are the bound host ports and ports the sandbox ports they
	// forward to, until Connect starts their proxies.
	listeners []net.Listener
	ports     []uint16

	// work is held by Connect while it builds, so that Release waits
	// for it rather than pull the namespace from under it.
	work sync.Mutex

	// mu guards connected and released.
	mu        sync.Mutex
	connected bool
	released  bool
}

// Setup makes the network of one sandbox from cfg: Prepare, then Connect.
// It checks cfg and binds the host ports first, and creates nothing when
// either fails: errors about a field are *ConfigError values that name it.
//
// The sandbox's init joins Net.NS by setns(2) from a locked thread, then
// forks, without CLONE_NEWNET. With ShareHost, NS returns nil and the
// sandbox stays in the host's namespace.
func (m *Manager) Setup(cfg Config) (*Net, error) {
	s, err := m.Prepare(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(); err != nil {
		s.Release()
		return nil, err
	}
	return s, nil
}

// Prepare does the part of Setup that a process needs before it can start
// in the sandbox's namespace, and that decides what the sandbox's files
// say: it checks cfg, binds the host ports, takes a ready namespace (from
// the pool when there is one) and reserves the link's and the memberships'
// addresses, so that NS, Addrs, Gateway, Ports, HostsFile and ResolvConf
// are final. It creates nothing when cfg is wrong or a port is taken:
// errors about a field are *ConfigError values that name it.
//
// Connect then creates the links and starts the port forwarders. A sandbox
// can be started in NS in between, so that its own start-up overlaps the
// kernel's work on its links (most of which is waiting for them to carry
// traffic); it must not be let go on before Connect has returned.
func (m *Manager) Prepare(cfg Config) (_ *Net, err error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("netns: set up network: %w", ErrClosed)
	}
	v := m.viewLocked()
	nets := make([]*Network, len(cfg.Networks))
	for i, mb := range cfg.Networks {
		nets[i] = m.networks[mb.Network]
	}
	m.mu.Unlock()
	if err := v.check(&cfg); err != nil {
		return nil, err
	}
	s := &Net{m: m, hostname: cfg.Hostname, dns: cfg.DNS}
	if s.hostname == "" {
		s.hostname = "sandbox"
	}
	if cfg.ShareHost {
		return s, nil
	}
	defer func() {
		if err != nil {
			s.release()
		}
	}()

	// Bind the host ports before anything else exists.
	for i, p := range cfg.Ports {
		var l net.Listener
		err := m.inHost(func() error {
			var err error
			l, err = net.Listen("tcp", p.Host.String())
			return err
		})
		if err != nil {
			return nil, &ConfigError{Field: fmt.Sprintf("Ports[%d].Host", i), Err: err}
		}
		s.listeners = append(s.listeners, l)
		s.ports = append(s.ports, p.Port)
	}

	if m.pool != nil {
		s.ns, err = m.pool.Get()
	} else {
		s.ns, err = New()
	}
	if err != nil {
		return nil, err
	}
	ifindex := 0
	nextIf := func() string {
		name := "eth" + fmt.Sprint(ifindex)
		ifindex++
		return name
	}
	if cfg.Link != nil {
		if s.link, err = m.allocateLink(cfg.Link); err != nil {
			return nil, err
		}
		s.link.ifname = nextIf()
	}
	for i, mb := range cfg.Networks {
		name := mb.Name
		if name == "" {
			name = s.hostname
		}
		if nets[i] == nil || nets[i].ns == nil {
			return nil, invalid(fmt.Sprintf("Networks[%d].Network", i), "network %q is not ready", mb.Network)
		}
		member, err := nets[i].reserve(fmt.Sprintf("Networks[%d]", i), name, mb.Addr, nextIf())
		if err != nil {
			return nil, err
		}
		s.members = append(s.members, member)
	}
	m.track(s)
	return s, nil
}

// Connect creates the links and network memberships that Prepare reserved,
// waits until they carry traffic, and starts forwarding the host ports.
// It fails on a Net that was released or already connected. After a
// failure, Release the Net.
func (s *Net) Connect() error {
	s.mu.Lock()
	switch {
	case s.released:
		s.mu.Unlock()
		return fmt.Errorf("netns: connect network: %w", ErrClosed)
	case s.connected:
		s.mu.Unlock()
		return fmt.Errorf("netns: connect network: already connected")
	}
	s.connected = true
	s.mu.Unlock()
	s.work.Lock()
	defer s.work.Unlock()
	// Release waits for this: it counts as work in the background.
	s.m.mu.Lock()
	if s.m.closed {
		s.m.mu.Unlock()
		return fmt.Errorf("netns: connect network: %w", ErrClosed)
	}
	s.m.bg.Add(1)
	s.m.mu.Unlock()
	defer s.m.bg.Done()
	if s.link != nil || len(s.members) > 0 {
		guestH, err := s.ns.handle()
		if err != nil {
			return err
		}
		defer guestH.Close()
		if s.link != nil {
			if err := s.link.create(s.m.hostH, guestH, s.ns, s.m.inHost); err != nil {
				return err
			}
		}
		for _, mb := range s.members {
			if err := mb.connect(s.ns, guestH); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return fmt.Errorf("netns: connect network: %w", ErrClosed)
	}
	for i, l := range s.listeners {
		s.proxies = append(s.proxies, startProxy(l, s.ns, s.ports[i]))
	}
	s.listeners = nil
	return nil
}

// allocateLink reserves a link block: the one of l.Addr or l.Addr6 when
// given, else the first free one.
func (m *Manager) allocateLink(l *Link) (*link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var block uint64
	// An address asked for by a sandbox that just left is free once its
	// link is gone: wait for that rather than fail.
	for _, a := range []struct {
		addr   netip.Addr
		subnet netip.Prefix
	}{{l.Addr, m.link4}, {l.Addr6, m.link6}} {
		if !a.addr.IsValid() {
			continue
		}
		for {
			done, ok := m.leaving[offsetOf(a.subnet, a.addr)/blockSize]
			if !ok {
				break
			}
			m.mu.Unlock()
			<-done
			m.mu.Lock()
		}
	}
	field := ""
	switch {
	case l.Addr.IsValid():
		block, field = offsetOf(m.link4, l.Addr)/blockSize, "Link.Addr"
	case l.Addr6.IsValid():
		block, field = offsetOf(m.link6, l.Addr6)/blockSize, "Link.Addr6"
	default:
		n := linkBlocks(m.link4)
		if m.link6.IsValid() {
			n = min(n, linkBlocks(m.link6))
		}
		for ; block < n && m.blocks[block]; block++ {
		}
		if block == n {
			return nil, fmt.Errorf("netns: allocate link: all %d links of %s are in use", n, m.link4)
		}
	}
	if m.blocks[block] {
		return nil, invalid(field, "the link block of this address is in use by another sandbox")
	}
	k := &link{
		hostName:     hostLinkName(os.Getpid(), linkSeq.Add(1)),
		block:        block,
		defaultRoute: l.DefaultRoute,
		hostBits:     blockBits(m.link4.Addr()),
	}
	var err error
	if k.host4, k.guest4, err = linkBlock(m.link4, block); err != nil {
		return nil, invalid(field, "%v", err)
	}
	if m.link6.IsValid() {
		if k.host6, k.guest6, err = linkBlock(m.link6, block); err != nil {
			return nil, invalid(field, "%v", err)
		}
		k.hostBits6 = blockBits(m.link6.Addr())
		if l.Addr6.IsValid() && l.Addr6 != k.guest6 {
			return nil, invalid("Link.Addr6", "%s is not in the block of Link.Addr (%s); leave one of them zero", l.Addr6, k.guest6)
		}
	}
	m.blocks[block] = true
	return k, nil
}

func (m *Manager) track(s *Net) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nets[s] = struct{}{}
}

// Check checks cfg against the manager's subnets and networks as Prepare
// does first, and creates nothing.
func (m *Manager) Check(cfg Config) error {
	m.mu.Lock()
	v := m.viewLocked()
	m.mu.Unlock()
	return v.check(&cfg)
}

// Check checks cfg against the subnets of a manager made from c that has no
// networks yet, and creates nothing.
func (c ManagerConfig) Check(cfg Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	v := &view{link4: c.LinkSubnet, link6: c.LinkSubnet6}
	if !v.link4.IsValid() {
		v.link4 = defaultLinkSubnet
	}
	return v.check(&cfg)
}
