package sandbox

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
)

// BenchmarkExec is the floor: a plain os/exec of /bin/true, to compare
// BenchmarkRun with in the same run.
func BenchmarkExec(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkRun starts the default, fully isolated sandbox running
// /bin/true and waits for it, one at a time. Besides ms/op and
// sandboxes/s it reports the mean time of every stage of a start, so that
// the costliest one is always known.
func BenchmarkRun(b *testing.B) {
	testutil.RequireRoot(b)
	cfg := Config{Args: []string{"/bin/true"}}
	sums := map[string]time.Duration{}
	var order []string
	for b.Loop() {
		sb := New(cfg)
		if err := sb.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		if _, err := sb.Wait(); err != nil {
			b.Fatal(err)
		}
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
	reportRate(b)
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
