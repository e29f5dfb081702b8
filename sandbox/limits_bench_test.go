//go:build linux

package sandbox

import (
	"os/exec"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
)

// benchLimits are the limits of a typical judge: memory without swap,
// tasks, a CPU time limit and an output limit.
var benchLimits = Limits{Memory: 256 << 20, Pids: 64, CPUTime: 10 * time.Second, Output: 1 << 20}

// BenchmarkRunLimits is BenchmarkRun with benchLimits, to compare side by
// side: the difference is what limits cost a start. Its cgroup-ms metric
// is the calling process's share (create, limit, place, kill, remove).
func BenchmarkRunLimits(b *testing.B) {
	requireCgroupB(b)
	benchRun(b, Config{Args: []string{"/bin/true"}, Limits: benchLimits})
}

// BenchmarkCgroupStep measures the cgroup step of one sandbox the way
// Start and Wait take it: create the group with benchLimits, start a
// process inside it from a spawner (on cgroup v1 the spawner's thread
// enters the group for the fork and leaves it; on v2 the clone does it),
// and after the process has ended kill what is left, read the figures and
// remove the group. Starting and reaping the process is not timed. It
// reports the median and the 90th percentile.
func BenchmarkCgroupStep(b *testing.B) {
	requireCgroupB(b)
	cfg := Config{Args: []string{"/bin/true"}, Limits: benchLimits}
	step := func() time.Duration {
		s := &Sandbox{cfg: cfg}
		l, err := newLimiter(&s.cfg)
		if err != nil {
			b.Fatal(err)
		}
		s.lim = l
		// A process that waits, as the init does, before it is placed.
		s.cmd = exec.Command("/bin/sleep", "10")
		s.cmd.SysProcAttr = cfg.initCommand(nil, identity{}).SysProcAttr
		s.cmd.SysProcAttr.Cloneflags = 0
		s.cmd.SysProcAttr.Credential = nil
		s.cmd.SysProcAttr.UidMappings, s.cmd.SysProcAttr.GidMappings = nil, nil
		l.attach(s)
		if _, err := onSpawner(-1, l.spawn(s, s.cmd.Start)); err != nil {
			b.Fatal(err)
		}
		s.cmd.Process.Kill()
		s.cmd.Wait()
		l.end(s)
		return l.cost
	}
	step() // the first sandbox of a process also cleans up the parent
	var costs []time.Duration
	for b.Loop() {
		costs = append(costs, step())
	}
	reportPercentiles(b, costs)
	b.ReportMetric(0, "ns/op")
}

func requireCgroupB(b *testing.B) {
	b.Helper()
	testutil.RequireRoot(b)
	if err := (&Limits{Pids: 64}).validate(); err != nil {
		testutil.Skip(b, "no control group for a sandbox: "+err.Error(), "run as root on a host with cgroups")
	}
}
