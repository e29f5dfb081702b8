//go:build linux

package netns

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
)

// echoOnce sends a line to addr and returns the echo.
func echoOnce(addr string, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(c, line)
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(got), err
}

func TestExposedPort(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	n, err := m.Setup(Config{Ports: []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, n.NS(), nil, ":8080")
	addr := n.Ports()[0].String()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			want := fmt.Sprintf("echo hello %d", i)
			if got, err := echoOnce(addr, fmt.Sprintf("hello %d", i)); err != nil || got != want {
				t.Errorf("through %s: %q, %v; want %q", addr, got, err, want)
			}
		})
	}
	wg.Wait()
	if err := n.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := echoOnce(addr, "late"); err == nil {
		t.Errorf("%s still forwards after Release", addr)
	}
}

// A connection to an exposed port with no server behind it is closed, and
// the forwarder goes on serving.
func TestExposedPortWithoutServer(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	n, err := m.Setup(Config{Ports: []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Release()
	addr := n.Ports()[0].String()
	if _, err := echoOnce(addr, "nobody"); err == nil {
		t.Error("an echo came back from a sandbox without a server")
	}
	serve(t, n.NS(), nil, ":8080")
	if got, err := echoOnce(addr, "now"); err != nil || got != "echo now" {
		t.Errorf("after the server started: %q, %v", got, err)
	}
}

// A port that is taken fails Setup with an error naming the field, before
// any namespace or link exists.
func TestExposedPortTaken(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := mustManager(t, ManagerConfig{})
	before, _ := testutil.NetnsFDs()
	_, err = m.Setup(Config{
		Link: &Link{},
		Ports: []Port{
			{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 80},
			{Host: l.Addr().(*net.TCPAddr).AddrPort(), Port: 80},
		},
	})
	var fe *ConfigError
	if !errors.As(err, &fe) || fe.Field != "Ports[1].Host" || !errors.Is(err, syscall.EADDRINUSE) || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Setup with a taken port: %v, want an invalid config matching EADDRINUSE naming Ports[1].Host", err)
	}
	if after, _ := testutil.NetnsFDs(); len(after) != len(before) {
		t.Errorf("Setup made a namespace before failing: %v", after)
	}
	if l := ourLinks(t, nil); len(l) != 0 {
		t.Errorf("Setup made links before failing: %v", l)
	}
}

// Bad input is refused before anything exists, with the field named.
func TestSetupRefusesBadInput(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	if _, err := m.NewNetwork(NetworkConfig{Name: "a", Subnet: netip.MustParsePrefix("10.90.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	before, _ := testutil.NetnsFDs()
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{Networks: []Membership{{Network: "nope"}}}, "Networks[0].Network"},
		{Config{Networks: []Membership{{Network: "a", Addr: netip.MustParseAddr("10.91.0.1")}}}, "Networks[0].Addr"},
		{Config{Link: &Link{Addr: netip.MustParseAddr("10.1.0.2")}}, "Link.Addr"},
		{Config{Link: &Link{Addr6: netip.MustParseAddr("fd00::2")}}, "Link.Addr6"},
		{Config{ShareHost: true, Link: &Link{}}, "Link"},
		{Config{Ports: []Port{{Host: netip.MustParseAddrPort("127.0.0.1:1"), Port: 0}}}, "Ports[0].Port"},
	} {
		_, err := m.Setup(c.cfg)
		var fe *ConfigError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Setup(%+v): %v, want an invalid configuration naming %s", c.cfg, err, c.field)
		}
	}
	if after, _ := testutil.NetnsFDs(); len(after) != len(before) {
		t.Errorf("Setup made namespaces before failing: %v", after)
	}
}

func TestShareHost(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	n, err := m.Setup(Config{ShareHost: true, Hostname: "h", DNS: []netip.Addr{netip.MustParseAddr("127.0.0.53")}})
	if err != nil {
		t.Fatal(err)
	}
	if n.NS() != nil {
		t.Error("a ShareHost sandbox got a namespace")
	}
	if got := string(n.ResolvConf()); !strings.Contains(got, "nameserver 127.0.0.53\n") {
		t.Errorf("resolv.conf:\n%s", got)
	}
	if err := n.Release(); err != nil {
		t.Error(err)
	}
}
