//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/netns"
)

// BenchmarkPlainExec is the floor: a plain os/exec of /bin/true, to
// compare the sandbox's benchmarks with in the same run.
func BenchmarkPlainExec(b *testing.B) {
	var runs []time.Duration
	for b.Loop() {
		t := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		runs = append(runs, time.Since(t))
	}
	reportPercentiles(b, runs)
	reportRate(b)
}

// BenchmarkRun starts the default, fully isolated sandbox running
// /bin/true and waits for it, one at a time. Besides ms/op and
// sandboxes/s it reports the mean time of every stage of a start, so that
// the costliest one is always known.
func BenchmarkRun(b *testing.B) {
	testutil.RequireRoot(b)
	benchRun(b, Config{Args: []string{"/bin/true"}})
}

// BenchmarkRunNode is BenchmarkRun with a device node made for the
// sandbox (Mount{Kind: Node}): a tmpfs of its own, the node, its bind.
func BenchmarkRunNode(b *testing.B) {
	testutil.RequireRoot(b)
	benchRun(b, Config{Args: []string{"/bin/true"}, Mounts: []Mount{
		{Kind: Node, Target: "/dev/fuse", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Rdev: unix.Mkdev(10, 229)},
	}})
}

// BenchmarkRunJoin is BenchmarkRun in a network namespace made once and
// joined by every sandbox (Network.Join), instead of one of its own.
func BenchmarkRunJoin(b *testing.B) {
	testutil.RequireRoot(b)
	ns, err := netns.NewLoopback()
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	benchRun(b, Config{Args: []string{"/bin/true"}, Network: Network{Join: fmt.Sprintf("/proc/self/fd/%d", ns.Fd())}})
}

// benchRun runs cfg one sandbox at a time and reports the percentiles,
// the rate and the mean time of every stage of a start.
func benchRun(b *testing.B, cfg Config) {
	sums := map[string]time.Duration{}
	var order []string
	var runs []time.Duration
	for b.Loop() {
		t := time.Now()
		sb := New(cfg)
		if err := sb.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		if _, err := sb.Wait(); err != nil {
			b.Fatal(err)
		}
		runs = append(runs, time.Since(t))
		for _, st := range sb.times.stages() {
			if _, ok := sums[st.name]; !ok {
				order = append(order, st.name)
			}
			sums[st.name] += st.d
		}
	}
	for _, name := range order {
		b.ReportMetric(float64(sums[name].Microseconds())/float64(b.N)/1000, name+"-ms")
	}
	reportPercentiles(b, runs)
	reportRate(b)
}

// reportPercentiles reports the median and the 90th percentile of runs.
func reportPercentiles(b *testing.B, runs []time.Duration) {
	slices.Sort(runs)
	b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(runs[len(runs)*9/10].Microseconds())/1000, "p90-ms")
}

// BenchmarkRunParallel measures throughput: sandboxes started and waited
// for concurrently by GOMAXPROCS launchers.
func BenchmarkRunParallel(b *testing.B) {
	testutil.RequireRoot(b)
	cfg := Config{Args: []string{"/bin/true"}}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := New(cfg).Run(context.Background()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}

func reportRate(b *testing.B) {
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perOp*1000, "ms/op")
	b.ReportMetric(1/perOp, "sandboxes/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRunLargeBinary is BenchmarkRun from a large binary (see
// testdata/bigbinary): the init stage is a re-execution of the caller, so
// the caller's size and package initialisation are paid on every start.
// It reports the median of the binary's own runs and its size.
func BenchmarkRunLargeBinary(b *testing.B) {
	testutil.RequireRoot(b)
	bin := filepath.Join(b.TempDir(), "bigbinary")
	build := exec.Command("go", "build", "-o", bin, "./testdata/bigbinary")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	out, err := exec.Command(bin, strconv.Itoa(b.N)).Output()
	if err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	b.StopTimer()
	median, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(median)/1e6, "p50-ms")
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSandboxExec runs /bin/true with Exec in one long-lived sandbox.
func BenchmarkSandboxExec(b *testing.B) {
	testutil.RequireRoot(b)
	sb := New(Config{})
	if err := sb.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	var runs []time.Duration
	for b.Loop() {
		t := time.Now()
		if _, err := sb.Exec(context.Background(), Cmd{Args: []string{"/bin/true"}}); err != nil {
			b.Fatal(err)
		}
		runs = append(runs, time.Since(t))
	}
	reportPercentiles(b, runs)
	reportRate(b)
}

// BenchmarkPoolRun runs /bin/true in a fresh sandbox from a warm pool, one
// run at a time, as a judge waiting for the next submission would.
func BenchmarkPoolRun(b *testing.B) {
	testutil.RequireRoot(b)
	p, err := NewPool(Config{}, 4)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for p.Ready() < 4 {
		time.Sleep(time.Millisecond)
	}
	var runs []time.Duration
	for b.Loop() {
		// Give the pool time to refill, as between submissions; only the
		// run itself is timed.
		b.StopTimer()
		for p.Ready() < 4 {
			time.Sleep(100 * time.Microsecond)
		}
		b.StartTimer()
		t := time.Now()
		if _, err := p.Run(context.Background(), Cmd{Args: []string{"/bin/true"}}); err != nil {
			b.Fatal(err)
		}
		runs = append(runs, time.Since(t))
	}
	reportPercentiles(b, runs)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPoolRunParallel measures sustained throughput: fresh pooled
// sandboxes per second, with the pool's refilling included.
func BenchmarkPoolRunParallel(b *testing.B) {
	testutil.RequireRoot(b)
	p, err := NewPool(Config{}, 8)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Run(context.Background(), Cmd{Args: []string{"/bin/true"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}
