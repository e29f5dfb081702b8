//go:build linux

package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkPrefix starts the name of every host-side link this package creates.
// The rest of the name is the owner's process id and a sequence number, both
// in base 36, such as "stk1a2b-3c"; the link's alias records the owner's id
// and start time, so that Cleanup can tell a stale link from a live one even
// after the id was reused.
const LinkPrefix = "stk"

const aliasPrefix = "stockade owner="

var linkSeq atomic.Uint64

// hostLinkName returns the name of a new host-side link owned by pid.
// Names have at most 15 bytes (IFNAMSIZ less the NUL).
func hostLinkName(pid int, seq uint64) string {
	p := strconv.FormatInt(int64(pid), 36)
	room := 15 - len(LinkPrefix) - len(p) - 1
	// Wrapping the sequence is harmless: a name is reused only after
	// 36^room links of one process, long after the first one is gone.
	limit := uint64(1)
	for range room {
		limit *= 36
	}
	return LinkPrefix + p + "-" + strconv.FormatUint(seq%limit, 36)
}

// owner identifies a process across id reuse: its id and its start time in
// clock ticks since boot.
type owner struct {
	pid   int
	start uint64
}

func (o owner) alias() string {
	return aliasPrefix + strconv.Itoa(o.pid) + ":" + strconv.FormatUint(o.start, 10)
}

// parseAlias reads an owner back from a link alias.
func parseAlias(s string) (owner, bool) {
	rest, ok := strings.CutPrefix(s, aliasPrefix)
	if !ok {
		return owner{}, false
	}
	p, st, ok := strings.Cut(rest, ":")
	if !ok {
		return owner{}, false
	}
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(st, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return owner{}, false
	}
	return owner{pid, start}, true
}

// pidFromName reads the owner's process id back from a link name.
func pidFromName(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, LinkPrefix)
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.ParseInt(p, 36, 32)
	return int(pid), err == nil && pid > 0
}

// startTime returns the start time of process pid in clock ticks since
// boot, from field 22 of /proc/pid/stat.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("netns: parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("netns: parse /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

var self = sync.OnceValues(func() (owner, error) {
	pid := os.Getpid()
	st, err := startTime(pid)
	if err != nil {
		return owner{}, fmt.Errorf("netns: read own start time: %w", err)
	}
	return owner{pid, st}, nil
})

// alive reports whether the owner still runs. A process of the same id
// that started at another time is another process.
func (o owner) alive() bool {
	st, err := startTime(o.pid)
	return err == nil && st == o.start
}

// link is one veth pair between a host namespace and a sandbox.
type link struct {
	hostName      string
	block         uint64
	host4, guest4 netip.Addr
	host6, guest6 netip.Addr
	ifname        string // the sandbox's side
	defaultRoute  bool
	hostBits      int
	hostBits6     int
	hostIndex     int
}

// hostLinkSysctls are set on the host side of every link, under
// /proc/sys/net/ipv4/conf/NAME. A new link takes its settings from the
// host's conf/default, which may say otherwise.
var hostLinkSysctls = []struct{ name, value string }{
	// Answer ARP only for addresses of the link itself, so that the
	// sandbox cannot resolve the host's other addresses by pretending
	// they are on its link.
	{"arp_ignore", "1"},
	// Never answer ARP for addresses the host would route elsewhere.
	// (conf/all/proxy_arp=1 on the host still wins; see Link.)
	{"proxy_arp", "0"},
	// Drop packets whose source address is not routed back through the
	// link, so that the sandbox cannot pass for another address.
	{"rp_filter", "1"},
}

// isolatedLinkSysctls are set on the host side of links without
// DefaultRoute.
var isolatedLinkSysctls = []struct{ name, value string }{
	// Route nothing that arrives from the sandbox, even on a host that
	// forwards. (Turning the host's ip_forward on or off later resets
	// this on every link.)
	{"forwarding", "0"},
}

