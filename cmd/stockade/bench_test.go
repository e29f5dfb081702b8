package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
)

// BenchmarkCLIRun is the whole-process cost of the command: stockade run
// of /bin/true in a busybox root, start to exit, as a shell would see it.
// BenchmarkPlainExec and BenchmarkCLIVersion, measured in the same run,
// are its floor and the cost of starting the binary at all (which every
// sandbox's init stage pays again, being the same binary).
func BenchmarkCLIRun(b *testing.B) {
	testutil.RequireUserNamespaces(b)
	bin, root := buildStockade(b), busyboxRoot(b)
	benchProcess(b, bin, "run", "--rootfs", root, "--", "/bin/true")
}

// BenchmarkCLIVersion starts the binary and lets it print its version.
func BenchmarkCLIVersion(b *testing.B) {
	benchProcess(b, buildStockade(b), "version")
}

// BenchmarkPlainExec runs busybox true from the same root, unsandboxed.
func BenchmarkPlainExec(b *testing.B) {
	benchProcess(b, filepath.Join(busyboxRoot(b), "bin", "true"))
}

// benchProcess runs a process b.N times and reports the median and the
// 90th percentile of its runs, and runs per second.
func benchProcess(b *testing.B, path string, args ...string) {
	var runs []time.Duration
	for b.Loop() {
		t := time.Now()
		if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		runs = append(runs, time.Since(t))
	}
	slices.Sort(runs)
	b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(runs[len(runs)*9/10].Microseconds())/1000, "p90-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
}
