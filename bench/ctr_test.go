package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

func TestCtrMarkdown(t *testing.T) {
	rep := &ctrReport{Date: time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC), Host: "Linux x", Load: "1 2 3",
		Containerd: "containerd 1.6", Busybox: "BusyBox", Runs: 4, Results: []*ctrResult{
			{Key: "runc", Name: "runc", Version: "runc 1", Whole: []float64{100, 110, 120, 200}, First: []float64{60, 70, 70, 80}},
			{Key: "stockade", Name: "stockade", Version: "this tree", Whole: []float64{90, 95, 99, 300}, First: []float64{40, 45, 50, 60}},
		}}
	var b strings.Builder
	rep.markdown(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 7, b.String())
	assert.Contains(t, lines[0], "4 runs with each runtime")
	// p50 and p90 of four are the second and the fourth; after is the
	// median of each run's whole minus its first output.
	assert.Equal(t, "| runc (runc 1) | 110.0 | 200.0 | 70.0 | 80.0 | 45.0 |", lines[4])
	assert.Equal(t, "| stockade (this tree) | 95.0 | 300.0 | 45.0 | 60.0 | 50.0 |", lines[5])
	assert.Equal(t, "| stockade / runc | 0.86× | 1.50× | 0.64× | 0.75× | 1.11× |", lines[6])

	// With the calls: a second table, the rest is the whole less the
	// calls, run by run.
	rep.Results[0].Calls = map[string][]float64{"create": {30, 40, 50, 60}, "start": {5, 5, 5, 5}, "delete": {7, 7, 7, 7}, "delete 2": {5, 5, 5, 5}}
	rep.Results[0].CallsTotal = []float64{47, 57, 67, 77}
	rep.Results[1].Calls = map[string][]float64{"create": {10, 10, 10, 10}, "start": {15, 15, 15, 15}, "delete": {12, 12, 12, 12}, "state": {1}}
	rep.Results[1].CallsTotal = []float64{37, 37, 38, 37}
	rep.Results[1].Monitor = []float64{30, 30, 30, 30}
	b.Reset()
	rep.markdown(&b)
	lines = strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 16, b.String())
	assert.Equal(t, "| runc | 45.0 | 5.0 | 7.0 | 5.0 | 62.0 | 53.0 | — |", lines[12])
	assert.Equal(t, "| stockade | 10.0 | 15.0 | 12.0 | — | 37.0 | 59.5 | 30.0 |", lines[13])
	assert.Equal(t, "Other calls in 4 runs of each: stockade state 1.", lines[15])

	// Without the process events: the reason.
	rep.Calls = "no proc connector"
	b.Reset()
	rep.markdown(&b)
	assert.Contains(t, b.String(), "not split out: no proc connector.")
}

func TestSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"/usr/sbin/runc", "--root", "/r", "--log", "/l/log.json", "--log-format", "json", "create", "--bundle", "/b", "id"}, "create"},
		{[]string{"/s/stockade", "--root", "/r", "delete", "--force", "id"}, "delete"},
		{[]string{"stockade", "--root", "/r", "runtime-monitor", "--bundle", "/b", "id"}, "runtime-monitor"},
		{[]string{"runc", "--root", "/r", "state", "start"}, "state"},
		{[]string{"runc", "--version"}, "?"},
	} {
		assert.Equal(t, tc.want, subcommand(tc.args), tc.args)
	}
}

func TestAddCalls(t *testing.T) {
	rt := &ctrRuntime{binary: "/s/stockade"}
	var r ctrResult
	r.addCalls(rt, []procExec{
		{args: []string{"/s/stockade", "create", "id"}, exec: 0, end: 10e6},
		{args: []string{"stockade", "--root", "/r", "runtime-monitor", "id"}, exec: 5e6, end: 40e6},
		{args: []string{"/s/stockade", "start", "id"}, exec: 15e6, end: 30e6},
		{args: []string{"/s/stockade", "delete", "id"}, exec: 45e6, end: 50e6},
		{args: []string{"/s/stockade", "delete", "--force", "id"}, exec: 55e6, end: 58e6},
		{args: []string{"/s/stockade", "state", "id"}, exec: 59e6}, // not ended: left out
		{args: []string{"/other/runtime", "kill", "id"}, exec: 1e6, end: 2e6},
	})
	assert.Equal(t, map[string][]float64{"create": {10}, "start": {15}, "delete": {5}, "delete 2": {3}}, r.Calls)
	assert.Equal(t, []float64{33}, r.CallsTotal)
	assert.Equal(t, []float64{35}, r.Monitor)
}

