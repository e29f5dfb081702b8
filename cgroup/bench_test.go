//go:build linux

package cgroup

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkGroupLifecycle measures what a sandbox start and end cost in
// this package: create a group with memory and pids limits, place a process
// in it (AddProc, also on v2, where a sandbox would use FD instead at no
// cost of its own) and remove it. The process is one long-lived helper;
// moving it back out of the group before the removal is not timed. Besides
// ns/op it reports the median and the 90th percentile in ms, since this
// machine's background work (the kernel frees memory cgroups
// asynchronously) makes the mean noisy.
func BenchmarkGroupLifecycle(b *testing.B) {
	requireCgroups(b)
	cfg := Config{Limits: Limits{Memory: 256 << 20, Pids: 64}}
	// Warm up: create the parents and probe the host outside the loop.
	g, err := Create(cfg)
	if err != nil {
		b.Fatal(err)
	}
	h := startHelperB(b, g)
	pid := h.cmd.Process.Pid
	own := make([]string, 0, 8)
	for _, d := range dirs(g) {
		// dir is <own cgroup>/stockade/<name>.
		own = append(own, filepath.Dir(filepath.Dir(d))+"/cgroup.procs")
	}
	moveOut := func() {
		for _, p := range own {
			if err := writeFile(p, itoa(pid)); err != nil {
				b.Fatal(err)
			}
		}
	}
	moveOut()
	if err := g.Remove(); err != nil {
		b.Fatal(err)
	}

	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		g, err := Create(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.AddProc(pid); err != nil {
			b.Fatal(err)
		}
		placed := time.Since(start)
		b.StopTimer()
		moveOut()
		b.StartTimer()
		start = time.Now()
		if err := g.Remove(); err != nil {
			b.Fatal(err)
		}
		times = append(times, placed+time.Since(start))
	}
	slices.Sort(times)
	ms := func(q float64) float64 {
		return float64(times[int(q*float64(len(times)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.9), "p90-ms")
}

// startHelperB starts a sleeping helper in g for a benchmark.
func startHelperB(b *testing.B, g *Group) *helper {
	b.Helper()
	cmd, stdin, err := helperCommand(g, "sleep")
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin}
	started.Store(cmd.Process.Pid, struct{}{})
	b.Cleanup(h.stop)
	if err := place(g, cmd); err != nil {
		b.Fatal(err)
	}
	return h
}