// create makes the veth pair with its peer born inside guest, so that no
// moment exists in which both ends sit on the host: if the owner dies at any
// point, the pair goes when the sandbox's namespace goes. Then it sets
// addresses and routes through handles bound to each namespace; inHost runs
// a function in the host namespace for the sysctls.
func (l *link) create(host, guestH *netlink.Handle, guest *NS, inHost func(func() error) error) error {
	o, err := self()
	if err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = l.hostName
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      l.ifname,
		PeerNamespace: netlink.NsFd(guest.Fd()),
	}
	if err := host.LinkAdd(veth); err != nil {
		return fmt.Errorf("netns: add veth %s: %w", l.hostName, err)
	}
	// LinkAdd looked the new link's index up.
	hl := netlink.Link(veth)
	l.hostIndex = veth.Index
	if l.hostIndex == 0 {
		return fmt.Errorf("netns: add veth %s: no index", l.hostName)
	}
	// The kernel ignores an alias given at creation. Until it is set, the
	// owner's process id in the name is enough for Cleanup.
	if err := host.LinkSetAlias(hl, o.alias()); err != nil {
		return fmt.Errorf("netns: set alias of %s: %w", l.hostName, err)
	}
	if err := inHost(func() error { return l.setHostSysctls() }); err != nil {
		return err
	}
	if err := addAddr(host, hl, l.host4, l.hostBits); err != nil {
		return fmt.Errorf("netns: add address %s to %s: %w", l.host4, l.hostName, err)
	}
	if l.host6.IsValid() {
		if err := addAddr(host, hl, l.host6, l.hostBits6); err != nil {
			return fmt.Errorf("netns: add address %s to %s: %w", l.host6, l.hostName, err)
		}
	}
	if err := host.LinkSetUp(hl); err != nil {
		return fmt.Errorf("netns: set %s up: %w", l.hostName, err)
	}

	gl, err := guestH.LinkByName(l.ifname)
	if err != nil {
		return fmt.Errorf("netns: find %s in sandbox: %w", l.ifname, err)
	}
	if err := addAddr(guestH, gl, l.guest4, l.hostBits); err != nil {
		return fmt.Errorf("netns: add address %s to %s in sandbox: %w", l.guest4, l.ifname, err)
	}
	if l.guest6.IsValid() {
		if err := addAddr(guestH, gl, l.guest6, l.hostBits6); err != nil {
			return fmt.Errorf("netns: add address %s to %s in sandbox: %w", l.guest6, l.ifname, err)
		}
	}
	if err := guestH.LinkSetUp(gl); err != nil {
		return fmt.Errorf("netns: set %s up in sandbox: %w", l.ifname, err)
	}
	if err := waitUp(host, l.hostIndex, l.host6, l.hostName); err != nil {
		return err
	}
	if err := waitUp(guestH, gl.Attrs().Index, l.guest6, l.ifname+" in sandbox"); err != nil {
		return err
	}
	if l.defaultRoute {
		gws := []netip.Addr{l.host4}
		if l.host6.IsValid() {
			gws = append(gws, l.host6)
		}
		for _, gw := range gws {
			r := &netlink.Route{LinkIndex: gl.Attrs().Index, Gw: net.IP(gw.AsSlice())}
			if err := guestH.RouteAdd(r); err != nil {
				return fmt.Errorf("netns: add default route via %s in sandbox: %w", gw, err)
			}
		}
	}
	return nil
}

// setHostSysctls applies hostLinkSysctls (and isolatedLinkSysctls) to the
// host side. Without an IPv6
// link subnet it also turns IPv6 off there: the host side's link-local
// address would be a way to the host that the IPv4 rules do not cover.
func (l *link) setHostSysctls() error {
	sysctls := hostLinkSysctls
	if !l.defaultRoute {
		sysctls = append(slices.Clone(sysctls), isolatedLinkSysctls...)
	}
	for _, s := range sysctls {
		if err := writeSysctl("/proc/sys/net/ipv4/conf/"+l.hostName+"/"+s.name, s.value); err != nil {
			return err
		}
	}
	if !l.host6.IsValid() {
		return writeSysctl("/proc/sys/net/ipv6/conf/"+l.hostName+"/disable_ipv6", "1")
	}
	return nil
}

// linkUpTimeout bounds the wait for a new link to carry traffic.
const linkUpTimeout = 2 * time.Second

