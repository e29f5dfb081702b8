//go:build linux

package sandbox

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/testutil"
)

func TestPlanLimits(t *testing.T) {
	all := cgroup.Delegation{Mode: cgroup.Hybrid, Writable: true, Controllers: []string{"blkio", "cpu", "cpuacct", "cpuset", "memory", "pids"}}
	pidsOnly := cgroup.Delegation{Mode: cgroup.Hybrid, Writable: true, Controllers: []string{"pids"}, Reason: "uid 1001 may not create cgroups in /sys/fs/cgroup/memory"}
	none := cgroup.Delegation{Mode: cgroup.Unified, Reason: "uid 1001 may not create cgroups in /sys/fs/cgroup/user.slice: ... Delegate=yes ..."}
	mem := cgroup.Limits{Memory: 256 << 20, Pids: 64}
	devices := cgroup.Limits{CPU: 0.5, CPUPeriod: 10 * time.Millisecond, Devices: []cgroup.DeviceRule{{Type: "c", Major: 1, Minor: 3, Access: "r"}}}
	every := cgroup.Limits{Memory: 256 << 20, Swap: 1 << 20, CPU: 0.5, CPUWeight: 50, Pids: 64, CPUs: "0", Mems: "0", IOWeight: 10}

	tests := []struct {
		name       string
		l          cgroup.Limits
		bestEffort bool
		d          cgroup.Delegation
		want       limitsPlan
		errHas     []string
	}{
		{name: "no limits, delegated", d: all, want: limitsPlan{cgroup: true}},
		{name: "no limits, nothing delegated", d: none, want: limitsPlan{}},
		{name: "everything delegated", l: every, d: all, want: limitsPlan{cgroup: true, limits: every}},
		{name: "nothing delegated, strict", l: mem, d: none,
			errHas: []string{"Limits.Memory, Limits.Pids cannot be applied", "Delegate=yes", "best effort"}},
		{name: "partly delegated, strict", l: mem, d: pidsOnly,
			errHas: []string{"Limits.Memory cannot be applied", "/sys/fs/cgroup/memory"}},
		{name: "partly delegated, best effort", l: mem, bestEffort: true, d: pidsOnly, want: limitsPlan{
			cgroup:  true,
			limits:  cgroup.Limits{Pids: 64},
			rlimits: []proto.Rlimit{{Resource: unix.RLIMIT_DATA, Cur: 256 << 20, Max: 256 << 20}},
			notes:   []string{"Limits.Memory: no memory controller to use; each process may instead map at most 268435456 bytes of data (RLIMIT_DATA, at least 128 MiB)"},
		}},
		{name: "nothing delegated, best effort", l: every, bestEffort: true, d: none, want: limitsPlan{
			rlimits: []proto.Rlimit{
				{Resource: unix.RLIMIT_DATA, Cur: 256 << 20, Max: 256 << 20},
				{Resource: unix.RLIMIT_NPROC, Cur: 64, Max: 64},
			},
			notes: []string{
				"Limits.Memory: no memory controller to use; each process may instead map at most 268435456 bytes of data (RLIMIT_DATA, at least 128 MiB)",
				"Limits.Swap: no memory controller to use; not applied",
				"Limits.CPU: no controller to use; not applied",
				"Limits.CPUWeight: no controller to use; not applied",
				"Limits.Pids: no pids controller to use; each user id in the sandbox may instead hold at most 64 tasks (RLIMIT_NPROC)",
				"Limits.CPUs: no controller to use; not applied",
				"Limits.Mems: no controller to use; not applied",
				"Limits.IOWeight: no controller to use; not applied",
			},
		}},
		{name: "device rules need host root, strict", l: devices, d: all,
			errHas: []string{"Limits.Devices cannot be applied"}},
		{name: "device rules need host root, best effort", l: devices, bestEffort: true, d: all, want: limitsPlan{
			cgroup: true,
			limits: cgroup.Limits{CPU: 0.5, CPUPeriod: 10 * time.Millisecond},
			notes:  []string{"Limits.Devices: no controller to use; not applied"},
		}},
		{name: "a CPU period with CPU, best effort", l: cgroup.Limits{CPU: 0.5, CPUPeriod: 10 * time.Millisecond}, bestEffort: true, d: pidsOnly, want: limitsPlan{
			cgroup: true,
			notes:  []string{"Limits.CPU: no controller to use; not applied", "Limits.CPUPeriod: no controller to use; not applied"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planLimits(tt.l, tt.bestEffort, tt.d)
			if len(tt.errHas) > 0 {
				var fe *FeatureError
				require.ErrorAs(t, err, &fe)
				assert.ErrorIs(t, err, ErrNotSupported)
				for _, s := range tt.errHas {
					assert.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestRootlessLimits runs as an ordinary user (CI's rootless pass): limits
// under a delegated cgroup apply for real; without one they fail with the
// remedy, or with BestEffort fall back to rlimits and say so.
func TestRootlessLimits(t *testing.T) {
	testutil.RequireNonRoot(t)
	bb := testutil.Busybox(t)
	// The caller's own cgroup is not delegated to it.
	strict := Config{Args: []string{bb, "true"}, Limits: Limits{Memory: 256 << 20, Pids: 32}}
	o := run(t, strict)
	require.ErrorIs(t, o.err, ErrNotSupported)
	assert.Contains(t, o.err.Error(), "Limits.Memory")

	lenient := strict
	lenient.Args = []string{bb, "sh", "-c", "ulimit -d; ulimit -u"}
	lenient.Limits.BestEffort = true
	o = run(t, lenient)
	require.NoError(t, o.err, o.stderr)
	assert.Equal(t, []string{"262144", "32"}, lines(o.stdout), "RLIMIT_DATA in KiB, RLIMIT_NPROC")
	require.Len(t, o.res.Notes, 2)
	assert.Contains(t, o.res.Notes[0], "RLIMIT_DATA")
	assert.Contains(t, o.res.Notes[1], "RLIMIT_NPROC")

	parent := os.Getenv("STOCKADE_TEST_CGROUP_PARENT")
	if parent == "" {
		testutil.Skip(t, "no delegated cgroup named", "set STOCKADE_TEST_CGROUP_PARENT to a cgroup the user owns, as .ci/rootless does")
	}
	delegated := Config{Args: []string{bb, "true"}, Limits: Limits{CgroupParent: parent, Pids: 32}}
	o = run(t, delegated)
	require.NoError(t, o.err, o.stderr)
	assert.Empty(t, o.res.Notes)
	assert.Positive(t, o.res.PidsPeak, "the figures come from the delegated group")
}
