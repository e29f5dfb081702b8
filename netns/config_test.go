//go:build linux

package netns

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var (
	a4 = netip.MustParseAddr
	p4 = netip.MustParsePrefix
	ap = netip.MustParseAddrPort
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   Config
		field string // "" means valid
		msg   string
	}{
		{"zero", Config{}, "", ""},
		{"share host", Config{ShareHost: true, Hostname: "h", DNS: []netip.Addr{a4("1.1.1.1")}}, "", ""},
		{"share host with link", Config{ShareHost: true, Link: &Link{}}, "Link", "ShareHost"},
		{"share host with networks", Config{ShareHost: true, Networks: []Membership{{Network: "a"}}}, "Networks", "ShareHost"},
		{"share host with ports", Config{ShareHost: true, Ports: []Port{{Host: ap("127.0.0.1:1"), Port: 1}}}, "Ports", "ShareHost"},
		{"hostname", Config{Hostname: "web-1.test"}, "", ""},
		{"hostname underscore", Config{Hostname: "web_1"}, "Hostname", "not a letter"},
		{"hostname hyphen", Config{Hostname: "-web"}, "Hostname", "starts and ends"},
		{"hostname empty label", Config{Hostname: "a..b"}, "Hostname", "1 to 63"},
		{"hostname long label", Config{Hostname: strings.Repeat("a", 64)}, "Hostname", "1 to 63"},
		{"hostname too long", Config{Hostname: strings.Repeat("a.", 127) + "a"}, "Hostname", "253"},
		{"link addr v6", Config{Link: &Link{Addr: a4("fd00::2")}}, "Link.Addr", "IPv4"},
		{"link addr6 v4", Config{Link: &Link{Addr6: a4("10.0.0.2")}}, "Link.Addr6", "IPv6"},
		{"link addr6 mapped", Config{Link: &Link{Addr6: a4("::ffff:10.0.0.2")}}, "Link.Addr6", "IPv6"},
		{"network name empty", Config{Networks: []Membership{{}}}, "Networks[0].Network", "1 to 64"},
		{"network name bad", Config{Networks: []Membership{{Network: "a/b"}}}, "Networks[0].Network", "not a letter"},
		{"network twice", Config{Networks: []Membership{{Network: "a"}, {Network: "a"}}}, "Networks[1].Network", "twice"},
		{"member name", Config{Networks: []Membership{{Network: "a", Name: "x y"}}}, "Networks[0].Name", "not a letter"},
		{"member addr v6", Config{Networks: []Membership{{Network: "a", Addr: a4("fd00::1")}}}, "Networks[0].Addr", "IPv4"},
		{"port without address", Config{Ports: []Port{{Port: 80}}}, "Ports[0].Host", "address"},
		{"port zero", Config{Ports: []Port{{Host: ap("127.0.0.1:8080")}}}, "Ports[0].Port", "1 and 65535"},
		{"port twice", Config{Ports: []Port{{Host: ap("127.0.0.1:8080"), Port: 1}, {Host: ap("127.0.0.1:8080"), Port: 2}}}, "Ports[1].Host", "Ports[0]"},
		{"ephemeral ports twice", Config{Ports: []Port{{Host: ap("127.0.0.1:0"), Port: 1}, {Host: ap("127.0.0.1:0"), Port: 2}}}, "", ""},
		{"dns zero", Config{DNS: []netip.Addr{{}}}, "DNS[0]", "not an address"},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkFieldErr(t, c.cfg.Validate(), c.field, c.msg)
		})
	}
}

// checkFieldErr checks that err is nil when field is empty, and otherwise
// an invalid-configuration *ConfigError naming field whose text holds msg.
func checkFieldErr(t *testing.T, err error, field, msg string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var fe *ConfigError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *ConfigError naming %s", err, field)
	}
	if fe.Field != field {
		t.Errorf("error names %s, want %s: %v", fe.Field, field, err)
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("error does not match ErrInvalidConfig: %v", err)
	}
	if !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "invalid config: "+field+": ") {
		t.Errorf("error %q does not start with the field or lacks %q", err, msg)
	}
}

