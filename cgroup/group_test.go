//go:build linux

package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cgroups "github.com/containerd/cgroups/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// dirs returns the group's directories.
func dirs(g *Group) []string {
	switch impl := g.impl.(type) {
	case *v1Group:
		return impl.dirs
	case *v2Group:
		return []string{impl.dir}
	}
	return nil
}

// readBack returns the trimmed content of file in whichever of the group's
// directories has it.
func readBack(t *testing.T, g *Group, file string) string {
	t.Helper()
	for _, d := range dirs(g) {
		if b, err := os.ReadFile(filepath.Join(d, file)); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no directory of group %s has %s", g.Name(), file)
	return ""
}

func TestCreateLimitReadBackRemove(t *testing.T) {
	requireCgroups(t)
	f, err := hostFacts("")
	require.NoError(t, err)
	l := Limits{Memory: 64 << 20, CPU: 0.5, CPUWeight: 200, Pids: 50, CPUs: "0", Mems: "0"}
	if f.ioWeight != "" {
		l.IOWeight = 500
	} else {
		t.Log("the host has no I/O weight file; Limits.IOWeight not tested")
	}
	g := newGroup(t, Config{Limits: l})
	t.Logf("mode %s, group %s in %v", DetectMode(), g.Name(), dirs(g))
	for _, d := range dirs(g) {
		assert.Equal(t, DefaultParent, filepath.Base(filepath.Dir(d)))
	}

	want := map[string]string{}
	if _, ok := g.impl.(*v2Group); ok {
		want = map[string]string{
			"memory.max": "67108864", "memory.swap.max": "0", "pids.max": "50",
			"cpu.max": "50000 100000", "cpu.weight": "200",
			"cpuset.cpus": "0", "cpuset.mems": "0",
		}
		if l.IOWeight > 0 {
			want[f.ioWeight] = map[string]string{"io.weight": "default 500"}[f.ioWeight]
		}
	} else {
		want = map[string]string{
			"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "67108864",
			"pids.max": "50", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000",
			"cpu.shares": "2048", "cpuset.cpus": "0", "cpuset.mems": "0",
		}
		if l.IOWeight > 0 {
			want[f.ioWeight] = "59"
		}
	}
	for file, v := range want {
		if v == "" {
			continue
		}
		got := readBack(t, g, file)
		if file == "io.bfq.weight" || file == "blkio.bfq.weight" {
			got = strings.TrimPrefix(got, "default ")
		}
		assert.Equal(t, v, got, file)
	}

	require.NoError(t, g.Remove())
	for _, d := range dirs(g) {
		assert.NoDirExists(t, d)
		assert.DirExists(t, filepath.Dir(d), "the parent stays")
	}
	require.NoError(t, g.Remove(), "removing twice does nothing")
}

func TestCreateRefusesBeforeCreatingAnything(t *testing.T) {
	requireCgroups(t)
	// A parent of the test's own: other test binaries of the same `go test`
	// create groups under the default one at the same time.
	parent := "stockade-refuse-" + itoa(os.Getpid())
	parents := map[string][]os.DirEntry{}
	t.Cleanup(func() {
		for p := range parents {
			if err := os.Remove(p); err != nil {
				t.Errorf("remove the test's parent: %v", err)
			}
		}
	})
	g := newGroup(t, Config{Parent: parent}) // makes sure the parents exist
	for _, d := range dirs(g) {
		parents[filepath.Dir(d)], _ = os.ReadDir(filepath.Dir(d))
	}
	for _, l := range []Limits{{Memory: 1 << 20}, {CPUs: "0-" + strconv.Itoa(maxCPUID-1)}, {Pids: -1}} {
		_, err := Create(Config{Parent: parent, Limits: l})
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		t.Log(err)
	}
	_, err := Create(Config{Parent: "../escape"})
	require.ErrorIs(t, err, ErrInvalidConfig)
	for p, before := range parents {
		after, _ := os.ReadDir(p)
		assert.Equal(t, len(before), len(after), "entries of %s", p)
	}
}

func TestPlaceProcess(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Config{Limits: Limits{Pids: 20}})
	_, ok := g.FD()
	assert.Equal(t, DetectMode() == Unified, ok, "FD is for cgroup v2 only")
	h := startHelper(t, g, "sleep")
	b, err := os.ReadFile("/proc/" + itoa(h.cmd.Process.Pid) + "/cgroup")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		// Every hierarchy the group uses must hold the process.
		for _, d := range dirs(g) {
			for _, c := range strings.Split(strings.Split(line, ":")[1], ",") {
				if c != "" && strings.HasSuffix(filepath.Dir(filepath.Dir(d)), "/"+c) && !strings.Contains(line, g.Name()) {
					t.Errorf("process not in the %s hierarchy: %s", c, line)
				}
			}
		}
	}
	assert.True(t, inGroup(string(b), g.Name()), "%s", b)
	pids, err := g.impl.procs()
	require.NoError(t, err)
	assert.Equal(t, []int{h.cmd.Process.Pid}, pids)
	st, err := g.Stats()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, st.Pids, uint64(1))
}

