//go:build linux

package sandbox

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/mount"
	"github.com/stockade/stockade/netns"
)

// Network is the network of a sandbox, Config.Network. The zero value is
// the safe choice: a network namespace of the sandbox's own with only lo
// up, from which nothing outside can be reached and in which nothing can be
// reached from outside.
//
// Link, Networks and Ports combine: a sandbox may have a link to the host,
// join several private networks and have ports forwarded to it. They need
// host root (CAP_NET_ADMIN and CAP_SYS_ADMIN over the host's network); for
// an ordinary user they are a *ConfigError. Their namespaces, links and
// addresses come from the process's network setup (see SetNetworking); none
// of them outlives the sandbox, even when its owner is killed.
type Network struct {
	// ShareHost, when true, leaves the sandbox in the caller's network
	// namespace. The sandbox is then NOT ISOLATED FROM THE NETWORK: it sees
	// every interface of the host, reaches every address the host reaches
	// (the host's own services on 127.0.0.1 included), and can listen on
	// any port the command's user may bind. Use it only for trusted code
	// that needs the host's network as it is. It cannot be combined with
	// Link, Networks or Ports; ordinary users may set it.
	ShareHost bool

	// Link, when not nil, connects the sandbox to the host through a veth
	// pair: the sandbox gets the interface eth0 with an IPv4 address (and
	// an IPv6 one when Networking.LinkSubnet6 is set) from the process's
	// link subnet, and the host side is its gateway. By default the
	// sandbox reaches only its gateway's address, so a test can serve it
	// from the host; with Link.DefaultRoute it reaches whatever the host
	// routes to (no NAT is set up). Nil means no link.
	Link *Link

	// Networks lists the private networks the sandbox joins, by the names
	// given to NewPrivateNetwork. Members of a network reach each other,
	// by the names in their /etc/hosts, and nothing else: neither the host
	// nor members of other networks. Empty means none.
	Networks []Membership

	// Ports forwards TCP connections from host addresses to ports inside
	// the sandbox; see Port. Sandbox.NetworkInfo tells which host port was
	// picked for port 0. Empty means none.
	Ports []Port

	// DNS lists the name servers written to the sandbox's /etc/resolv.conf.
	// Empty means none, so that only the names in /etc/hosts resolve;
	// with ShareHost, the host's own /etc/resolv.conf is used instead. A
	// server outside the sandbox is only reachable through a Link with
	// DefaultRoute, or on a private network.
	DNS []netip.Addr

	// ReuseNamespace lets a sandbox without a network run in a network
	// namespace that an earlier sandbox of this process ran in, and give
	// its own back when it ends, instead of one made for it alone. Making
	// a namespace is much of a start's cost (see the README's Performance
	// section); reusing them raises the rate of back-to-back starts.
	//
	// It is an opt-in because sandboxes that take turns in one namespace
	// share what the kernel keeps per namespace beyond their lives:
	// sockets still closing (TIME_WAIT) and the ports they hold, and the
	// counters under /proc/net. Nothing else carries over: no process, no
	// open socket, no address, route or rule (the namespace belongs to
	// the host's user namespace, so a sandbox holds no capability over
	// it). Use it where every sandbox of the process runs the same
	// tenant's code.
	//
	// Only a sandbox without a network (no ShareHost, Link, Networks or
	// Ports) that keeps no capability and mounts no /sys can reuse; an
	// ordinary user's sandboxes, which cannot enter a namespace of the
	// host's user namespace, make their own as before.
	ReuseNamespace bool
}

// Link configures a sandbox's link to the host; see netns.Link.
type Link = netns.Link

// Membership is a sandbox's place on a private network: the network's
// name, the sandbox's name there (Config.Hostname when empty) and,
// optionally, its address; see netns.Membership.
type Membership = netns.Membership

// Port forwards a host address to a port inside the sandbox: connections
// to Host arrive at the sandbox's 127.0.0.1:Port, from 127.0.0.1, through
// a forwarder in the calling process. See netns.Port.
type Port = netns.Port

// NetworkInfo is what a started sandbox's network turned out to be.
type NetworkInfo struct {
	// Addrs are the sandbox's addresses: its link's (IPv4, then IPv6),
	// then one per entry of Network.Networks, in order.
	Addrs []netip.Addr
	// Gateway and Gateway6 are the addresses of the host side of the
	// link, zero without a link (Gateway6 also without IPv6).
	Gateway, Gateway6 netip.Addr
	// HostLink is the name of the host side of the link, "" without one.
	HostLink string
	// Ports are the host addresses that forward to the sandbox, in the
	// order of Network.Ports, with the port picked for port 0.
	Ports []netip.AddrPort
}