func TestViewCheck(t *testing.T) {
	v := &view{
		link4:    p4("10.213.0.0/16"),
		link6:    p4("fd00::/64"),
		networks: map[string]netip.Prefix{"a": p4("10.1.0.0/24"), "b": p4("10.2.0.0/24"), "dup": p4("10.213.5.0/24")},
	}
	for _, c := range []struct {
		name  string
		cfg   Config
		field string
		msg   string
	}{
		{"zero", Config{}, "", ""},
		{"link", Config{Link: &Link{Addr: a4("10.213.0.6"), Addr6: a4("fd00::6")}}, "", ""},
		{"link outside subnet", Config{Link: &Link{Addr: a4("10.214.0.2")}}, "Link.Addr", "outside the link subnet"},
		{"link host side", Config{Link: &Link{Addr: a4("10.213.0.1")}}, "Link.Addr", "not a sandbox address"},
		{"link network address", Config{Link: &Link{Addr: a4("10.213.0.4")}}, "Link.Addr", "not a sandbox address"},
		{"link6 outside", Config{Link: &Link{Addr6: a4("fd01::2")}}, "Link.Addr6", "outside"},
		{"link6 host side", Config{Link: &Link{Addr6: a4("fd00::5")}}, "Link.Addr6", "not a sandbox address"},
		{"invalid first", Config{Link: &Link{Addr: a4("fd00::2")}}, "Link.Addr", "IPv4"},
		{"unknown network", Config{Networks: []Membership{{Network: "a"}, {Network: "c"}}}, "Networks[1].Network", `unknown network "c"`},
		{"member addr", Config{Networks: []Membership{{Network: "a", Addr: a4("10.1.0.7")}}}, "", ""},
		{"member addr outside", Config{Networks: []Membership{{Network: "a", Addr: a4("10.2.0.7")}}}, "Networks[0].Addr", "outside the subnet 10.1.0.0/24"},
		{"member network address", Config{Networks: []Membership{{Network: "a", Addr: a4("10.1.0.0")}}}, "Networks[0].Addr", "network or broadcast"},
		{"member broadcast", Config{Networks: []Membership{{Network: "a", Addr: a4("10.1.0.255")}}}, "Networks[0].Addr", "network or broadcast"},
		{"network overlaps link", Config{Link: &Link{}, Networks: []Membership{{Network: "dup"}}}, "Networks[0].Network", "overlaps 10.213.0.0/16"},
		{"network alone", Config{Networks: []Membership{{Network: "dup"}}}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkFieldErr(t, v.check(&c.cfg), c.field, c.msg)
		})
	}
	noV6 := &view{link4: p4("10.213.0.0/16")}
	checkFieldErr(t, noV6.check(&Config{Link: &Link{Addr6: a4("fd00::2")}}), "Link.Addr6", "no IPv6 link subnet")
}

func TestManagerConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   ManagerConfig
		field string
		msg   string
	}{
		{"zero", ManagerConfig{}, "", ""},
		{"both", ManagerConfig{LinkSubnet: p4("10.0.0.0/30"), LinkSubnet6: p4("fd00::/126"), PoolSize: 1024}, "", ""},
		{"v6 as v4", ManagerConfig{LinkSubnet: p4("fd00::/64")}, "LinkSubnet", "not an IPv4 subnet"},
		{"v4 as v6", ManagerConfig{LinkSubnet6: p4("10.0.0.0/8")}, "LinkSubnet6", "not an IPv6 subnet"},
		{"host bits", ManagerConfig{LinkSubnet: p4("10.0.0.1/16")}, "LinkSubnet", "the subnet is 10.0.0.0/16"},
		{"too small", ManagerConfig{LinkSubnet: p4("10.0.0.0/31")}, "LinkSubnet", "at most /30"},
		{"too small v6", ManagerConfig{LinkSubnet6: p4("fd00::/127")}, "LinkSubnet6", "at most /126"},
		{"pool negative", ManagerConfig{PoolSize: -1}, "PoolSize", "between 0 and 1024"},
		{"pool huge", ManagerConfig{PoolSize: 5000}, "PoolSize", "between 0 and 1024"},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkFieldErr(t, c.cfg.Validate(), c.field, c.msg)
		})
	}
}

