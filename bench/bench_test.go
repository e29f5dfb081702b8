package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Run(m, testutil.Options{Setup: func() error {
		runtime.LockOSThread() // as main does: see onThread
		return nil
	}})
}

func TestPercentile(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		sorted []float64
		p      int
		want   float64
	}{
		{ten, 50, 5},
		{ten, 90, 9},
		{ten, 100, 10},
		{ten, 1, 1},
		{[]float64{7}, 50, 7},
		{[]float64{7}, 90, 7},
		{[]float64{1, 2, 3}, 50, 2},
		{nil, 50, 0},
	} {
		assert.Equal(t, tc.want, percentile(tc.sorted, tc.p), "p%d of %v", tc.p, tc.sorted)
	}
}

func TestMedian(t *testing.T) {
	assert.Equal(t, 0.0, median(nil))
	assert.Equal(t, 3.0, median([]float64{3}))
	assert.Equal(t, 2.5, median([]float64{4, 1, 2, 3}))
	assert.Equal(t, 2.0, median([]float64{100, 1, 2}), "a window hit by a burst of load does not count")
}

func TestSummarize(t *testing.T) {
	r := &result{
		Runs:       []float64{4, 2, 3, 1, 5},
		stageSums:  map[string]int64{"fork": int64(5 * time.Millisecond), "total": int64(10 * time.Millisecond)},
		stageOrder: []string{"fork", "total"},
	}
	r.summarize()
	assert.Equal(t, 3.0, r.P50)
	assert.Equal(t, 5.0, r.P90)
	// Five runs: a mean fork of 1 ms, a mean Start of 2 ms, and the rest
	// of the mean run (3 ms) after it.
	want := []stageTime{{"fork", 1}, {"total", 2}, {"exit", 1}}
	require.Len(t, r.Stages, len(want))
	for i, w := range want {
		assert.Equal(t, w.Name, r.Stages[i].Name)
		assert.InDelta(t, w.Ms, r.Stages[i].Ms, 1e-9, w.Name)
	}
}

// sample is a report as a full run makes it.
func sample() *report {
	res := func(key, name string, p50, r1, r8, rss float64) *result {
		return &result{Key: key, Name: name, Isolation: "iso " + key, P50: p50, P90: p50 * 1.5, CPU: p50 / 2,
			Rate: map[int]float64{1: r1, 8: r8}, RSS: rss, PSS: rss / 2, Anon: rss / 4, Held: map[bool]int{true: 8}[rss > 0]}
	}
	in := res("stockade", "stockade in-process", 2, 500, 900, 2.5)
	in.Stages = []stageTime{{"fork", 0.5}, {"total", 1.5}, {"exit", 0.5}}
	in.ByProcess = map[string]float64{"exe": 2.25, "+owner": 0.25}
	in.OwnCPU = 0.25
	return &report{
		Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Host: "Linux test", Load: "0.10 0.20 0.30", Busybox: "BusyBox v1",
		Runs: 100, Rounds: 10, Duration: "1s", Windows: 3, Launchers: []int{1, 8}, Hold: 8,
		Results: []*result{
			res("plain", "plain exec", 1, 1000, 2000, 0),
			in,
			res("cli", "stockade run (CLI)", 6, 150, 300, 6),
			res("bwrap", "bwrap", 5, 200, 300, 3),
			{Key: "crun", Name: "crun", Isolation: "iso crun", Error: "warm-up: crun: exit status 1: a | b\nc"},
		},
		Missing: []string{"runc: not installed (Debian package runc)"},
	}
}