// NetworkInfo returns the addresses of the sandbox's link and networks and
// its forwarded host ports once Start has returned, and keeps returning
// them after the sandbox has ended. It is zero for a sandbox without a
// link, networks or ports.
func (s *Sandbox) NetworkInfo() NetworkInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.netInfo
}

func (n *Network) clone() Network {
	d := *n
	if n.Link != nil {
		l := *n.Link
		d.Link = &l
	}
	d.Networks = slices.Clone(n.Networks)
	d.Ports = slices.Clone(n.Ports)
	d.DNS = slices.Clone(n.DNS)
	return d
}

// checkPool refuses what the sandboxes of a Pool cannot all have: a place
// on a private network (they would all join under one name) and forwarded
// ports (a host port is one sandbox's, and Pool.Run could not tell which
// port its sandbox got).
func (n *Network) checkPool() error {
	if len(n.Networks) > 0 {
		return configErr("Network.Networks", "a pool's sandboxes would all join under one name; start members with New")
	}
	if len(n.Ports) > 0 {
		return configErr("Network.Ports", "a pool's sandboxes cannot share host ports; start servers with New")
	}
	return nil
}

// managed reports whether the network needs the process's netns.Manager.
func (n *Network) managed() bool {
	return n.Link != nil || len(n.Networks) > 0 || len(n.Ports) > 0
}

// netnsConfig is the netns.Config of the sandbox c describes.
func (c *Config) netnsConfig() netns.Config {
	n := c.Network
	nc := netns.Config{ShareHost: n.ShareHost, Link: n.Link, Networks: n.Networks, Ports: n.Ports, DNS: n.DNS}
	if n.managed() {
		nc.Hostname = c.Hostname
	}
	return nc
}

// validateNetwork checks Config.Network, against the process's networks
// too, without creating anything.
func (c *Config) validateNetwork() error {
	nc := c.netnsConfig()
	if err := netConfigErr(nc.Validate()); err != nil {
		return err
	}
	n := &c.Network
	if n.ReuseNamespace {
		switch {
		case n.ShareHost || n.managed():
			return configErr("Network.ReuseNamespace", "is for a sandbox without a network: not with ShareHost, Link, Networks or Ports")
		case len(c.Security.Capabilities) > 0:
			return configErr("Network.ReuseNamespace", "cannot be used with Security.Capabilities: a sandbox that keeps capabilities needs a namespace of its own for them to apply to")
		case c.Security.Sysfs:
			return configErr("Network.ReuseNamespace", "cannot be used with Security.Sysfs: mounting /sys needs a namespace of the sandbox's own")
		}
	}
	if !n.managed() {
		return nil
	}
	if os.Geteuid() != 0 {
		field := "Network.Link"
		switch {
		case n.Link != nil:
		case len(n.Networks) > 0:
			field = "Network.Networks"
		default:
			field = "Network.Ports"
		}
		return configErr(field, "needs host root (CAP_NET_ADMIN over the host's network); an ordinary user's sandbox has loopback only, or the host's network with ShareHost")
	}
	return netConfigErr(checkNetwork(nc))
}

// netConfigErr turns a ConfigError about a sandbox's netns.Config
// into a *ConfigError naming the field of Config.
func netConfigErr(err error) error {
	if err == nil {
		return nil
	}
	var fe *ConfigError
	if !errors.As(err, &fe) {
		return err
	}
	field := "Network." + fe.Field
	if fe.Field == "Hostname" {
		field = "Hostname"
	}
	return &ConfigError{Field: field, Err: fe.Err}
}

// prepareNetwork has the process's manager prepare the network of a
// sandbox with a link, networks or ports, first of all that Start
// creates: it checks the config against the process's networks and binds
// the host ports, so that a port already taken is a *ConfigError before
// anything exists. The init is forked into its namespace (see
// netns.Manager.Prepare).
func (s *Sandbox) prepareNetwork(cfg *Config) error {
	if !cfg.Network.managed() {
		return nil
	}
	start := time.Now()
	m, err := manager()
	if err != nil {
		return err
	}
	nw, err := m.Prepare(cfg.netnsConfig())
	s.times.netPrepare = time.Since(start)
	if err != nil {
		if cerr := netConfigErr(err); cerr != err {
			return cerr
		}
		return setupErr("network", "", err)
	}
	s.net = nw
	return nil
}

