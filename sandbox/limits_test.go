//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/testutil"
)

// The tests named TestLimit* run on this cgroup v1 host and, through
// .ci/run, in the cgroup v2 VM.

// requireCgroup skips a test that needs a control group for its sandbox.
func requireCgroup(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	if cgroup.DetectMode() == cgroup.Unavailable {
		testutil.Skip(t, "no cgroup file system is mounted at /sys/fs/cgroup", "mount cgroup2 or the v1 controllers there")
	}
}

// assertNoGroup checks that the sandbox's control group is gone from every
// hierarchy. The leak check of TestMain catches any group of this process
// at the end as well; this says which test left it.
func assertNoGroup(t *testing.T, sb *Sandbox) {
	t.Helper()
	require.NotNil(t, sb.lim, "the sandbox had no limiter")
	require.NotNil(t, sb.lim.group, "the sandbox had no control group")
	name := sb.lim.group.Name()
	for _, root := range []string{"/sys/fs/cgroup"} {
		found := false
		walkDirs(root, func(p string) {
			if strings.HasSuffix(p, "/"+name) {
				found = true
			}
		})
		assert.False(t, found, "cgroup %s is still there", name)
	}
}

// runLimited runs cfg with a generous deadline and returns the sandbox.
func runLimited(t *testing.T, cfg Config) (*Sandbox, *Result, error) {
	t.Helper()
	requireCgroup(t)
	testutil.RequireUserNamespaces(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb := New(cfg)
	res, err := sb.Run(ctx)
	return sb, res, err
}

// limitHelperEnv makes this test binary act as a helper instead of
// running tests; its value names the helper.
const limitHelperEnv = testutil.HelperEnv

// limitHelper runs the fork bomb when this process is one, inside a
// sandbox: it ignores SIGTERM and forks as fast as it can, every parent
// and child alike, whether the fork succeeds or not. The raw system call
// is safe because no process ever returns to Go code that could need the
// runtime's other threads.
func limitHelper() bool {
	if os.Getenv(limitHelperEnv) != "forkbomb" {
		return false
	}
	signal.Ignore(syscall.SIGTERM)
	for {
		unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	}
}

// selfInSandbox returns a config that runs this test binary as the helper
// called mode inside a sandbox, from a read-only bind of its directory.
func selfInSandbox(t *testing.T, mode string) Config {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return Config{
		Args:   []string{"/box/" + filepath.Base(exe)},
		Env:    []string{limitHelperEnv + "=" + mode},
		Mounts: []Mount{Mount{Kind: Bind, Source: filepath.Dir(exe), Target: "/box"}},
	}
}

// TestLimitForkBomb: a fork bomb that ignores SIGTERM is contained by
// Limits.Pids, the host keeps making progress meanwhile, the refused forks
// are counted, and the timeout then kills every process of it.
func TestLimitForkBomb(t *testing.T) {
	cfg := selfInSandbox(t, "forkbomb")
	cfg.Limits.Pids = 64
	cfg.Timeout = 2 * time.Second
	requireCgroup(t)

	// The host's pace before the bomb, and while it goes off: a goroutine
	// that counts 1 ms sleeps. The machine may be loaded by other runs,
	// so the bomb is measured against the pace of the moment.
	before := startLatenessProbe(t)
	time.Sleep(500 * time.Millisecond)
	before.Stop()
	during := startLatenessProbe(t)
	sb, res, err := runLimited(t, cfg)
	during.Stop()
	require.Error(t, err)
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, Timeout, res.Reason, "%v", err)
	// A refused fork means the bomb reached the limit; the peak is a
	// sampled lower bound on v1, so only its ceiling is certain.
	assert.Positive(t, res.ForksRefused, "no fork was refused")
	assert.LessOrEqual(t, res.PidsPeak, int64(64))
	t.Logf("%d forks refused, peak %d; host pace %.0f ticks/s before, %.0f during (worst lateness %v)",
		res.ForksRefused, res.PidsPeak, before.rate(), during.rate(), during.late)
	assert.Greater(t, during.rate(), before.rate()/20, "the host nearly stopped while the bomb went off")
	assertNoGroup(t, sb)
	assertNoChildren(t)
}