func TestMarkdown(t *testing.T) {
	var b strings.Builder
	sample().markdown(&b)
	md := b.String()
	for _, want := range []string{
		"Measured 2026-01-02 03:04 UTC on Linux test, load average 0.10 0.20 0.30 when it began.",
		"| runner | p50 ms | p90 ms | × plain | × bwrap | CPU ms | 1 launcher/s | 8 launchers/s | RSS MiB/sandbox | PSS | anon |",
		"| plain exec | 1.00 | 1.50 | 1.00 | 0.20 | 0.50 | 1000 | 2000 | — | — | — |",
		"| stockade in-process | 2.00 | 3.00 | 2.00 | 0.40 | 1.00 | 500 | 900 | 2.50 | 1.25 | 0.62 |",
		// The error keeps to one line and cannot end the table's cell.
		`| crun | failed: warm-up: crun: exit status 1: a \| b c |`,
		"| in-process p50 ≤ 0.5 × bwrap's | 0.40 × | met |",
		"| in-process CPU per sandbox ≤ 0.9 × bwrap's | 0.40 × | met |",
		"| CLI p50 ≤ bwrap's | 1.20 × | missed |",
		"| supervisor RSS ≤ 1 MiB per running sandbox | 2.50 MiB | missed |",
		"CPU per sandbox: 1.00 ms, 0.25 in the program that embeds the library and 0.75 in the sandbox's init stage and command.",
		"| fork | total | exit |",
		"| 0.50 | 1.50 | 0.50 |",
		"- stockade in-process: +owner 0.25, exe 2.25\n",
		"- **bwrap**: iso bwrap",
		"- not measured: runc: not installed (Debian package runc)",
	} {
		assert.Contains(t, md, want)
	}
}

// TestGoalsWithoutPeers: a goal that needs bwrap is left out when bwrap
// was not measured, rather than reported against nothing.
func TestGoalsWithoutPeers(t *testing.T) {
	rep := sample()
	rep.Results = rep.Results[:3] // plain, in-process, CLI
	var what []string
	for _, g := range rep.goalList() {
		what = append(what, g.What)
	}
	assert.Equal(t, []string{"supervisor RSS ≤ 1 MiB per running sandbox"}, what)
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, sample().write(dir))
	png, err := os.ReadFile(filepath.Join(dir, "results.png"))
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "results.png is a PNG")
	var back report
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, 900.0, back.Results[1].Rate[8])
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| stockade in-process |")
}

func TestUpdateReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	before := "# x\n\n## Performance\n\n" + readmeBegin + "\n\nold table\n\n" + readmeEnd + "\n\nmore\n"
	require.NoError(t, os.WriteFile(path, []byte(before), 0o644))
	require.NoError(t, updateReadme(path, "| new | table |\n"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# x\n\n## Performance\n\n"+readmeBegin+"\n\n| new | table |\n\n"+readmeEnd+"\n\nmore\n", string(b))

	// Without its markers the file is left alone.
	require.NoError(t, os.WriteFile(path, []byte("# x\n"), 0o644))
	assert.ErrorContains(t, updateReadme(path, "t"), "has no")
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# x\n", string(b))
}

// TestRewrite writes a saved run's outputs again, as --from does.
func TestRewrite(t *testing.T) {
	first, again := t.TempDir(), t.TempDir()
	require.NoError(t, sample().write(first))
	require.NoError(t, rewrite(&options{from: filepath.Join(first, "results.json"), out: again}))
	for _, f := range []string{"results.md", "results.json"} {
		want, err := os.ReadFile(filepath.Join(first, f))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(again, f))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), f)
	}
	assert.FileExists(t, filepath.Join(again, "results.png"))
	assert.Error(t, rewrite(&options{from: filepath.Join(first, "none.json"), out: again}))
}

func TestOCISpec(t *testing.T) {
	s := ociSpec("/tmp/root", []string{"/bin/true"})
	assert.Equal(t, ociVersion, s.Version)
	assert.Equal(t, []string{"/bin/true"}, s.Process.Args)
	assert.True(t, s.Process.NoNewPrivileges)
	assert.Empty(t, s.Process.Capabilities.Bounding, "no capabilities")
	assert.True(t, s.Root.Readonly)
	var ns []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	assert.ElementsMatch(t, []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace,
		specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.UserNamespace}, ns)
	for _, m := range append(s.Linux.UIDMappings, s.Linux.GIDMappings...) {
		assert.NotZero(t, m.HostID, "the container's ids never map onto host root")
	}
	assert.Equal(t, int64(bundleMemory), *s.Linux.Resources.Memory.Limit)
	assert.Equal(t, int64(bundlePids), *s.Linux.Resources.Pids.Limit)
}

func TestKbField(t *testing.T) {
	f := filepath.Join(t.TempDir(), "status")
	require.NoError(t, os.WriteFile(f, []byte("Name:\tx\nVmRSS:\t    1234 kB\nPss: 2 kB\n"), 0o644))
	n, err := kbField(f, "VmRSS:")
	require.NoError(t, err)
	assert.Equal(t, int64(1234<<10), n)
	n, err = kbField(f, "Missing:")
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = kbField(filepath.Join(t.TempDir(), "none"), "VmRSS:")
	assert.Error(t, err)
}

