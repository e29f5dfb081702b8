//go:build linux

package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// otherAddr and otherAddr6 are addresses of the fake host that are not on
// any link to a sandbox: sandboxes must not reach them unless given a
// default route.
const (
	otherAddr  = "198.18.0.1"
	otherAddr6 = "fd99::1"
)

// fakeHost makes a namespace that plays the host in tests that send
// traffic, so that every address involved lives in namespaces the test
// made. It has a second address, otherAddr, on its lo, and a listener on
// every address, serving echo; it returns the listener's port.
func fakeHost(t *testing.T) (*NS, string) {
	t.Helper()
	h := newNS(t)
	hd, err := h.handle()
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()
	lo, err := hd.LinkByIndex(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := addAddr(hd, lo, netip.MustParseAddr(otherAddr), 32); err != nil {
		t.Fatal(err)
	}
	if err := addAddr(hd, lo, netip.MustParseAddr(otherAddr6), 128); err != nil {
		t.Fatal(err)
	}
	l, err := h.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	hostEcho(t, l)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return h, port
}

// ourLinks lists the links of ns (the host's when nil) that this process
// made: other test binaries may run beside this one.
func ourLinks(t *testing.T, ns *NS) []netlink.Link {
	return linksWhere(t, ns, func(name string) bool {
		pid, ok := pidFromName(name)
		return ok && pid == os.Getpid()
	})
}

// linksNamedOurs lists the links of ns named with LinkPrefix, whichever
// process made them.
func linksNamedOurs(t *testing.T, ns *NS) []netlink.Link {
	return linksWhere(t, ns, func(name string) bool { return strings.HasPrefix(name, LinkPrefix) })
}

// linksWhere lists the links of ns (the host's when nil) whose names keep
// accepts.
func linksWhere(t *testing.T, ns *NS, keep func(name string) bool) []netlink.Link {
	t.Helper()
	var h *netlink.Handle
	var err error
	if ns == nil {
		h, err = netlink.NewHandle()
	} else {
		h, err = ns.handle()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := dump(h.LinkList)
	if err != nil {
		t.Fatal(err)
	}
	var out []netlink.Link
	for _, l := range links {
		if keep(l.Attrs().Name) {
			out = append(out, l)
		}
	}
	return out
}

func TestLinkReachesGatewayAndNothingElse(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	host, port := fakeHost(t)
	m := mustManager(t, ManagerConfig{Host: host})
	n, err := m.Setup(Config{Link: &Link{}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Release()
	gw, _ := n.Gateway()

	if got := dial(t, n.NS(), nil, net.JoinHostPort(gw.String(), port)); got != "ok echo ping" {
		t.Errorf("sandbox dialling its gateway %s: %s", gw, got)
	}
	// Another address of the host: no route leads there.
	if got := dial(t, n.NS(), nil, net.JoinHostPort(otherAddr, port)); !strings.Contains(got, "network is unreachable") {
		t.Errorf("sandbox dialling the host's %s: %s, want network is unreachable", otherAddr, got)
	}
	// Bound to its link, the kernel assumes the address is on the link and
	// asks for it by ARP; the host side must not answer for an address
	// that is not its own.
	if got := dial(t, n.NS(), nil, net.JoinHostPort(otherAddr, port), "eth0"); !strings.HasPrefix(got, "error") {
		t.Errorf("sandbox dialling the host's %s through eth0: %s, want an error", otherAddr, got)
	}
	// Its 127.0.0.1 is its own.
	if got := dial(t, n.NS(), nil, net.JoinHostPort("127.0.0.1", port)); !strings.Contains(got, "connection refused") {
		t.Errorf("sandbox dialling 127.0.0.1: %s, want connection refused", got)
	}

	// With a default route, the same probe reaches the other address: the
	// refusal above is isolation, not a broken probe.
	open, err := m.Setup(Config{Link: &Link{DefaultRoute: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Release()
	if got := dial(t, open.NS(), nil, net.JoinHostPort(otherAddr, port)); got != "ok echo ping" {
		t.Errorf("sandbox with a default route dialling %s: %s", otherAddr, got)
	}

	if len(ourLinks(t, host)) != 2 {
		t.Errorf("host links before release: %v", ourLinks(t, host))
	}
	n.Release()
	open.Release()
	waitFor(t, "the host links to go after Release", func() bool { return len(ourLinks(t, host)) == 0 })
}

func TestLinkIPv6(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	host, port := fakeHost(t)
	m := mustManager(t, ManagerConfig{Host: host, LinkSubnet6: netip.MustParsePrefix("fd53:746b:6164::/64")})
	n, err := m.Setup(Config{Link: &Link{}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Release()
	_, gw6 := n.Gateway()
	if want := netip.MustParseAddr("fd53:746b:6164::1"); gw6 != want {
		t.Errorf("IPv6 gateway %s, want %s", gw6, want)
	}
	if got := dial(t, n.NS(), nil, net.JoinHostPort(gw6.String(), port)); got != "ok echo ping" {
		t.Errorf("sandbox dialling its IPv6 gateway %s: %s", gw6, got)
	}
	addrs := n.Addrs()
	if len(addrs) != 2 || addrs[1] != netip.MustParseAddr("fd53:746b:6164::2") {
		t.Errorf("sandbox addresses %v", addrs)
	}
	if got := dial(t, n.NS(), nil, net.JoinHostPort(otherAddr6, port)); !strings.Contains(got, "network is unreachable") {
		t.Errorf("sandbox dialling the host's %s: %s, want network is unreachable", otherAddr6, got)
	}
	open, err := m.Setup(Config{Link: &Link{DefaultRoute: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Release()
	if got := dial(t, open.NS(), nil, net.JoinHostPort(otherAddr6, port)); got != "ok echo ping" {
		t.Errorf("sandbox with a default route dialling %s: %s", otherAddr6, got)
	}
}

// The host side of a link is set up for isolation whatever the host's
// defaults for new links say.
func TestLinkHostSideSysctls(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	host, _ := fakeHost(t)
	sysctl := func(name string) string {
		var v string
		err := host.Do(func() error {
			b, err := os.ReadFile("/proc/sys/net/" + name)
			v = strings.TrimSpace(string(b))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The worst defaults a host may have for new links.
	err := host.Do(func() error {
		for _, s := range []string{"ipv4/ip_forward", "ipv4/conf/default/proxy_arp", "ipv4/conf/default/forwarding"} {
			if err := writeSysctl("/proc/sys/net/"+s, "1"); err != nil {
				return err
			}
		}
		return writeSysctl("/proc/sys/net/ipv4/conf/default/rp_filter", "0")
	})
	if err != nil {
		t.Fatal(err)
	}
	m := mustManager(t, ManagerConfig{Host: host})
	for _, c := range []struct {
		link       Link
		forwarding string
	}{{Link{}, "0"}, {Link{DefaultRoute: true}, "1"}} {
		n, err := m.Setup(Config{Link: &c.link})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Release()
		want := map[string]string{
			"ipv4/conf/%s/arp_ignore":   "1",
			"ipv4/conf/%s/proxy_arp":    "0",
			"ipv4/conf/%s/rp_filter":    "1",
			"ipv4/conf/%s/forwarding":   c.forwarding,
			"ipv6/conf/%s/disable_ipv6": "1",
		}
		for k, v := range want {
			if got := sysctl(fmt.Sprintf(k, n.HostLink())); got != v {
				t.Errorf("DefaultRoute=%v: %s = %s, want %s", c.link.DefaultRoute, fmt.Sprintf(k, n.HostLink()), got, v)
			}
		}
	}
}

// The host side of a link in the real host namespace: created with the
// owner in its alias and the gateway address, and gone after Release. No
// traffic is sent.
func TestLinkOnHost(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	n, err := m.Setup(Config{Link: &Link{Addr: netip.MustParseAddr("10.216.0.10")}})
	if err != nil {
		t.Fatal(err)
	}
	links := ourLinks(t, nil)
	if len(links) != 1 || links[0].Attrs().Name != n.HostLink() {
		t.Fatalf("host links %v, want %s", links, n.HostLink())
	}
	if o, ok := parseAlias(links[0].Attrs().Alias); !ok || o.pid != os.Getpid() || !o.alive() {
		t.Errorf("alias %q does not name this process as owner", links[0].Attrs().Alias)
	}
	if gw, _ := n.Gateway(); gw != netip.MustParseAddr("10.216.0.9") {
		t.Errorf("gateway %s, want 10.216.0.9", gw)
	}
	// The same block cannot be handed out twice.
	_, err = m.Setup(Config{Link: &Link{Addr: netip.MustParseAddr("10.216.0.10")}})
	var fe *ConfigError
	if !errors.As(err, &fe) || fe.Field != "Link.Addr" {
		t.Errorf("second link on the same address: %v, want an error naming Link.Addr", err)
	}
	// A second manager on the same subnet is refused.
	if m2, err := NewManager(ManagerConfig{LinkSubnet: hostTestSubnet}); err == nil {
		m2.Close()
		t.Error("a second manager on a subnet in use was accepted")
	} else if !errors.As(err, &fe) || fe.Field != "LinkSubnet" {
		t.Errorf("second manager: %v, want an error naming LinkSubnet", err)
	}
	if err := n.Release(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, n.HostLink())
}

// When the sandbox's namespace goes, the kernel deletes the pair and with
// it everything on the host side.
func TestLinkGoesWithNamespace(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	n, err := m.Setup(Config{Link: &Link{}})
	if err != nil {
		t.Fatal(err)
	}
	n.ns.Close()
	waitGone(t, n.HostLink())
	if err := n.Release(); err != nil {
		t.Errorf("Release after the link went: %v", err)
	}
}

// Release with a process still in the namespace: the kernel keeps the
// namespace, so the link is deleted explicitly, and the process loses it.
func TestReleaseWithLiveProcess(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	host, _ := fakeHost(t)
	m := mustManager(t, ManagerConfig{Host: host})
	n, err := m.Setup(Config{Link: &Link{}})
	if err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, n.NS(), nil, "sleep")
	h.line(t)
	start := time.Now()
	if err := n.Release(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the link of a released sandbox whose process lives", func() bool { return len(ourLinks(t, host)) == 0 })
	if d := time.Since(start); d < linkGoneTimeout/2 {
		t.Errorf("the link went after %s, before the explicit deletion: was the process really holding the namespace?", d)
	}
	if err := h.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the sandbox process is gone: %v", err)
	}
}

// waitFor waits up to 5 s for cond, polling.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5 s for %s", what)
		}
	}
}

// waitGone waits until the host has no link of that name.
func waitGone(t *testing.T, name string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := netlink.LinkByName(name); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host link %s is still there after 5 s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runOwner is the helper that owns a sandbox with a link and is then
// killed. Its sandbox process dies with it (args[0] is "pdeathsig") or
// outlives it (args[0] is "keep") and keeps the namespace. The link's host
// side is on the real host, or in the namespace the helper inherits as fd
// 3 when args[1] is "fakehost".
func runOwner(args []string) int {
	cfg := ManagerConfig{LinkSubnet: ownerTestSubnet}
	if len(args) > 1 && args[1] == "fakehost" {
		cfg.Host = &NS{fd: 3}
	}
	m, err := NewManager(cfg)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	nw, err := m.NewNetwork(NetworkConfig{Name: "owned", Members: []string{"s"}})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	n, err := m.Setup(Config{Hostname: "s", Link: &Link{}, Networks: []Membership{{Network: nw.Name()}}})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--")
	cmd.Env = append(os.Environ(), helperEnv+"=pause")
	sandboxed(cmd)
	if args[0] == "keep" {
		cmd.SysProcAttr.Pdeathsig = 0
		cmd.SysProcAttr.Setpgid = true
	}
	if err := n.NS().Start(cmd); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("link", n.HostLink(), cmd.Process.Pid)
	for {
		time.Sleep(time.Hour)
	}
}

// startOwner starts the owner helper on the host and returns it with the
// name of its host link and the pid of its sandbox process. With a host
// namespace, the link's host side goes there instead of on the real host.
func startOwner(t *testing.T, mode string, host *NS) (*exec.Cmd, string, int) {
	t.Helper()
	args := []string{"-test.run=^$", "--", mode}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=owner")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if host != nil {
		fd, err := unix.Dup(host.Fd())
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "host namespace")
		defer f.Close()
		cmd.ExtraFiles = []*os.File{f}
		args = append(args, "fakehost")
	}
	cmd.Args = append(cmd.Args, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var name string
	var pid int
	if _, err := fmt.Fscanln(out, new(string), &name, &pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("owner helper: %v", err)
	}
	return cmd, name, pid
}

// Killing the owner with SIGKILL leaves nothing on the host: its sandbox
// dies with it, the sandbox's namespace goes, and the kernel deletes the
// link; the private network was never on the host.
func TestOwnerKilled(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	owner, name, _ := startOwner(t, "pdeathsig", nil)
	if _, err := netlink.LinkByName(name); err != nil {
		t.Fatalf("owner's link %s is not on the host: %v", name, err)
	}
	owner.Process.Signal(syscall.SIGKILL)
	owner.Wait()
	waitGone(t, name)
}

// Cleanup deletes the link of a dead owner whose sandbox outlived it, and
// leaves the links of live owners alone. The host sides are in a fake host
// namespace: on the real host, any other test binary's NewManager would
// clean the stale link up first.
func TestCleanupRemovesStaleLinks(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	host := newNS(t)
	owner, name, pid := startOwner(t, "keep", host)
	defer func() {
		syscall.Kill(pid, syscall.SIGKILL)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
				return
			}
		}
	}()
	// A live link of this process, which must stay. (NewManager runs
	// Cleanup itself, so it comes before the owner dies.)
	m := mustManager(t, ManagerConfig{Host: host, LinkSubnet: netip.MustParsePrefix("10.215.0.0/24")})
	live, err := m.Setup(Config{Link: &Link{}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Release()

	owner.Process.Signal(syscall.SIGKILL)
	owner.Wait()
	time.Sleep(100 * time.Millisecond)
	names := func() []string {
		var out []string
		for _, l := range linksNamedOurs(t, host) {
			out = append(out, l.Attrs().Name)
		}
		return out
	}
	if got := names(); !slices.Contains(got, name) {
		t.Fatalf("the stale link %s went by itself although its namespace lives: links %v", name, got)
	}

	removed, err := Cleanup(host)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != name {
		t.Errorf("Cleanup removed %v, want [%s]", removed, name)
	}
	if got := names(); slices.Contains(got, name) || !slices.Contains(got, live.HostLink()) {
		t.Errorf("links after Cleanup: %v, want %s gone and %s kept", got, name, live.HostLink())
	}
}