// TestLimitParentDeath: when the owner of a sandbox with a control group
// is killed with SIGKILL, the sandbox dies with it and the group it leaves
// is removed by the next Cleanup.
func TestLimitParentDeath(t *testing.T) {
	requireCgroup(t)
	owner, pids := startOwner(t, "STOCKADE_TEST_OWNER_LIMITS=1")
	b, err := os.ReadFile("/proc/" + pids[1] + "/cgroup")
	require.NoError(t, err)
	name := ""
	for _, c := range strings.FieldsFunc(string(b), func(r rune) bool { return r == '/' || r == '\n' }) {
		if strings.HasPrefix(c, "sb-") {
			name = c
		}
	}
	require.NotEmpty(t, name, "the owner's init is in no sandbox group: %s", b)
	groupDirs := func() []string {
		var found []string
		walkDirs("/sys/fs/cgroup", func(p string) {
			if filepath.Base(p) == name {
				found = append(found, p)
			}
		})
		return found
	}
	require.NotEmpty(t, groupDirs(), "the owner's sandbox has no group")

	// The group outlives its owner; its processes do not.
	killOwner(t, owner, pids[1:])
	require.NotEmpty(t, groupDirs())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, Cleanup(ctx))
	assert.Empty(t, groupDirs(), "Cleanup left the dead owner's group")
}

// TestLimitMemoryOOM: a process that keeps allocating is killed by the OOM
// killer at Limits.Memory, and the verdict comes from the group's counter.
func TestLimitMemoryOOM(t *testing.T) {
	// awk doubles a string until the kernel says no.
	cfg := shell(t, `awk 'BEGIN { s = "xxxxxxxxxxxxxxxx"; while (1) s = s s }'`)
	cfg.Limits.Memory = 32 << 20
	sb, res, err := runLimited(t, cfg)
	require.Error(t, err)
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, OOMKilled, res.Reason, "%v", res)
	assert.Equal(t, syscall.SIGKILL, res.Signal)
	assert.Positive(t, res.OOMKills)
	assert.GreaterOrEqual(t, res.MemoryPeak, int64(32<<20)*9/10, "peak %d", res.MemoryPeak)
	assert.Contains(t, res.String(), "out of memory")
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	assertNoGroup(t, sb)
}

// TestLimitCPUTime: a spinner is killed once it has used Limits.CPUTime,
// within the tolerance the field's documentation states (up to 20 ms past
// the limit on a busy host, for one spinning process) plus what the
// machine's load adds: a watchdog that wakes late, and an init that dies
// late, let the spinner run on for as long as they are delayed. The
// delay is measured during the run (latenessProbe) and counted twice.
func TestLimitCPUTime(t *testing.T) {
	cfg := shell(t, `while :; do :; done`)
	cfg.Limits.CPUTime = 300 * time.Millisecond
	cfg.Timeout = 30 * time.Second
	requireCgroup(t)
	probe := startLatenessProbe(t)
	sb, res, err := runLimited(t, cfg)
	probe.Stop()
	require.Error(t, err)
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, CPUTimeLimit, res.Reason, "%v", res)
	cpu := res.UserTime + res.SystemTime
	tolerance := 20*time.Millisecond + cpuPollFloor + 2*probe.late
	t.Logf("CPU %v for a limit of %v (wall %v); tolerance %v, worst timer lateness %v",
		cpu, cfg.Limits.CPUTime, res.Wall, tolerance, probe.late)
	assert.GreaterOrEqual(t, cpu, cfg.Limits.CPUTime)
	assert.LessOrEqual(t, cpu, cfg.Limits.CPUTime+tolerance)
	assertNoGroup(t, sb)
}

// TestLimitOutput: an output flood is cut at Limits.Output: exactly that
// many bytes reach the writer and the sandbox is killed.
func TestLimitOutput(t *testing.T) {
	var out bytes.Buffer
	cfg := shell(t, `yes flood`)
	cfg.Stdout = &out
	cfg.Limits.Output = 1 << 20
	requireCgroup(t)
	o := run(t, cfg)
	require.Error(t, o.err)
	require.NotNil(t, o.res, "%v", o.err)
	assert.Equal(t, OutputLimit, o.res.Reason)
	assert.Equal(t, syscall.SIGKILL, o.res.Signal)
	assert.Equal(t, 1<<20, out.Len())
	assert.True(t, strings.HasPrefix(out.String(), "flood\nflood\n"))
	assert.Equal(t, "killed: output limit exceeded", o.res.String())
}