func TestMemSum(t *testing.T) {
	var m memSum
	for range 2 {
		m.add([]proc{
			{Comm: "bwrap", RSS: 3 << 20, PSS: 1 << 20, Anon: 1 << 20},
			{Comm: "bwrap", RSS: 1 << 20, PSS: 1 << 20, Anon: 1 << 20},
			{Comm: "sleep", RSS: 100 << 20, PSS: 100 << 20},
		})
	}
	assert.Equal(t, int64(8<<20), m.rss)
	assert.Equal(t, int64(4<<20), m.pss)
	assert.Equal(t, 2, m.payloads)
	var res result
	m.record(&res, 2)
	assert.Equal(t, 4.0, res.RSS, "per sandbox")
	assert.Equal(t, 2.0, res.PSS)
	assert.Equal(t, 2.0, res.Anon)
	assert.Equal(t, 2, res.Held)
	assert.Equal(t, map[string]float64{"bwrap": 4}, res.ByProcess)
}

// busybox returns the static busybox the root is built from, or skips.
func busybox(t *testing.T) string {
	t.Helper()
	testutil.RequireFeature(t, "a static busybox at /bin/busybox", checkStatic("/bin/busybox"), "apt-get install busybox-static")
	return "/bin/busybox"
}

func TestMakeRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	require.NoError(t, os.Mkdir(root, 0o700))
	require.NoError(t, makeRoot(root, busybox(t)))
	fi, err := os.Stat(root)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), "the mapped ids of a user namespace can walk it")
	for _, d := range rootDirs {
		assert.DirExists(t, filepath.Join(root, d))
	}
	out, err := exec.Command(filepath.Join(root, "bin", "sh"), "-c", "echo ok").Output()
	require.NoError(t, err)
	assert.Equal(t, "ok\n", string(out))
	require.NoError(t, exec.Command(filepath.Join(root, "bin", "true")).Run())
}

func TestCheckStatic(t *testing.T) {
	text := filepath.Join(t.TempDir(), "busybox")
	require.NoError(t, os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755))
	assert.ErrorContains(t, checkStatic(text), "install busybox-static")
	// Debian's ls needs the dynamic loader.
	if err := checkStatic("/bin/ls"); err != nil {
		assert.ErrorContains(t, err, "dynamically linked")
	} else {
		t.Log("/bin/ls is static here: only the ELF check was tried")
	}
}

func TestTree(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 100; true")
	require.NoError(t, cmd.Start())
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var procs []proc
	require.Eventually(t, func() bool {
		procs = tree(cmd.Process.Pid)
		// Until it execs, sh's child is a copy of sh.
		return len(procs) == 2 && procs[1].Comm == "sleep"
	}, 10*time.Second, 5*time.Millisecond, "sh and its sleep")
	assert.Equal(t, cmd.Process.Pid, procs[0].Pid, "parents first")
	assert.Equal(t, "sh", procs[0].Comm)
	for _, p := range procs {
		assert.Positive(t, p.RSS, "%s", p.Comm)
		assert.Positive(t, p.PSS, "%s", p.Comm)
		assert.Positive(t, p.Anon, "%s", p.Comm)
		assert.LessOrEqual(t, p.Anon, p.RSS, "%s", p.Comm)
	}
	// The child's sleep is not killed with sh: end it too.
	defer unix.Kill(procs[1].Pid, unix.SIGKILL)
}

// TestMemoryWholeProcess measures a runner whose sandbox is a shell that
// waits for its sleep: the shell is the supervisor.
func TestMemoryWholeProcess(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	require.NoError(t, os.Mkdir(root, 0o755))
	require.NoError(t, makeRoot(root, busybox(t)))
	var sleeps []int
	r := &runner{command: func(args []string) (*exec.Cmd, func(*exec.Cmd)) {
		cmd := exec.Command(filepath.Join(root, "bin/sh"), "-c", filepath.Join(root, args[0])+" "+strings.Join(args[1:], " ")+"; true")
		return cmd, func(cmd *exec.Cmd) {
			for _, p := range tree(cmd.Process.Pid)[1:] {
				sleeps = append(sleeps, p.Pid)
			}
			kill(cmd)
		}
	}}
	var res result
	require.NoError(t, memory(r, &res, 3))
	for _, pid := range sleeps {
		unix.Kill(pid, unix.SIGKILL)
	}
	assert.Equal(t, 3, res.Held)
	assert.Len(t, sleeps, 3, "each shell ran its sleep")
	// A busybox shell holds a few hundred KiB; its sleep does not count.
	assert.Greater(t, res.RSS, 0.05)
	assert.Less(t, res.RSS, 8.0)
	assert.Greater(t, res.RSS, res.PSS-1e-9)
}

