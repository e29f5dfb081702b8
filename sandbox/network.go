//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/mount"
	"github.com/stockade/stockade/netns"
)

// Network is lo alone when zero; Link, Networks, Ports, Join need host root.
type Network struct {
	ShareHost      bool         // the caller's namespace; Danger: NOT ISOLATED from the network
	Link           *Link        // eth0, a veth link whose host side is its gateway
	Networks       []Membership // private networks: members reach only each other
	Ports          []Port       // host addresses forwarded to ports inside
	DNS            []netip.Addr // /etc/resolv.conf's servers (ShareHost: the host's)
	ReuseNamespace bool         // without a network, cheaper turns in older namespaces; shares TIME_WAIT sockets and /proc/net
	Join           string       // enter this network namespace (/run/netns/NAME, /proc/PID/ns/net), shared with its other users; host root
	Networking     *Networking  `json:"-"` // nil: DefaultNetworking()
}

// Link is a veth link reaching only its host-side gateway unless DefaultRoute.
type Link struct {
	Addr         netip.Addr // IPv4, in the link subnet; zero picks one
	Addr6        netip.Addr // needs NetworkingConfig.LinkSubnet6
	DefaultRoute bool
}

// Membership is a place on a private network; zero Name: Config.Hostname.
type Membership struct {
	Network string
	Name    string
	Addr    netip.Addr // zero: a free one
}

// Port forwards the host address Host (port 0 picks one) to 127.0.0.1:Port.
type Port struct {
	Host netip.AddrPort
	Port uint16
}

// NetworkInfo is what a started sandbox's network turned out to be.
type NetworkInfo struct {
	Addrs             []netip.Addr     // the link's (IPv4, IPv6), then one per network
	Gateway, Gateway6 netip.Addr       // the link's host side
	HostLink          string           // its name on the host
	Ports             []netip.AddrPort // as Network.Ports, with port 0 picked
}

// NetworkInfo returns what the sandbox's network turned out to be.
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
	nc := netns.Config{ShareHost: n.ShareHost, DNS: n.DNS}
	if n.Link != nil {
		l := netns.Link(*n.Link)
		nc.Link = &l
	}
	for _, m := range n.Networks {
		nc.Networks = append(nc.Networks, netns.Membership(m))
	}
	for _, p := range n.Ports {
		nc.Ports = append(nc.Ports, netns.Port(p))
	}
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
	if err := c.validateJoin(); err != nil {
		return err
	}
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
	return netConfigErr(networkingOf(n).check(nc))
}

// validateJoin checks Network.Join: a namespace of someone else's, with
// nothing of the sandbox's to set up in it. The sandbox holds no
// capability over it: Security.Capabilities such as CAP_NET_BIND_SERVICE
// or CAP_NET_RAW do not apply there.
func (c *Config) validateJoin() error {
	n := &c.Network
	if n.Join == "" {
		return nil
	}
	const f = "Network.Join"
	switch {
	case !path.IsAbs(n.Join) || path.Clean(n.Join) != n.Join || strings.IndexByte(n.Join, 0) >= 0:
		return configErr(f, "must be an absolute, clean path, not %q", n.Join)
	case n.ShareHost || n.managed() || n.ReuseNamespace:
		return configErr(f, "is a network of its own: not with ShareHost, Link, Networks, Ports or ReuseNamespace")
	case c.Security.Sysfs:
		return configErr(f, "cannot be used with Security.Sysfs: mounting /sys needs a network namespace of the sandbox's own")
	case os.Geteuid() != 0:
		return configErr(f, "needs host root: entering a namespace takes CAP_SYS_ADMIN over its owner")
	}
	return nil
}

// joinNS opens the network namespace at path for Network.Join. The
// caller's own namespace and the host's (pid 1's) are refused: entering
// them is ShareHost, the field that says so.
func joinNS(path string) (*netns.NS, error) {
	ns, err := netns.Open(path)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(ns.Fd(), &st); err != nil {
		ns.Close()
		return nil, err
	}
	for _, own := range []string{"/proc/self/ns/net", "/proc/1/ns/net"} {
		var o unix.Stat_t
		if unix.Stat(own, &o) == nil && o.Dev == st.Dev && o.Ino == st.Ino {
			ns.Close()
			return nil, fmt.Errorf("%s is %s, the host's network: that is Network.ShareHost, NOT isolated", path, own)
		}
	}
	return ns, nil
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
	if cfg.Network.Join != "" {
		ns, err := joinNS(cfg.Network.Join)
		if err != nil {
			return &ConfigError{Field: "Network.Join", Err: err}
		}
		s.joined = ns
		return nil
	}
	if !cfg.Network.managed() {
		return nil
	}
	start := time.Now()
	m, err := networkingOf(&cfg.Network).manager()
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
		} else if !cfg.givenRoot() {
			// A missing or unreadable file leaves the sandbox without
			// one, as a host without one is.
			resolv, _ = os.ReadFile("/etc/resolv.conf")
		}
	case len(n.DNS) > 0:
		resolv = netns.ResolvConf(n.DNS)
	}
	if l.netns == nil && !l.shareHost {
		if s.joined != nil {
			// The launch closes it once the init is in it.
			l.netns, l.closeNS, s.joined = s.joined, true, nil
		} else if cfg.Network.ReuseNamespace {
			// The sandbox keeps it, and gives it back at its end.
			s.reuseNS = takeReusableNS()
			l.netns = s.reuseNS
		} else if ns := takeIsolatedNS(cfg); ns != nil {
			l.netns, l.closeNS = ns, true
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
	if cfg.givenRoot() {
		kind = mount.Cover
	}
	if hosts != nil {
		files = append(files, mount.Mount{Kind: kind, Target: "/etc/hosts", Data: hosts, Mode: 0o644})
	}
	if resolv != nil {
		files = append(files, mount.Mount{Kind: kind, Target: "/etc/resolv.conf", Data: resolv, Mode: 0o644})
	}
	at := len(p.Mounts) - len(cfg.Mounts) // before the caller's own mounts
	if !cfg.givenRoot() {
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
// Networking.Close): the namespace is gone with the sandbox whatever
// happens here.
func (s *Sandbox) releaseNetwork() {
	if s.net != nil {
		s.net.Release()
	}
	if s.reuseNS != nil {
		giveBackNS(s.reuseNS)
		s.reuseNS = nil
	}
	if s.joined != nil {
		s.joined.Close()
		s.joined = nil
	}
}