// TestLimitOutputFile: with an output limit an *os.File goes through the
// counting pipe too, stdout and stderr count together, and a command that
// ends within the limit is left alone.
func TestLimitOutputFile(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	cfg := shell(t, `echo out; echo err >&2`)
	cfg.Stdout, cfg.Stderr = f, f
	cfg.Limits.Output = 8
	o := run(t, cfg)
	require.NoError(t, o.err)
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	assert.Equal(t, "out\nerr\n", string(b))

	f2, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f2.Close()
	cfg = shell(t, `echo out; echo err >&2; sleep 10`)
	cfg.Stdout, cfg.Stderr = f2, f2
	cfg.Limits.Output = 6
	o = run(t, cfg)
	require.Error(t, o.err)
	assert.Equal(t, OutputLimit, o.res.Reason)
	b, err = os.ReadFile(f2.Name())
	require.NoError(t, err)
	assert.Len(t, b, 6)
}

// TestLimitWallTimeout: a sleeper under limits is killed at Config.Timeout
// and its group is removed.
func TestLimitWallTimeout(t *testing.T) {
	cfg := shell(t, `sleep 100 & sleep 100`)
	cfg.Timeout = 300 * time.Millisecond
	cfg.Limits.Memory = 64 << 20
	cfg.Limits.Pids = 32
	sb, res, err := runLimited(t, cfg)
	require.Error(t, err)
	require.NotNil(t, res, "%v", err)
	assert.Equal(t, Timeout, res.Reason)
	assert.GreaterOrEqual(t, res.Wall, 300*time.Millisecond)
	assert.Less(t, res.Wall, 10*time.Second)
	assert.Positive(t, res.MemoryPeak)
	assert.GreaterOrEqual(t, res.PidsPeak, int64(3))
	assertNoGroup(t, sb)
}

// walkDirs calls f for every directory below root, skipping what vanishes
// meanwhile.
func walkDirs(root string, f func(string)) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			f(p)
		}
		return nil
	})
}

func TestLimitsValidate(t *testing.T) {
	requireCgroup(t) // the cgroup fields are checked against this host
	tests := []struct {
		name   string
		limits Limits
		field  string // empty: valid
		reason string // a word the reason must hold
	}{
		{"none", Limits{}, "", ""},
		{"everything", Limits{
			Memory: 64 << 20, Swap: SwapUnlimited, CPU: 0.5, CPUWeight: 200, Pids: 64,
			CPUs: "0", Mems: "0", CPUTime: time.Second, Output: 1 << 20,
			Rlimits: Rlimits{NoFile: 64, FileSize: 1 << 20, Stack: 8 << 20, Core: Unlimited,
				AddressSpace: 4 << 30, Processes: 100, CPU: 2 * time.Second},
			CgroupParent: "stockade-test",
		}, "", ""},
		{"memory below the init's needs", Limits{Memory: 1 << 20}, "Limits.Memory", "minimum"},
		{"negative memory", Limits{Memory: -2}, "Limits.Memory", "Unlimited"},
		{"negative pids", Limits{Pids: -2}, "Limits.Pids", "Unlimited"},
		{"unlimited", Limits{Memory: Unlimited, Pids: Unlimited, Output: Unlimited}, "", ""},
		{"swap without memory", Limits{Swap: 1 << 20}, "Limits.Swap", "Memory"},
		{"cpu quota too small", Limits{CPU: 0.001}, "Limits.CPU", "minimum"},
		{"cpu weight", Limits{CPUWeight: 20000}, "Limits.CPUWeight", "10000"},
		{"cpu period", Limits{CPU: 0.5, CPUPeriod: 500 * time.Millisecond}, "", ""},
		{"cpu period without cpu", Limits{CPUPeriod: 500 * time.Millisecond}, "Limits.CPUPeriod", "together"},
		{"cpu period too long", Limits{CPU: 1, CPUPeriod: 2 * time.Second}, "Limits.CPUPeriod", "1s"},
		{"cpu quota too small for its period", Limits{CPU: 0.5, CPUPeriod: time.Millisecond}, "Limits.CPU", "minimum"},
		{"cpuset outside the host", Limits{CPUs: "4095"}, "Limits.CPUs", "4095"},
		{"cpuset syntax", Limits{CPUs: "1-x"}, "Limits.CPUs", "number"},
		{"pids below the init's needs", Limits{Pids: 3}, "Limits.Pids", "minimum"},
		{"negative cpu time", Limits{CPUTime: -1}, "Limits.CPUTime", "negative"},
		{"negative output", Limits{Output: -5}, "Limits.Output", "Unlimited"},
		{"nofile too small", Limits{Rlimits: Rlimits{NoFile: 3}}, "Limits.Rlimits.NoFile", "minimum"},
		{"address space too small", Limits{Rlimits: Rlimits{AddressSpace: 256 << 20}}, "Limits.Rlimits.AddressSpace", "minimum"},
		{"nproc too small", Limits{Rlimits: Rlimits{Processes: 1}}, "Limits.Rlimits.Processes", "minimum"},
		{"negative fsize", Limits{Rlimits: Rlimits{FileSize: -2}}, "Limits.Rlimits.FileSize", "Unlimited"},
		{"negative rlimit cpu", Limits{Rlimits: Rlimits{CPU: -time.Second}}, "Limits.Rlimits.CPU", "negative"},
		{"kernel limits", Limits{Kernel: KernelLimits{InotifyInstances: 1, InotifyWatches: Unlimited, Namespaces: 1 << 20, SignalsPending: 5}}, "", ""},
		{"negative inotify instances", Limits{Kernel: KernelLimits{InotifyInstances: -2}}, "Limits.Kernel.InotifyInstances", "Unlimited"},
		{"signals pending too many", Limits{Kernel: KernelLimits{SignalsPending: 1 << 40}}, "Limits.Kernel.SignalsPending", "2147483647"},
		{"parent leaves own cgroup", Limits{Pids: 64, CgroupParent: "../x"}, "Limits.CgroupParent", "leave"},
		{"parent unclean", Limits{Pids: 64, CgroupParent: "a//b"}, "Limits.CgroupParent", "clean"},
		{"name with a slash", Limits{CgroupName: "a/b"}, "Limits.CgroupName", "one component"},
		{"name like a generated group", Limits{CgroupName: "sb-1-2-3-4"}, "Limits.CgroupName", "generated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Args: []string{"/bin/true"}, Limits: tt.limits}
			err := cfg.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, tt.field, ce.Field, "%v", err)
			assert.Contains(t, err.Error(), tt.reason)
			// Start refuses it before creating anything.
			sb := New(cfg)
			require.ErrorAs(t, sb.Start(context.Background()), &ce)
			assert.Zero(t, pid1(sb))
			assert.Nil(t, sb.lim)
		})
	}
}

