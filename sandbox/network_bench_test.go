//go:build linux

package sandbox

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
)

// BenchmarkNetwork measures what a sandbox's network costs its start, one
// sandbox running /bin/true at a time, for each kind of network with and
// without the process's pool of ready namespaces. Besides the start-to-exit
// percentiles it reports net-p50-ms and
// net-p90-ms, what the network adds to the start's path (preparing it, and
// the init's wait for its links once it is ready to go on; see
// startTimes.network), and links-p50-ms, how long making the links took
// while the init started. Compare p50-ms with the "none" case for the
// whole cost, CPU contention included. The links' host sides go to a
// namespace of the benchmark's own.
func BenchmarkNetwork(b *testing.B) {
	host := requireNet(b)
	defer func() {
		if err := setDefaultNetworking(testNetworking()); err != nil {
			b.Error(err)
		}
	}()
	testutil.Busybox(b)
	ports := []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 80}}
	for _, bc := range []struct {
		name string
		net  Network
		pool int
	}{
		{"none", Network{}, -1},
		{"link/pool=0", Network{Link: &Link{}}, -1},
		{"link/pool=2", Network{Link: &Link{}}, 2},
		{"link/pool=4", Network{Link: &Link{}}, 4},
		{"network/pool=0", Network{Networks: []Membership{{Network: "bench"}}}, -1},
		{"network/pool=2", Network{Networks: []Membership{{Network: "bench"}}}, 2},
		{"ports/pool=0", Network{Ports: ports}, -1},
		{"ports/pool=2", Network{Ports: ports}, 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := NetworkingConfig{Host: host, PoolSize: bc.pool}
			if !bc.net.managed() || (bc.net.Link == nil && len(bc.net.Networks) == 0) {
				// Ports alone listen on the host's loopback, where the
				// fake host's cost of entering a namespace would be
				// measured too; they make no link.
				n.Host = nil
			}
			if err := setDefaultNetworking(n); err != nil {
				b.Fatal(err)
			}
			nw, err := DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer nw.Close()
			// Let the pool fill before the first start.
			time.Sleep(20 * time.Millisecond)
			var runs, nets, links []time.Duration
			i := 0
			for b.Loop() {
				cfg := Config{Args: []string{"/bin/true"}, Network: bc.net}
				// Members need names of their own.
				cfg.Hostname = "m" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
				i++
				t := time.Now()
				sb := New(cfg)
				if err := sb.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				if _, err := sb.Wait(); err != nil {
					b.Fatal(err)
				}
				runs = append(runs, time.Since(t))
				nets = append(nets, sb.times.network())
				links = append(links, sb.times.netLinks)
			}
			reportPercentiles(b, runs)
			reportNamed(b, "net-", nets)
			reportNamed(b, "links-", links)
			reportRate(b)
		})
	}
}

// reportNamed reports the median and the 90th percentile of ds with the
// unit prefix+"p50-ms" and prefix+"p90-ms".
func reportNamed(b *testing.B, prefix string, ds []time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(s[len(s)*9/10].Microseconds())/1000, prefix+"p90-ms")
}

// BenchmarkNetworkSideBySide measures the whole cost of a link, CPU
// contention included: each iteration starts a sandbox without a network
// and one with a link (from a pool of 2), one after the other, so that both
// see the same load; it reports both medians and their difference.
func BenchmarkNetworkSideBySide(b *testing.B) {
	host := requireNet(b)
	defer func() {
		if err := setDefaultNetworking(testNetworking()); err != nil {
			b.Error(err)
		}
	}()
	if err := setDefaultNetworking(NetworkingConfig{Host: host, PoolSize: 2}); err != nil {
		b.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	run := func(cfg Config) time.Duration {
		t := time.Now()
		if _, err := New(cfg).Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	var none, link []time.Duration
	for b.Loop() {
		none = append(none, run(Config{Args: []string{"/bin/true"}}))
		link = append(link, run(Config{Args: []string{"/bin/true"}, Network: Network{Link: &Link{}}}))
	}
	slices.Sort(none)
	slices.Sort(link)
	p50 := func(ds []time.Duration) float64 { return float64(ds[len(ds)/2].Microseconds()) / 1000 }
	b.ReportMetric(p50(none), "none-p50-ms")
	b.ReportMetric(p50(link), "link-p50-ms")
	b.ReportMetric(p50(link)-p50(none), "link-extra-ms")
	b.ReportMetric(0, "ns/op")
}
