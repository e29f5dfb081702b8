//go:build linux

package netns

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// timings collects the durations of one step of a benchmark and reports
// their median and 90th percentile in milliseconds.
type timings []time.Duration

func (ts *timings) time(fn func()) {
	start := time.Now()
	fn()
	*ts = append(*ts, time.Since(start))
}

func (ts timings) report(b *testing.B, prefix string) {
	if len(ts) == 0 {
		return
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(s[len(s)/2]), prefix+"p50-ms")
	b.ReportMetric(ms(s[len(s)*9/10]), prefix+"p90-ms")
}

// BenchmarkNew measures making a namespace with lo up, without a pool. The
// kernel destroys each one later, in the background, after Close.
func BenchmarkNew(b *testing.B) {
	requireNetAdmin(b)
	var ts timings
	for b.Loop() {
		var ns *NS
		var err error
		ts.time(func() { ns, err = New() })
		if err != nil {
			b.Fatal(err)
		}
		ns.Close()
	}
	ts.report(b, "")
}

// BenchmarkPoolGet measures taking a namespace from a warm pool: the cost a
// sandbox pays for its network namespace with the pool. Between takes, the
// benchmark waits for the refill, out of the timing.
func BenchmarkPoolGet(b *testing.B) {
	requireNetAdmin(b)
	p := NewPool(4)
	defer p.Close()
	var ts timings
	for b.Loop() {
		b.StopTimer()
		waitReady(b, p, 4)
		b.StartTimer()
		var ns *NS
		var err error
		ts.time(func() { ns, err = p.Get() })
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		ns.Close()
		b.StartTimer()
	}
	ts.report(b, "")
}

// BenchmarkDo measures entering a namespace on a locked thread and coming
// back: what joining a pooled namespace costs a spawner thread, give or
// take the goroutine Do starts.
func BenchmarkDo(b *testing.B) {
	requireNetAdmin(b)
	ns := newNS(b)
	for b.Loop() {
		if err := ns.Do(func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetup measures Manager.Setup and Release for each kind of
// network, with and without a pool. Links use a fake host namespace.
func BenchmarkSetup(b *testing.B) {
	requireNetAdmin(b)
	host, err := New()
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	for _, bc := range []struct {
		name string
		cfg  Config
		pool int
	}{
		{"none/pool=0", Config{}, 0},
		{"none/pool=4", Config{}, 4},
		{"link/pool=0", Config{Link: &Link{}}, 0},
		{"link/pool=4", Config{Link: &Link{}}, 4},
		{"network/pool=4", Config{Networks: []Membership{{Network: "bench"}}}, 4},
		// Joining under the name of a member that just left waits for its
		// link to go.
		{"network-rejoin/pool=4", Config{Networks: []Membership{{Network: "bench", Name: "m"}}}, 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m, err := NewManager(ManagerConfig{Host: host, PoolSize: bc.pool})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			if _, err := m.NewNetwork(NetworkConfig{Name: "bench"}); err != nil {
				b.Fatal(err)
			}
			var setup, release timings
			for b.Loop() {
				if m.pool != nil {
					b.StopTimer()
					waitReady(b, m.pool, bc.pool)
					b.StartTimer()
				}
				cfg := bc.cfg
				if len(cfg.Networks) > 0 && cfg.Networks[0].Name == "" {
					// A name of its own for each member.
					cfg.Hostname = fmt.Sprintf("m%d", len(setup))
				}
				var n *Net
				setup.time(func() { n, err = m.Setup(cfg) })
				if err != nil {
					b.Fatal(err)
				}
				release.time(func() { err = n.Release() })
				if err != nil {
					b.Fatal(err)
				}
			}
			setup.report(b, "setup-")
			release.report(b, "release-")
		})
	}
}