// TestLimitsNeedCgroupOnlyWhenAsked: rlimits and an output limit need no
// control group; the cgroup limits and CPUTime do.
func TestLimitsNeedCgroupOnlyWhenAsked(t *testing.T) {
	assert.Empty(t, (&Limits{Output: 1, Rlimits: Rlimits{NoFile: 100}, CgroupParent: "x"}).needsCgroup())
	assert.Equal(t, []string{"Limits.CPUTime"}, (&Limits{CPUTime: time.Second}).needsCgroup())
	assert.Equal(t, []string{"Limits.Memory", "Limits.Pids"}, (&Limits{Memory: 1, Pids: 2}).needsCgroup())
	assert.Equal(t, []string{"Limits.CgroupName"}, (&Limits{CgroupName: "c"}).needsCgroup())
	assert.Equal(t, []string{"Limits.CPU", "Limits.CPUPeriod", "Limits.Devices"},
		(&Limits{CPU: 1, CPUPeriod: time.Second, Devices: []cgroup.DeviceRule{{}}}).needsCgroup())
}

// TestCgroupName checks that a named group is made at the path it names,
// with the limits, while the sandbox runs, that a second sandbox cannot
// take it, and that it is gone once the sandbox ends.
func TestCgroupName(t *testing.T) {
	testutil.RequireRoot(t)
	if cgroup.DetectMode() == cgroup.Unavailable {
		t.Skip("no cgroups")
	}
	parent := fmt.Sprintf("/stockade-test-named-%d", os.Getpid())
	cfg := Config{Limits: Limits{CgroupParent: parent, CgroupName: "c1", Pids: 64}}
	sb := New(cfg)
	require.NoError(t, sb.Start(context.Background()))
	t.Cleanup(func() {
		for _, c := range []string{"pids", "memory", "cpu", "cpuacct", "freezer", "unified", ""} {
			os.Remove(filepath.Join("/sys/fs/cgroup", c, parent))
		}
	})
	dir := filepath.Join("/sys/fs/cgroup/pids", parent, "c1")
	if cgroup.DetectMode() == cgroup.Unified {
		dir = filepath.Join("/sys/fs/cgroup", parent, "c1")
	}
	max, err := os.ReadFile(filepath.Join(dir, "pids.max"))
	require.NoError(t, err)
	assert.Equal(t, "64", strings.TrimSpace(string(max)))

	var ce *ConfigError
	err = New(cfg).Start(context.Background())
	require.Error(t, err, "the group exists")
	assert.False(t, errors.As(err, &ce) && ce.Field != "Limits.CgroupName", "%v", err)

	require.NoError(t, sb.Close())
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "the group is removed: %v", err)
}