func TestCheckNetwork(t *testing.T) {
	v := &view{link4: p4("10.213.0.0/16"), networks: map[string]netip.Prefix{"a": p4("10.1.0.0/24")}}
	for _, c := range []struct {
		name  string
		cfg   NetworkConfig
		field string
		msg   string
	}{
		{"fine", NetworkConfig{Name: "b", Subnet: p4("10.2.0.0/24"), Members: []string{"x", "y"}}, "", ""},
		{"bad name", NetworkConfig{Name: "", Subnet: p4("10.2.0.0/24")}, "Name", "1 to 64"},
		{"taken name", NetworkConfig{Name: "a", Subnet: p4("10.2.0.0/24")}, "Name", "already exists"},
		{"overlaps network", NetworkConfig{Name: "b", Subnet: p4("10.1.0.128/25")}, "Subnet", `overlaps the subnet 10.1.0.0/24 of network "a"`},
		{"contains network", NetworkConfig{Name: "b", Subnet: p4("10.0.0.0/8")}, "Subnet", "overlaps"},
		{"overlaps link", NetworkConfig{Name: "b", Subnet: p4("10.213.7.0/24")}, "Subnet", "overlaps the link subnet"},
		{"v6", NetworkConfig{Name: "b", Subnet: p4("fd00::/64")}, "Subnet", "not an IPv4 subnet"},
		{"host bits", NetworkConfig{Name: "b", Subnet: p4("10.2.0.1/24")}, "Subnet", "host bits"},
		{"bad member", NetworkConfig{Name: "b", Subnet: p4("10.2.0.0/24"), Members: []string{"x", "a b"}}, "Members[1]", "not a letter"},
		{"member twice", NetworkConfig{Name: "b", Subnet: p4("10.2.0.0/24"), Members: []string{"x", "x"}}, "Members[1]", "Members[0]"},
		{"too many members", NetworkConfig{Name: "b", Subnet: p4("10.2.0.0/30"), Members: []string{"x", "y", "z"}}, "Members", "do not fit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkFieldErr(t, checkNetwork(&c.cfg, v), c.field, c.msg)
		})
	}
}

func TestPickSubnet(t *testing.T) {
	v := &view{link4: p4("10.213.0.0/16"), networks: map[string]netip.Prefix{"a": p4("10.214.0.0/24"), "b": p4("10.214.1.0/25")}}
	if got := pickSubnet(v); got != p4("10.214.2.0/24") {
		t.Errorf("pickSubnet = %s, want 10.214.2.0/24", got)
	}
	full := &view{link4: p4("10.0.0.0/8")}
	if got := pickSubnet(full); got.IsValid() {
		t.Errorf("pickSubnet with the space taken = %s, want none", got)
	}
}

func TestLinkBlocks(t *testing.T) {
	for _, c := range []struct {
		subnet      netip.Prefix
		block       uint64
		host, guest string
	}{
		{p4("10.213.0.0/16"), 0, "10.213.0.1", "10.213.0.2"},
		{p4("10.213.0.0/16"), 2, "10.213.0.9", "10.213.0.10"},
		{p4("10.213.0.0/16"), 64, "10.213.1.1", "10.213.1.2"},
		{p4("fd00::/64"), 3, "fd00::d", "fd00::e"},
		{p4("fd00::ffff:ff00/120"), 63, "fd00::ffff:fffd", "fd00::ffff:fffe"},
	} {
		h, g, err := linkBlock(c.subnet, c.block)
		if err != nil || h != a4(c.host) || g != a4(c.guest) {
			t.Errorf("linkBlock(%s, %d) = %s, %s, %v; want %s, %s", c.subnet, c.block, h, g, err, c.host, c.guest)
		}
	}
	if _, _, err := linkBlock(p4("10.0.0.0/30"), 1); err == nil {
		t.Error("linkBlock beyond the subnet succeeded")
	}
	if n := linkBlocks(p4("10.0.0.0/30")); n != 1 {
		t.Errorf("linkBlocks(/30) = %d, want 1", n)
	}
	if n := linkBlocks(p4("fd00::/64")); n != maxLinks {
		t.Errorf("linkBlocks(/64) = %d, want the cap %d", n, maxLinks)
	}
}