// waitUp waits until the link with index can carry traffic, and returns an
// error naming it (as what) when that takes longer than linkUpTimeout.
//
// A veth end is up as soon as it is set up, but the kernel only attaches
// its transmit queue once its link watcher has seen the carrier come on,
// later, from a work queue; until then packets are dropped, and an ARP
// reply lost this way costs the sandbox a second before it asks again. The
// link watcher sets the operational state in the same step, so that is
// what is waited for. An IPv6 address is only usable once the kernel has
// finished setting it up, again from a work queue after the carrier came
// on (joining its solicited-node group, inserting its local route), so for
// addr6 the wait goes on until its route is in the local table.
func waitUp(h *netlink.Handle, index int, addr6 netip.Addr, what string) error {
	delay := 20 * time.Microsecond
	deadline := time.Now().Add(linkUpTimeout)
	for {
		l, err := h.LinkByIndex(index)
		if err != nil {
			return fmt.Errorf("netns: wait for %s: %w", what, err)
		}
		ready := l.Attrs().OperState == netlink.OperUp
		if ready && addr6.IsValid() {
			filter := &netlink.Route{Table: unix.RT_TABLE_LOCAL, Dst: ipNet(addr6, 128)}
			routes, err := dump(func() ([]netlink.Route, error) {
				return h.RouteListFiltered(netlink.FAMILY_V6, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
			})
			if err != nil {
				return fmt.Errorf("netns: wait for %s: %w", what, err)
			}
			ready = len(routes) > 0
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns: %s is not ready after %s (operational state %s)", what, linkUpTimeout, l.Attrs().OperState)
		}
		time.Sleep(delay)
		delay = min(2*delay, 5*time.Millisecond)
	}
}

// addAddr adds a/bits to l. IPv6 addresses skip duplicate address
// detection: the link has two ends and this package chose both addresses,
// and a tentative address could not be used for a second or more.
func addAddr(h *netlink.Handle, l netlink.Link, a netip.Addr, bits int) error {
	addr := &netlink.Addr{IPNet: ipNet(a, bits)}
	if a.Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	return h.AddrAdd(l, addr)
}

// linkGoneTimeout is how long a released link is given to go with its
// namespace before it is deleted explicitly. Besides a process that
// outlived its sandbox, a packet can hold the namespace: one queued for an
// address that never answers ARP keeps its socket, and the socket the
// namespace, until ARP gives up after about three seconds; deleting the
// link drops it.
const linkGoneTimeout = time.Second

// awaitGone waits for the kernel to delete the link name (with index, when
// not zero) after its sandbox's namespace was closed, and deletes it itself
// if it is still there after linkGoneTimeout: something else, such as a
// process that outlived its sandbox, holds the namespace. Deleting one end
// of a veth pair deletes the other.
func awaitGone(h *netlink.Handle, name string, index int) error {
	delay := 500 * time.Microsecond
	deadline := time.Now().Add(linkGoneTimeout)
	for {
		there, err := linkExists(h, name, index)
		if err != nil || !there {
			return err
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Millisecond)
	}
	derr := h.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, Index: index}})
	// The kernel may have been tearing it down at that very moment.
	if there, err := linkExists(h, name, index); err == nil && !there {
		return nil
	}
	return fmt.Errorf("netns: delete veth %s: %w", name, derr)
}

// linkExists reports whether h's namespace has a link called name, with
// index when that is not zero.
func linkExists(h *netlink.Handle, name string, index int) (bool, error) {
	l, err := h.LinkByName(name)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("netns: look up link %s: %w", name, err)
	}
	return index == 0 || l.Attrs().Index == index, nil
}

// dump runs a netlink dump again while the kernel reports it interrupted,
// which it does when what is dumped changes meanwhile: links come and go
// all the time on a host that runs sandboxes.
func dump[T any](fn func() ([]T, error)) ([]T, error) {
	for tries := 1; ; tries++ {
		out, err := fn()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || tries == 10 {
			return out, err
		}
	}
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.As(err, &nf)
}

// Cleanup deletes the host-side links (named with LinkPrefix) of owners
// that no longer run, in host, or in the caller's namespace when host is
// nil, and returns their names. Deleting one side of a veth pair deletes
// the other, and with them their addresses and routes. Links of running
// owners, this process included, are left alone.
//
// Links normally go by themselves when their sandbox's namespace goes, even
// when the owner is killed; Cleanup is for namespaces that outlived their
// owner (kept alive by a stray process or a bind mount). Owners are
// recognised by process id, so Cleanup must run in the owners' pid
// namespace. It needs CAP_NET_ADMIN over the host namespace.
func Cleanup(host *NS) ([]string, error) {
	var h *netlink.Handle
	var err error
	if host == nil {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = host.handle()
	}
	if err != nil {
		return nil, fmt.Errorf("netns: cleanup: %w", err)
	}
	defer h.Close()
	links, err := dump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("netns: cleanup: list links: %w", err)
	}
	var removed []string
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		if !strings.HasPrefix(a.Name, LinkPrefix) || l.Type() != "veth" {
			continue
		}
		if !stale(a.Name, a.Alias) {
			continue
		}
		if err := h.LinkDel(l); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("netns: cleanup: delete veth %s: %w", a.Name, err))
			continue
		}
		removed = append(removed, a.Name)
	}
	return removed, errors.Join(errs...)
}

// stale reports whether a link with this name and alias belongs to an owner
// that no longer runs. A link that is not recognisably ours is not stale.
func stale(name, alias string) bool {
	if o, ok := parseAlias(alias); ok {
		return !o.alive()
	}
	// Without the alias, only the process id in the name is known: a link
	// whose owner id is free is stale; one whose id is taken is left alone.
	pid, ok := pidFromName(name)
	if !ok {
		return false
	}
	_, err := startTime(pid)
	return errors.Is(err, os.ErrNotExist)
}