func TestRlimitsList(t *testing.T) {
	core := proto.Rlimit{Resource: unix.RLIMIT_CORE}
	assert.Equal(t, []proto.Rlimit{core}, (&Rlimits{}).list(), "core files are off by default")
	got := (&Rlimits{NoFile: 64, Core: Unlimited, CPU: 1500 * time.Millisecond}).list()
	assert.Equal(t, []proto.Rlimit{
		{Resource: unix.RLIMIT_NOFILE, Cur: 64, Max: 64},
		{Resource: unix.RLIMIT_CORE, Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY},
		{Resource: unix.RLIMIT_CPU, Cur: 2, Max: 2},
	}, got)
}

// TestRlimits reads every rlimit back from inside the sandbox, and checks
// that a file beyond FileSize cannot be written.
func TestRlimits(t *testing.T) {
	cfg := shell(t, `ulimit -n; ulimit -f; ulimit -s; ulimit -c; ulimit -v; ulimit -u; ulimit -t
		dd if=/dev/zero of=/tmp/big bs=1024 count=100 2>/dev/null; echo dd $?; wc -c </tmp/big`)
	cfg.Limits.Rlimits = Rlimits{
		NoFile: 100, FileSize: 64 << 10, Stack: 4 << 20, AddressSpace: 3 << 30,
		Processes: 50, CPU: 1500 * time.Millisecond,
	}
	out := lines(mustRun(t, cfg))
	// ulimit reports -f in 512-byte blocks and the other sizes in KiB; dd
	// dies of SIGXFSZ (128+25) with the file at the limit.
	assert.Equal(t, []string{"100", "128", "4096", "0", "3145728", "50", "2", "dd 153", "65536"}, out)
}

// TestLimitMinMemory: the smallest memory limit Validate accepts is
// enough for the init stage and a small command.
func TestLimitMinMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's runtime needs far more memory than the init stage")
	}
	cfg := shell(t, `echo fits`)
	cfg.Limits.Memory = cgroup.MinMemory
	sb, res, err := runLimited(t, cfg)
	require.NoError(t, err)
	assert.Equal(t, Exited, res.Reason)
	assert.Zero(t, res.OOMKills)
	assert.Positive(t, res.MemoryPeak)
	assertNoGroup(t, sb)
}

// TestLimitPlacement: the init is inside the group before the command
// starts, so the command's cgroup namespace is rooted at the group: every
// hierarchy shows "/" inside. From the host, the init and the command are
// members of the group.
func TestLimitPlacement(t *testing.T) {
	requireCgroup(t)
	bb := testutil.Busybox(t)
	var out syncBuffer
	sb := New(Config{
		Args:   []string{bb, "sh", "-c", `cat /proc/self/cgroup; echo ready; sleep 100`},
		Stdout: &out,
		Limits: Limits{Pids: 32, Memory: 64 << 20},
	})
	require.NoError(t, sb.Start(context.Background()))
	defer sb.Kill(syscall.SIGKILL)
	waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })
	name := sb.lim.group.Name()
	init := pid1(sb)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", init))
	require.NoError(t, err)
	assert.Contains(t, string(b), "/"+name, "the init is not in the group")
	kids := strings.Fields(readChildren(init))
	require.NotEmpty(t, kids)
	b, err = os.ReadFile("/proc/" + kids[0] + "/cgroup")
	require.NoError(t, err)
	assert.Contains(t, string(b), "/"+name, "the command is not in the group")

	for _, l := range lines(strings.TrimSuffix(out.String(), "ready\n")) {
		assert.True(t, strings.HasSuffix(l, ":/"), "inside, %q is not the namespace's root", l)
	}
	require.NoError(t, sb.Kill(syscall.SIGKILL))
	res, _ := sb.Wait()
	assert.Equal(t, Signaled, res.Reason, "a SIGKILL without an OOM kill is no OOM verdict")
	assertNoGroup(t, sb)
}