func TestForkBombContainedByPids(t *testing.T) {
	requireCgroups(t)
	const limit = 32
	g := newGroup(t, Config{Limits: Limits{Pids: limit, Memory: 512 << 20, CPU: 1}})
	h := startHelper(t, g, "forkbomb")
	var st Stats
	waitFor(t, 60*time.Second, "refused forks", func() bool {
		var err error
		st, err = g.Stats()
		require.NoError(t, err)
		return st.ForksRefused > 100
	})
	t.Logf("after the bomb hit the limit: %+v", st)
	assert.LessOrEqual(t, st.Pids, uint64(limit))
	assert.Equal(t, uint64(limit), st.PidsPeak, "the bomb fills the group exactly")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, g.Kill(ctx))
	pids, err := g.impl.procs()
	require.NoError(t, err)
	assert.Empty(t, pids)
	assert.Error(t, h.wait(), "the bomb was killed")
	reapOrphans(t)
	require.NoError(t, g.Remove())
}

// TestKillForkBombIgnoringSIGTERM kills a group with no pids limit whose
// processes ignore SIGTERM and fork as fast as they can. The group's CPU
// quota of one CPU and its memory limit only keep the test machine usable;
// the bomb is killed long before it reaches the memory limit.
func TestKillForkBombIgnoringSIGTERM(t *testing.T) {
	requireCgroups(t)
	for round := range 3 {
		g := newGroup(t, Config{Limits: Limits{Memory: 1 << 30, CPU: 1}})
		h := startHelper(t, g, "forkbomb")
		var st Stats
		waitFor(t, 60*time.Second, "the bomb to grow", func() bool {
			var err error
			st, err = g.Stats()
			require.NoError(t, err)
			return st.Pids >= 300
		})
		pids, err := g.impl.procs()
		require.NoError(t, err)
		for _, pid := range pids {
			// An ignored signal is discarded as it is sent: once kill
			// returns, nothing of it is left to act on.
			ignored, ok := ignores(pid, unix.SIGTERM)
			require.True(t, !ok || ignored, "process %d does not ignore SIGTERM", pid)
			unix.Kill(pid, unix.SIGTERM)
		}
		st, err = g.Stats()
		require.NoError(t, err)
		require.GreaterOrEqual(t, st.Pids, uint64(len(pids)), "SIGTERM is ignored")

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		require.NoError(t, g.Kill(ctx))
		cancel()
		took := time.Since(start)
		pids, err = g.impl.procs()
		require.NoError(t, err)
		require.Empty(t, pids)
		require.Error(t, h.wait())
		ws := h.cmd.ProcessState.Sys().(syscall.WaitStatus)
		assert.Equal(t, syscall.SIGKILL, ws.Signal())
		// The killed children are zombies of this subreaper now, and
		// pids.current counts a task until it is reaped.
		reapOrphans(t)
		final, err := g.Stats()
		require.NoError(t, err)
		t.Logf("round %d: killed a bomb of %d tasks (peak %d, %d OOM kills) in %v", round, st.Pids, final.PidsPeak, final.OOMKills, took)
		require.Zero(t, final.Pids)
		require.Zero(t, final.OOMKills, "the bomb must die from Kill, not from the memory limit")
		require.NoError(t, g.Remove())
		assert.Empty(t, children(), "no process is left")
	}
}