// TestHideCgroup2 checks crun's workaround on a hybrid host: the thread
// that starts crun sees no cgroup2 mount, and the host still does.
func TestHideCgroup2(t *testing.T) {
	testutil.RequireRoot(t)
	if !hybridCgroups() {
		t.Skip("not a hybrid cgroup host: crun runs without the workaround here")
	}
	var inside string
	require.NoError(t, onThread(hideCgroup2, func() error {
		b, err := os.ReadFile("/proc/thread-self/mountinfo")
		inside = string(b)
		return err
	}))
	assert.NotContains(t, inside, " "+hybridCgroup2+" ")
	// A new process, forked from an ordinary thread, sees the host's mounts.
	host, err := exec.Command("cat", "/proc/self/mountinfo").Output()
	require.NoError(t, err)
	assert.Contains(t, string(host), " "+hybridCgroup2+" ", "the host keeps its mount")
	assert.True(t, hybridCgroups())
}

// TestSmoke runs the harness briefly against what this tree builds, as
// .ci/run does with every runner.
func TestSmoke(t *testing.T) {
	testutil.RequireRoot(t)
	busybox(t)
	out := t.TempDir()
	o := &options{out: out, runs: 4, rounds: 2, duration: 200 * time.Millisecond, windows: 2, launchers: []int{1, 2},
		hold: 2, only: []string{"plain", "stockade", "cli"}, busybox: "/bin/busybox"}
	require.NoError(t, o.check())
	require.NoError(t, run(o))
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	require.NoError(t, err)
	var rep report
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Len(t, rep.Results, 3)
	for _, r := range rep.Results {
		assert.Empty(t, r.Error, r.Name)
		assert.Len(t, r.Runs, 4, r.Name)
		assert.Positive(t, r.P50, r.Name)
		assert.GreaterOrEqual(t, r.P90, r.P50, r.Name)
		// Even a plain exec of busybox costs some CPU; no sandbox costs a
		// second of it.
		assert.Greater(t, r.CPU, 0.01, r.Name)
		assert.Less(t, r.CPU, 1000.0, r.Name)
		assert.Positive(t, r.Rate[1], r.Name)
		assert.Positive(t, r.Rate[2], r.Name)
		assert.Len(t, r.Rates[2], 2, r.Name)
	}
	plain, in, cli := rep.Results[0], rep.Results[1], rep.Results[2]
	assert.Zero(t, plain.Held, "plain exec has no supervisor")
	for _, r := range []*result{in, cli} {
		assert.Equal(t, 2, r.Held, r.Name)
	}
	// In-process, a running sandbox costs its reaper (a page or two) and
	// the owner's bookkeeping; the CLI is a Go program per sandbox.
	assert.Less(t, in.RSS, 1.0, in.Name)
	assert.Greater(t, cli.RSS, 0.5, cli.Name)
	require.NotEmpty(t, in.Stages)
	assert.Positive(t, in.OwnCPU)
	assert.Less(t, in.OwnCPU, in.CPU, "the init stages and commands cost CPU too")
	assert.Equal(t, "exit", in.Stages[len(in.Stages)-1].Name)
	assert.FileExists(t, filepath.Join(out, "results.png"))
	assert.FileExists(t, filepath.Join(out, "results.md"))
}

// TestUnpackRows runs the unpack rows on a small image: both layer kinds
// are measured, with a ratio each.
func TestUnpackRows(t *testing.T) {
	testutil.RequireRoot(t)
	table, err := measureUnpack(2<<20, 1)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, lines, 6, table)
	assert.True(t, strings.HasPrefix(lines[4], "| gzip | "), table)
	assert.True(t, strings.HasPrefix(lines[5], "| uncompressed | "), table)
}