func TestResultOfLimits(t *testing.T) {
	for _, c := range []struct {
		res  Result
		text string
	}{
		{Result{Reason: OOMKilled, MemoryPeak: 64 << 20}, "killed: out of memory (peak 64.0 MiB)"},
		{Result{Reason: CPUTimeLimit, UserTime: 990 * time.Millisecond, SystemTime: 14 * time.Millisecond}, "killed: CPU time limit exceeded (1.004s of CPU)"},
		{Result{Reason: OutputLimit}, "killed: output limit exceeded"},
	} {
		assert.Equal(t, c.text, c.res.String())
	}
	b, err := json.Marshal(&Result{Reason: OOMKilled, ExitCode: -1, Signal: syscall.SIGKILL, MemoryPeak: 5, PidsPeak: 6, ForksRefused: 7, OOMKills: 1})
	require.NoError(t, err)
	assert.JSONEq(t, `{"reason":"oom-killed","exitCode":-1,"signal":9,"wall":0,"userTime":0,"systemTime":0,"maxRSS":0,
		"memoryPeak":5,"pidsPeak":6,"forksRefused":7,"oomKills":1}`, string(b))
	for _, r := range []Reason{OOMKilled, CPUTimeLimit, OutputLimit} {
		assert.NotContains(t, r.String(), "Reason(")
	}
}

// TestLimitMemoryTooSmallForInit: an init that cannot start under its
// memory limit does not hold Start beyond Timeout, and leaves nothing.
func TestLimitMemoryTooSmallForInit(t *testing.T) {
	requireCgroup(t)
	cfg := shell(t, `true`)
	// Between the validated minimum and what this test binary's init
	// needs: only the race detector's runtime is this large.
	if !raceEnabled {
		t.Skip("needs an init stage larger than cgroup.MinMemory; runs under -race")
	}
	cfg.Limits.Memory = cgroup.MinMemory
	cfg.Timeout = 2 * time.Second
	sb := New(cfg)
	start := time.Now()
	err := sb.Start(context.Background())
	var se *SetupError
	if !errors.As(err, &se) {
		// The kernel may also OOM-kill the init, which fails the start too.
		require.Error(t, err)
	}
	assert.Less(t, time.Since(start), 20*time.Second)
	assertNoChildren(t)
}

// TestStartTimeoutErr: a wait for the init that Config.Timeout ended is a
// *SetupError that says so; one that the caller's context ended is the
// context's error.
func TestStartTimeoutErr(t *testing.T) {
	ctx := context.Background()
	actx, cancel := startDeadline(ctx, time.Now(), time.Millisecond)
	defer cancel()
	<-actx.Done()
	err := startTimeoutErr(ctx, actx.Err(), time.Millisecond)
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "init", se.Stage)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "Config.Timeout")

	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	assert.Equal(t, context.Canceled, startTimeoutErr(done, context.Canceled, time.Second))
	noLimit, stop := startDeadline(ctx, time.Now(), 0)
	stop()
	assert.NoError(t, noLimit.Err(), "no Timeout, no deadline")
}

// TestLimitCPUTimeGroupRemoved: when the sandbox's control group is
// removed from outside while the command spins, the CPU time limit still
// ends it, counted from /proc, instead of silently letting it run to its
// Timeout.
func TestLimitCPUTimeGroupRemoved(t *testing.T) {
	requireCgroup(t)
	testutil.RequireUserNamespaces(t)
	cfg := shell(t, `while :; do :; done`)
	cfg.Limits.CPUTime = 500 * time.Millisecond
	cfg.Timeout = 15 * time.Second
	sb := New(cfg)
	require.NoError(t, sb.Start(context.Background()))
	removeGroupFromOutside(t, sb.lim.group.Name())
	res, err := sb.Wait()
	require.Error(t, err)
	require.NotNil(t, res, "%v", err)
	cpu := res.UserTime + res.SystemTime
	t.Logf("%v: CPU %v for a limit of %v (wall %v)", res, cpu, cfg.Limits.CPUTime, res.Wall)
	assert.Equal(t, CPUTimeLimit, res.Reason, "%v", res)
	assert.GreaterOrEqual(t, cpu, cfg.Limits.CPUTime, "killed before the limit")
	assertNoChildren(t)
}