func TestOwnerNames(t *testing.T) {
	for _, c := range []struct {
		pid int
		seq uint64
	}{{1, 0}, {4194304, 1}, {4194304, 1 << 40}, {12345, 36*36*36*36*36*36 + 5}} {
		name := hostLinkName(c.pid, c.seq)
		if len(name) > 15 || !strings.HasPrefix(name, LinkPrefix) {
			t.Errorf("hostLinkName(%d, %d) = %q: too long or without the prefix", c.pid, c.seq, name)
		}
		if pid, ok := pidFromName(name); !ok || pid != c.pid {
			t.Errorf("pidFromName(%q) = %d, %v; want %d", name, pid, ok, c.pid)
		}
	}
	for _, name := range []string{"eth0", "stk", "stkzz", "stk-1", "stk!-1"} {
		if _, ok := pidFromName(name); ok {
			t.Errorf("pidFromName(%q) accepted a name that is not ours", name)
		}
	}
	o := owner{pid: 42, start: 123456}
	if got, ok := parseAlias(o.alias()); !ok || got != o {
		t.Errorf("parseAlias(%q) = %v, %v", o.alias(), got, ok)
	}
	for _, alias := range []string{"", "stockade owner=", "stockade owner=1", "stockade owner=x:1", "stockade owner=-1:1", "other owner=1:1"} {
		if _, ok := parseAlias(alias); ok {
			t.Errorf("parseAlias(%q) accepted a bad alias", alias)
		}
	}
	me, err := self()
	if err != nil || !me.alive() {
		t.Fatalf("self() = %v, %v; it should be alive", me, err)
	}
	if (owner{pid: me.pid, start: me.start + 1}).alive() {
		t.Error("an owner with this pid but another start time is alive")
	}
	if stale("stk1-0", "") {
		t.Error("a link of pid 1, which runs, is stale")
	}
	if !stale("x", owner{pid: me.pid, start: me.start + 1}.alias()) {
		t.Error("a link whose owner's start time differs is not stale")
	}
}

func FuzzConfigValidate(f *testing.F) {
	f.Add("web", "a", "10.1.0.2", "127.0.0.1:80", uint16(80), true)
	f.Add("", "", "", "", uint16(0), false)
	f.Fuzz(func(t *testing.T, host, network, addr, hostPort string, port uint16, link bool) {
		cfg := Config{Hostname: host}
		if network != "" {
			m := Membership{Network: network, Name: host}
			m.Addr, _ = netip.ParseAddr(addr)
			cfg.Networks = []Membership{m}
		}
		if hp, err := netip.ParseAddrPort(hostPort); err == nil {
			cfg.Ports = []Port{{Host: hp, Port: port}}
		}
		if link {
			cfg.Link = &Link{}
			cfg.Link.Addr, _ = netip.ParseAddr(addr)
		}
		v := &view{link4: defaultLinkSubnet, networks: map[string]netip.Prefix{"a": p4("10.1.0.0/24")}}
		for _, err := range []error{cfg.Validate(), v.check(&cfg)} {
			if err == nil {
				continue
			}
			var fe *ConfigError
			if !errors.As(err, &fe) || fe.Field == "" || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v is not an invalid-configuration *ConfigError", err)
			}
		}
	})
}