func TestMemoryHogIsOOMKilled(t *testing.T) {
	requireCgroups(t)
	const limit = 32 << 20
	g := newGroup(t, Config{Limits: Limits{Memory: limit}})
	h := startHelper(t, g, "hog")
	err := h.wait()
	var ee interface{ Sys() any }
	require.ErrorAs(t, err, &ee)
	ws := h.cmd.ProcessState.Sys().(syscall.WaitStatus)
	assert.Equal(t, syscall.SIGKILL, ws.Signal())
	st, err := g.Stats()
	require.NoError(t, err)
	t.Logf("%+v", st)
	assert.Equal(t, uint64(1), st.OOMKills)
	assert.GreaterOrEqual(t, st.MemoryPeak, uint64(limit), "the hog filled the group to its limit")
	// cgroup v2 may overshoot memory.max by a few pages before it reclaims.
	assert.LessOrEqual(t, st.MemoryPeak, uint64(limit+1<<20))
}

// TestMinMemoryIsEnough starts a fresh copy of this Go binary inside a
// group limited to MinMemory, the documented minimum.
func TestMinMemoryIsEnough(t *testing.T) {
	requireCgroups(t)
	if raceEnabled {
		t.Skip("a binary built with -race needs more than MinMemory")
	}
	g := newGroup(t, Config{Limits: Limits{Memory: MinMemory}})
	h := startHelper(t, g, "reexec-true")
	require.NoError(t, h.wait())
	st, err := g.Stats()
	require.NoError(t, err)
	t.Logf("%+v", st)
	assert.Zero(t, st.OOMKills)
	assert.Positive(t, st.MemoryPeak)
}

func TestCPUStatsOfSpinner(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Config{})
	before, err := g.Stats()
	require.NoError(t, err)
	h := startHelper(t, g, "spin", "SPIN=300ms")
	require.NoError(t, h.wait())
	after, err := g.Stats()
	require.NoError(t, err)
	t.Logf("before %+v, after %+v", before, after)
	assert.GreaterOrEqual(t, after.CPUUser+after.CPUSystem, 200*time.Millisecond)
	assert.Greater(t, after.CPUUser, after.CPUSystem, "a spinner spends its time in user mode")
	assert.Greater(t, after.CPUUser, before.CPUUser)
	// CPUTime reads the same total as Stats, from one file.
	total, err := g.CPUTime()
	require.NoError(t, err)
	assert.Equal(t, after.CPUUser+after.CPUSystem, total)
}

func TestKillEmptyAndRemoveBusy(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Config{})
	require.NoError(t, g.Kill(context.Background()), "killing an empty group")

	h := startHelper(t, g, "sleep")
	old := removeTimeout
	removeTimeout = 100 * time.Millisecond
	defer func() { removeTimeout = old }()
	err := g.Remove()
	require.ErrorIs(t, err, errBusy)
	t.Log(err)
	for _, d := range dirs(g) {
		assert.DirExists(t, d, "a failed Remove keeps the group usable")
	}
	require.NoError(t, g.Kill(context.Background()))
	assert.Error(t, h.wait())
	require.NoError(t, g.Remove())
}

func TestRemoveTakesNestedGroups(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Config{})
	for _, d := range dirs(g) {
		require.NoError(t, os.MkdirAll(filepath.Join(d, "a", "b"), 0o755))
	}
	require.NoError(t, g.Remove())
	for _, d := range dirs(g) {
		assert.NoDirExists(t, d)
	}
}