// removeGroupFromOutside moves every process of the cgroup name to the
// root of its hierarchy and removes its directories, as an administrator
// (or a cleanup job) might.
func removeGroupFromOutside(t *testing.T, name string) {
	t.Helper()
	var dirs []string
	walkDirs("/sys/fs/cgroup", func(p string) {
		if filepath.Base(p) == name {
			dirs = append(dirs, p)
		}
	})
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		root := "/sys/fs/cgroup"
		if _, err := os.Stat(root + "/cgroup.procs"); err != nil {
			// v1: each hierarchy is mounted one level down.
			rel, err := filepath.Rel(root, dir)
			require.NoError(t, err)
			root = filepath.Join(root, strings.SplitN(rel, "/", 2)[0])
		}
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(dir + "/cgroup.procs")
			if err != nil {
				return false
			}
			for _, pid := range strings.Fields(string(b)) {
				os.WriteFile(root+"/cgroup.procs", []byte(pid), 0)
			}
			return os.Remove(dir) == nil
		}, 10*time.Second, 10*time.Millisecond, "cannot remove %s", dir)
	}
}

func TestParseStat(t *testing.T) {
	for _, tt := range []struct {
		stat            string
		ppid, user, sys int64
		ok              bool
	}{
		{"42 (sh) R 7 42 42 0 -1 4194560 100 0 0 0 11 22 33 44 20 0 1 0 5 100 1", 7, 44, 66, true},
		{"42 (a) b) c) S 1 42 42 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5 100 1", 1, 4, 6, true},
		{"42 (sh) R 7 42", 0, 0, 0, false},
		{"42 sh R", 0, 0, 0, false},
	} {
		ppid, user, sys, ok := parseStat([]byte(tt.stat))
		assert.Equal(t, tt.ok, ok, tt.stat)
		if tt.ok {
			assert.Equal(t, []int64{tt.ppid, tt.user, tt.sys}, []int64{ppid, user, sys}, tt.stat)
		}
	}
}

// TestForkBombRuns counts, over 500 fork bombs under Limits.Pids, the
// sandboxes whose end the library got wrong: a start that failed, or a
// verdict other than the Timeout (or the bomb's own exit, should the Go
// runtime of the bomb fail to start a thread). A pid 1 that pids pressure
// kills (a Go init that cannot start a thread) shows up as one of those.
// None may. STOCKADE_FORKBOMB_RUNS sets the count.
//
// The test is for the raw path, whose pid 1 is the reaper: the init
// stage, the fallback, is a Go program that the bomb can starve (one of
// 500 of its starts missed a 100 ms Timeout in CI).
func TestForkBombRuns(t *testing.T) {
	requireCgroup(t)
	rawPathOnly(t)
	runs := 500
	if v, err := strconv.Atoi(os.Getenv("STOCKADE_FORKBOMB_RUNS")); err == nil && v > 0 {
		runs = v
	}
	cfg := selfInSandbox(t, "forkbomb")
	cfg.Limits.Pids = 32
	cfg.Timeout = 100 * time.Millisecond
	var mu sync.Mutex
	bad := map[string]int{}
	refused, slow := 0, 0
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				res, err := New(cfg).Run(context.Background())
				mu.Lock()
				switch {
				case res == nil && errors.Is(err, context.DeadlineExceeded):
					// The Timeout counts the start too: a start slower
					// than it (a loaded machine) is not what this test
					// looks for.
					slow++
				case res == nil:
					bad[fmt.Sprintf("error: %v", err)]++
				case res.Reason != Timeout && res.Reason != Exited:
					bad[fmt.Sprintf("verdict %s: %v", res.Reason, err)]++
				case res.ForksRefused > 0:
					refused++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range runs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d fork bombs: %d reached the limit, %d did not start within the Timeout, %d ended otherwise than by their Timeout", runs, refused, slow, len(bad))
	if slow > runs/2 {
		t.Errorf("%d of %d runs did not start within their %v Timeout: too few ran to test anything", slow, runs, cfg.Timeout)
	}
	for what, n := range bad {
		t.Errorf("%d of %d runs: %s", n, runs, what)
	}
	if refused == 0 {
		t.Error("no bomb reached Limits.Pids: the test tests nothing")
	}
	assertNoChildren(t)
}