// networkFiles tells the launch which network namespace the init is forked
// into, and writes the sandbox's /etc/hosts and /etc/resolv.conf into
// spec's plan.
func (s *Sandbox) networkFiles(cfg *Config, spec *proto.Spec, l *launch) {
	n := &cfg.Network
	var hosts, resolv []byte
	switch {
	case s.net != nil:
		l.netns = s.net.NS()
		hosts, resolv = s.net.HostsFile(), s.net.ResolvConf()
	case n.ShareHost:
		l.shareHost = true
		if len(n.DNS) > 0 {
			resolv = netns.ResolvConf(n.DNS)
		} else if cfg.RootDir == "" {
			// A missing or unreadable file leaves the sandbox without
			// one, as a host without one is.
			resolv, _ = os.ReadFile("/etc/resolv.conf")
		}
	case len(n.DNS) > 0:
		resolv = netns.ResolvConf(n.DNS)
	}
	if l.netns == nil && !l.shareHost {
		if cfg.Network.ReuseNamespace {
			// The sandbox keeps it, and gives it back at its end.
			s.reuseNS = takeReusableNS()
			l.netns = s.reuseNS
		} else if ns := takeIsolatedNS(cfg); ns != nil {
			l.netns, l.pooled = ns, true
		}
	}
	if l.netns != nil || l.shareHost {
		// lo is up already, and the init may not touch this namespace.
		spec.Loopback = false
	}
	addNetFiles(&spec.Plan, cfg, hosts, resolv)
}

// addNetFiles puts the generated hosts and resolv.conf (each when not nil)
// into the plan: into the generated /etc of the default root, or over the
// files of a root directory, when it has them. Config.Mounts come last in
// the plan and may still replace them.
func addNetFiles(p *mount.Plan, cfg *Config, hosts, resolv []byte) {
	if hosts == nil && resolv == nil {
		return
	}
	var files []mount.Mount
	kind := mount.File
	if cfg.RootDir != "" {
		kind = mount.Cover
	}
	if hosts != nil {
		files = append(files, mount.Mount{Kind: kind, Target: "/etc/hosts", Data: hosts, Mode: 0o644})
	}
	if resolv != nil {
		files = append(files, mount.Mount{Kind: kind, Target: "/etc/resolv.conf", Data: resolv, Mode: 0o644})
	}
	at := len(p.Mounts) - len(cfg.Mounts) // before the caller's own mounts
	if cfg.RootDir == "" {
		// The generated /etc has a hosts file: replace it.
		at = slices.IndexFunc(p.Mounts, func(m mount.Mount) bool {
			return m.Kind == mount.File && m.Target == "/etc/hosts"
		})
		if at < 0 {
			at = len(p.Mounts) - len(cfg.Mounts)
		} else if hosts != nil {
			p.Mounts = slices.Delete(p.Mounts, at, at+1)
		} else {
			at++
		}
	}
	p.Mounts = slices.Insert(p.Mounts, at, files...)
}

// connectNetwork starts creating the links of the sandbox's network, which
// the kernel mostly does in the background while the init starts, and
// returns a function that waits for it. Without a managed network it does
// nothing.
func (s *Sandbox) connectNetwork() (wait func() error) {
	if s.net == nil {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		start := time.Now()
		err := s.net.Connect()
		s.times.netLinks = time.Since(start)
		s.times.netDone = proto.Monotonic()
		done <- err
	}()
	return func() error {
		err := <-done
		if err != nil {
			return setupErr("network", "", err)
		}
		gw, gw6 := s.net.Gateway()
		info := NetworkInfo{Addrs: s.net.Addrs(), Gateway: gw, Gateway6: gw6, HostLink: s.net.HostLink(), Ports: s.net.Ports()}
		s.netInfo = info // s.mu is held by Start
		return nil
	}
}

// network returns what the sandbox's managed network cost its start: the
// time to prepare it, and the time the init then waited for its links after
// it was ready to go on. The links are made while the init starts, so that
// most of their cost is hidden; it still shows in the other stages, as the
// kernel's work on them competes with the init for the CPUs.
func (t *startTimes) network() time.Duration {
	d := t.netPrepare
	if len(t.init) == int(proto.NumMarks) {
		if late := t.netDone - t.init[proto.MarkSystem]; late > 0 {
			d += time.Duration(late)
		}
	}
	return d
}

// releaseNetwork releases the sandbox's network, once its init has been
// reaped or never ran. Errors are the manager's to report (see
// CloseNetworking): the namespace is gone with the sandbox whatever
// happens here.
func (s *Sandbox) releaseNetwork() {
	if s.net != nil {
		s.net.Release()
	}
	if s.reuseNS != nil {
		giveBackNS(s.reuseNS)
		s.reuseNS = nil
	}
}