func TestCleanupRemovesGroupsOfDeadOwners(t *testing.T) {
	requireCgroups(t)
	mine := newGroup(t, Config{})

	// The owner is this binary in a helper mode: it creates a group in the
	// default parent, starts a sleeping process in it and reports both.
	owner, out := startOwner(t)
	line := strings.Fields(readLine(t, out, 30*time.Second))
	require.Len(t, line, 2, "owner said %q", line)
	require.NotEqual(t, "error", line[0], "owner failed: %v", line)
	name := line[0]
	sleeper, _ := strconv.Atoi(line[1])
	o, ok := parseName(name)
	require.True(t, ok)
	require.Equal(t, owner.Process.Pid, o.pid)

	removed, err := Cleanup(context.Background(), "")
	require.NoError(t, err)
	assert.NotContains(t, removed, name, "the owner is alive")

	require.NoError(t, owner.Process.Kill())
	owner.Wait()
	started.Delete(owner.Process.Pid)
	require.True(t, slices.Contains(children(), sleeper), "the orphaned sleeper is now our child")

	removed, err = Cleanup(context.Background(), "")
	require.NoError(t, err)
	t.Logf("removed %v", removed)
	assert.Contains(t, removed, name)
	assert.NotContains(t, removed, mine.Name(), "a live owner's group stays")
	reapOrphans(t)
	assert.NotContains(t, children(), sleeper, "the sleeper was killed")
	h, err := probeHost()
	require.NoError(t, err)
	if h.v2 != nil {
		assert.NoDirExists(t, openV2(h.v2, "", name).dir)
	} else {
		assert.Empty(t, openV1(h, "", name).dirs)
	}
	for _, d := range dirs(mine) {
		assert.DirExists(t, d)
	}
}

// startOwner starts this binary as an owner helper and returns it with
// the read end of its standard output.
func startOwner(t *testing.T) (*exec.Cmd, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), helperEnv+"=owner")
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	err = cmd.Start()
	w.Close()
	require.NoError(t, err)
	started.Store(cmd.Process.Pid, struct{}{})
	t.Cleanup(func() {
		r.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		started.Delete(cmd.Process.Pid)
	})
	return cmd, r
}

// TestV2OnHybridHost runs the cgroup v2 code on the controller-less cgroup2
// hierarchy of a hybrid host: no limits, but creation, CLONE_INTO_CGROUP,
// CPU statistics, cgroup.kill and removal.
func TestV2OnHybridHost(t *testing.T) {
	requireCgroups(t)
	if DetectMode() != Hybrid {
		// Not a missing feature: on other hosts the other tests cover v2.
		t.Skip("only for hybrid hosts; on " + DetectMode().String() + " the other tests run the same code")
	}
	_, unified, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	require.NoError(t, err)
	h := &host{mode: Unified, v2: &hierarchy{mount: "/sys/fs/cgroup/unified", own: ownPath(unified, "/")}}
	h.cpus, h.mems = "0", "0"
	f := h.facts("")
	_, err = create(h, f, Config{Limits: Limits{Pids: 10}})
	require.ErrorIs(t, err, ErrNotSupported, "the hybrid cgroup2 hierarchy has no pids controller")

	g, err := create(h, f, Config{})
	require.NoError(t, err)
	t.Cleanup(func() { destroy(t, g) })
	fd, ok := g.FD()
	require.True(t, ok)
	require.Positive(t, fd)

	sleeper := startHelper(t, g, "sleep")
	b, err := os.ReadFile("/proc/" + itoa(sleeper.cmd.Process.Pid) + "/cgroup")
	require.NoError(t, err)
	assert.Contains(t, string(b), "0::"+strings.TrimPrefix(g.impl.(*v2Group).dir, "/sys/fs/cgroup/unified")+"\n")
	spinner := startHelper(t, g, "spin", "SPIN=200ms")
	require.NoError(t, spinner.wait())
	st, err := g.Stats()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, st.CPUUser, 100*time.Millisecond)

	require.NoError(t, g.Kill(context.Background()))
	assert.Error(t, sleeper.wait())
	require.NoError(t, g.Remove())
	_, ok = g.FD()
	assert.False(t, ok, "Remove closes the descriptor")
	assert.NoDirExists(t, g.impl.(*v2Group).dir)
	assert.False(t, errors.Is(g.Remove(), os.ErrNotExist))
}