// TestProcWatch sees a process whose command line holds the marker, from
// its exec to its exit, and none other.
func TestProcWatch(t *testing.T) {
	testutil.RequireRoot(t)
	marker := "stockade-procwatch-" + t.Name()
	w, err := watchProcs(marker)
	require.NoError(t, err)
	defer w.stop()
	from := monotonicNow()
	require.NoError(t, exec.Command("/bin/sh", "-c", "sleep 0.05", marker).Run())
	require.NoError(t, exec.Command("/bin/sh", "-c", "true", "other").Run())
	to := monotonicNow()
	var execs []procExec
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if execs, _ = w.between(from, to); len(execs) == 1 && execs[0].end != 0 {
			break
		}
	}
	require.Len(t, execs, 1)
	assert.Equal(t, []string{"/bin/sh", "-c", "sleep 0.05", marker}, execs[0].args)
	assert.GreaterOrEqual(t, execs[0].end-execs[0].exec, int64(50*time.Millisecond), "it slept")
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/a":          "/tmp/a",
		`/tmp/a\040b`:     "/tmp/a b",
		`/tmp/a\011b\134`: "/tmp/a\tb\\",
		`/tmp/a\04`:       `/tmp/a\04`,
		`\`:               `\`,
	} {
		assert.Equal(t, want, unescapeMount(in), in)
	}
}

// requireContainerd skips (and under STOCKADE_REQUIRE_PRIVILEGED fails)
// without root, runc and containerd.
func requireContainerd(t *testing.T) {
	testutil.RequireRoot(t)
	busybox(t)
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			testutil.Skip(t, b+" is not installed", "apt-get install containerd runc")
		}
	}
}

// ctrLeftovers lists what a run of the ctr rows could leave: its scratch
// directories, /run/containerd, and processes of its containerd
// namespace (containerd, the shims, the runtimes, the monitors).
func ctrLeftovers(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "stockade-bench-ctr-*"))
	require.NoError(t, err)
	if _, err := os.Stat("/run/containerd"); err == nil {
		dirs = append(dirs, "/run/containerd")
	}
	return append(dirs, ctrProcesses()...)
}

// ctrProcesses lists the processes whose command line names this
// process's containerd namespace or scratch directory.
func ctrProcesses() []string {
	ns := []byte(fmtNamespace(os.Getpid()))
	scratch := []byte("stockade-bench-ctr-")
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cl), string(ns)) || strings.Contains(string(cl), string(scratch)) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cl), "\x00", " "))
		}
	}
	return out
}

// TestCtr runs the ctr rows briefly: both runtimes run every time, and
// nothing is left (the package's leak checks look at mounts, control
// groups and processes too).
func TestCtr(t *testing.T) {
	requireContainerd(t)
	before := ctrLeftovers(t)
	rep, err := measureCtr(context.Background(), &options{busybox: "/bin/busybox"}, "/usr/sbin/runc", 2)
	require.NoError(t, err)
	require.Len(t, rep.Results, 2)
	for _, r := range rep.Results {
		require.Len(t, r.Whole, 2, r.Name)
		require.Len(t, r.First, 2, r.Name)
		for i := range r.Whole {
			assert.Positive(t, r.First[i], r.Name)
			assert.Less(t, r.First[i], r.Whole[i], "%s: the output comes before ctr's end", r.Name)
		}
	}
	require.Empty(t, rep.Calls, "the process events")
	for _, r := range rep.Results {
		for _, call := range []string{"create", "start", "delete"} {
			assert.Len(t, r.Calls[call], 2, "%s %s", r.Name, call)
		}
		assert.Len(t, r.CallsTotal, 2, r.Name)
	}
	assert.Len(t, rep.Results[1].Monitor, 2, "stockade's monitor")
	assert.Empty(t, rep.Results[0].Monitor, "runc has none")
	assert.Equal(t, "runc", rep.Results[0].Key)
	assert.Equal(t, "stockade", rep.Results[1].Key)
	assert.Contains(t, rep.Containerd, "containerd")
	assert.Equal(t, before, ctrLeftovers(t))
}

// TestCtrInterrupted cancels the runs while a container is being run
// (its shim is up): the run ends with an error and leaves nothing.
func TestCtrInterrupted(t *testing.T) {
	requireContainerd(t)
	before := ctrLeftovers(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shimUp := make(chan struct{})
	go func() {
		marker := "-namespace " + fmtNamespace(os.Getpid()) + " -id"
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			for _, p := range ctrProcesses() {
				if strings.Contains(p, marker) {
					close(shimUp)
					cancel()
					return
				}
			}
		}
	}()
	_, err := measureCtr(ctx, &options{busybox: "/bin/busybox"}, "/usr/sbin/runc", 1000)
	require.Error(t, err)
	t.Logf("the interrupted run: %v", err)
	select {
	case <-shimUp:
	default:
		t.Fatalf("no shim was seen, the runs ended: %v", err)
	}
	assert.True(t, errors.Is(ctx.Err(), context.Canceled))
	assert.Equal(t, before, ctrLeftovers(t))
}
