//go:build linux

package sandbox

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestTCPLimitsFollowTheNetwork: TCP is limited unless the caller asked for
// it, by AnyTCP or by giving the sandbox a network without naming ports;
// forwarded ports may always be bound.
func TestTCPLimitsFollowTheNetwork(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cfg       Config
		unlimited bool
	}{
		{"none", Config{}, false},
		{"any", Config{Security: Security{Landlock: Landlock{AnyTCP: true}}}, true},
		{"host", Config{Network: Network{ShareHost: true}}, true},
		{"link", Config{Network: Network{Link: &Link{}}}, true},
		{"private", Config{Network: Network{Networks: []Membership{{Network: "n"}}}}, true},
		{"link with ports named", Config{Network: Network{Link: &Link{}}, Security: Security{Landlock: Landlock{ConnectTCP: []uint16{443}}}}, false},
		{"forwarded port only", Config{Network: Network{Ports: []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 80}}}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.unlimited, tt.cfg.tcpUnlimited())
		})
	}
	cfg := Config{Network: Network{Ports: []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 8080}}}}
	d := cfg.withDefaults()
	p := d.plan()
	r := d.landlockRuleset(&p)
	found := false
	for _, pr := range r.Ports {
		found = found || pr.Port == 8080
	}
	assert.True(t, found, "a forwarded port may be bound")
}