// TestKillFallbacks runs the ways Kill has on kernels older than this one:
// freezing (the v1 freezer, or cgroup.freeze on v2 before Linux 5.14) and,
// without any freezer, killing in rounds.
func TestKillFallbacks(t *testing.T) {
	requireCgroups(t)
	for _, tc := range []struct {
		name    string
		freezer bool
	}{{"freeze", true}, {"rounds", false}} {
		t.Run(tc.name, func(t *testing.T) {
			useCgroupKill, useFreezer = false, tc.freezer
			defer func() { useCgroupKill, useFreezer = true, true }()
			g := newGroup(t, Config{Limits: Limits{Memory: 1 << 30, CPU: 1}})
			h := startHelper(t, g, "forkbomb")
			var st Stats
			waitFor(t, 60*time.Second, "the bomb to grow", func() bool {
				var err error
				st, err = g.Stats()
				require.NoError(t, err)
				return st.Pids >= 200
			})
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			require.NoError(t, g.Kill(ctx))
			t.Logf("killed a bomb of %d tasks in %v", st.Pids, time.Since(start))
			pids, err := g.impl.procs()
			require.NoError(t, err)
			require.Empty(t, pids)
			require.Error(t, h.wait())
			reapOrphans(t)
			require.NoError(t, g.Remove())
		})
	}
}

// TestV2ParentWithProcesses checks that a v2 parent below a cgroup that
// holds processes is refused before anything is created, with a reason.
func TestV2ParentWithProcesses(t *testing.T) {
	requireCgroups(t)
	if DetectMode() != Unified {
		t.Skip("only for cgroup v2 hosts")
	}
	h, err := probeHost()
	require.NoError(t, err)
	busy := "/stockade-test-busy-" + itoa(os.Getpid())
	require.NoError(t, os.Mkdir(h.v2.dir(busy), 0o755))
	t.Cleanup(func() {
		os.Remove(h.v2.dir(busy + "/jobs"))
		assert.NoError(t, os.Remove(h.v2.dir(busy)))
	})
	sleeper := exec.Command("/proc/self/exe")
	sleeper.Env = append(os.Environ(), helperEnv+"=sleep")
	require.NoError(t, sleeper.Start())
	started.Store(sleeper.Process.Pid, struct{}{})
	t.Cleanup(func() {
		sleeper.Process.Kill()
		sleeper.Wait()
		started.Delete(sleeper.Process.Pid)
	})
	require.NoError(t, writeFile(h.v2.dir(busy)+"/cgroup.procs", itoa(sleeper.Process.Pid)))

	parent := busy + "/jobs"
	err = Config{Parent: parent, Limits: Limits{Pids: 10}}.Validate()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Limits.Pids", ce.Field)
	assert.Contains(t, err.Error(), "holds processes")
	t.Log(err)
	_, err = Create(Config{Parent: parent, Limits: Limits{Pids: 10}})
	require.ErrorIs(t, err, ErrNotSupported)
	assert.NoDirExists(t, h.v2.dir(parent), "nothing was created")

	// Without limits the group needs no controllers and can be made.
	g, err := Create(Config{Parent: parent})
	require.NoError(t, err)
	require.NoError(t, g.Remove())
}

// ignores reports whether the process pid ignores sig, from the SigIgn
// mask of its status; ok is false when the process is gone.
func ignores(pid int, sig unix.Signal) (ignored, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(l, "SigIgn:"); found {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(sig-1)) != 0, err == nil
		}
	}
	return false, false
}
