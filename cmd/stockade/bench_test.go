//go:build linux

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/sandbox"
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

// BenchmarkInProcessRun is what BenchmarkCLIRun does, through the API from
// this process: the difference is the cost of the command line's own
// process.
func BenchmarkInProcessRun(b *testing.B) {
	testutil.RequireUserNamespaces(b)
	cfg := sandbox.Config{Args: []string{"/bin/true"}, RootDir: busyboxRoot(b)}
	var runs []time.Duration
	for b.Loop() {
		t := time.Now()
		if _, err := sandbox.New(cfg).Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		runs = append(runs, time.Since(t))
	}
	reportRuns(b, runs)
}

// BenchmarkCLIVersion starts the binary and lets it print its version.
func BenchmarkCLIVersion(b *testing.B) {
	benchProcess(b, buildStockade(b), "version")
}

// BenchmarkPlainExec runs busybox true from the same root, unsandboxed.
func BenchmarkPlainExec(b *testing.B) {
	benchProcess(b, filepath.Join(busyboxRoot(b), "bin", "true"))
}

// benchProcess runs a process b.N times and reports on its runs.
func benchProcess(b *testing.B, path string, args ...string) {
	var runs []time.Duration
	for b.Loop() {
		t := time.Now()
		if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		runs = append(runs, time.Since(t))
	}
	reportRuns(b, runs)
}

// reportRuns reports the median and the 90th percentile of runs, and runs
// per second.
func reportRuns(b *testing.B, runs []time.Duration) {
	slices.Sort(runs)
	b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(runs[len(runs)*9/10].Microseconds())/1000, "p90-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
}
