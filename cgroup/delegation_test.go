//go:build linux

package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// writableUnder returns an access check that lets the caller write what
// lies below one of dirs, and nothing else.
func writableUnder(dirs ...string) func(string) bool {
	return func(p string) bool {
		for _, d := range dirs {
			if p == d || strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}
}

func TestDelegationV1(t *testing.T) {
	top := t.TempDir()
	h := &host{mode: Hybrid, v1: map[string]*hierarchy{}}
	for _, c := range []string{"memory", "pids", "cpuacct"} {
		require.NoError(t, os.MkdirAll(filepath.Join(top, c, "ci"), 0o755))
		h.v1[c] = &hierarchy{mount: filepath.Join(top, c), controllers: []string{c}}
	}
	f := facts{mode: Hybrid}

	d := h.delegation("/ci", f, writableUnder(filepath.Join(top, "pids", "ci")))
	assert.True(t, d.Writable)
	assert.Equal(t, []string{"pids"}, d.Controllers)
	assert.Contains(t, d.Reason, filepath.Join(top, "memory", "ci"))
	assert.Contains(t, d.Reason, "chown -R")
	assert.Equal(t, []string{"Limits.Memory"}, d.Missing(Limits{Memory: 64 << 20, Pids: 10}))

	// A parent that does not exist yet is created in the nearest one that
	// does, so that one decides.
	d = h.delegation("/ci/jobs/a", f, writableUnder(filepath.Join(top, "memory", "ci"), filepath.Join(top, "pids", "ci"), filepath.Join(top, "cpuacct", "ci")))
	assert.True(t, d.Writable)
	assert.Equal(t, []string{"cpuacct", "memory", "pids"}, d.Controllers)
	assert.Empty(t, d.Reason)
	assert.Empty(t, d.Missing(Limits{Memory: 64 << 20, Pids: 10}))

	d = h.delegation("", f, writableUnder())
	assert.False(t, d.Writable)
	assert.Empty(t, d.Controllers)
	assert.Equal(t, []string{"Limits.Memory", "Limits.Pids"}, d.Missing(Limits{Memory: 64 << 20, Pids: 10}))
	assert.Empty(t, d.Missing(Limits{}))
}

func TestDelegationV2(t *testing.T) {
	top := t.TempDir()
	own := "/user.slice/user-1001.slice/user@1001.service/app.slice/run-1.scope"
	mk := func(rel, subtree string) {
		dir := filepath.Join(top, rel)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(subtree), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644))
	}
	mk("", "memory pids cpu")
	mk("/user.slice", "memory pids")
	mk(own, "")
	h := &host{mode: Unified, v2: &hierarchy{mount: top, own: own}}
	f := facts{mode: Unified, controllers: map[string]bool{"memory": true, "pids": true}}
	delegated := writableUnder(filepath.Join(top, "/user.slice/user-1001.slice/user@1001.service"))

	d := h.delegation("", f, delegated)
	assert.True(t, d.Writable)
	assert.Equal(t, []string{"memory", "pids"}, d.Controllers)
	assert.Empty(t, d.Reason)

	// The scope is not the caller's: nothing is delegated.
	d = h.delegation("", f, writableUnder())
	assert.False(t, d.Writable)
	assert.Contains(t, d.Reason, "Delegate=yes")
	assert.Equal(t, []string{"Limits.Pids"}, d.Missing(Limits{Pids: 5}))

	// A parent outside the caller's subtree: moving processes there needs
	// the root's cgroup.procs.
	mk("/elsewhere", "")
	d = h.delegation("/elsewhere", f, writableUnder(filepath.Join(top, "elsewhere"), filepath.Join(top, own)))
	assert.False(t, d.Writable, "the root's cgroup.procs is not the caller's")
	assert.Contains(t, d.Reason, filepath.Join(top, "cgroup.procs"))

	// A level that does not pass memory on, and may not be changed.
	mk(own+"/stockade", "pids")
	only := func(paths ...string) func(string) bool {
		return func(p string) bool {
			for _, q := range paths {
				if p == filepath.Join(top, q) {
					return true
				}
			}
			return false
		}
	}
	d = h.delegation("", f, only(own, own+"/cgroup.procs", own+"/cgroup.subtree_control", own+"/stockade"))
	assert.True(t, d.Writable)
	assert.Equal(t, []string{"pids"}, d.Controllers)
	assert.Contains(t, d.Reason, "passes on only pids")

	// The facts' note (a parent that holds processes) is the reason.
	f.controllersNote = "the cgroup X holds processes"
	d = h.delegation("", f, delegated)
	assert.Equal(t, "the cgroup X holds processes", d.Reason)
}

func TestCommonAncestor(t *testing.T) {
	for _, tt := range [][3]string{
		{"/a/b/c", "/a/b/d", "/a/b"},
		{"/a/b", "/a/b/stockade", "/a/b"},
		{"", "/stockade", ""},
		{"/a", "/b", ""},
	} {
		assert.Equal(t, tt[2], commonAncestor(tt[0], tt[1]), "%q %q", tt[0], tt[1])
	}
}

func TestMissing(t *testing.T) {
	all := Delegation{Mode: Unified, Writable: true, Controllers: []string{"cpu", "cpuset", "io", "memory", "pids"}}
	l := Limits{Memory: 1, Swap: 1, CPU: 1, CPUWeight: 1, Pids: 1, CPUs: "0", Mems: "0", IOWeight: 1}
	assert.Empty(t, all.Missing(l))
	none := Delegation{Mode: Legacy}
	assert.Equal(t, []string{"Limits.Memory", "Limits.Swap", "Limits.CPU", "Limits.CPUWeight", "Limits.Pids", "Limits.CPUs", "Limits.Mems", "Limits.IOWeight"}, none.Missing(l))
	v1 := Delegation{Mode: Legacy, Writable: true, Controllers: []string{"io", "memory"}}
	assert.Equal(t, []string{"Limits.IOWeight"}, v1.Missing(Limits{IOWeight: 5, Memory: 1}), "v1 weighs I/O with blkio")
}

func TestCheckDelegationAsRoot(t *testing.T) {
	requireCgroups(t)
	d, err := CheckDelegation("")
	require.NoError(t, err)
	assert.True(t, d.Writable, d.Reason)
	assert.Contains(t, d.Controllers, "pids")
	_, err = CheckDelegation("../up")
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// delegatedParentEnv names a cgroup parent that root delegated to the
// user that runs the rootless tests (.ci/run creates and chowns it).
const delegatedParentEnv = "STOCKADE_TEST_CGROUP_PARENT"

// TestDelegatedSubtree runs as an ordinary user: with nothing delegated
// the default parent is refused with a remedy, and in the subtree that
// root delegated, a group with a pids limit is created, holds a process
// and is removed, all without root.
func TestDelegatedSubtree(t *testing.T) {
	testutil.RequireNonRoot(t)
	if DetectMode() == Unavailable {
		testutil.Skip(t, "no cgroup file system is mounted", "mount cgroupfs")
	}
	d, err := CheckDelegation("")
	require.NoError(t, err)
	h, err := probeHost()
	require.NoError(t, err)
	// Independently of the access check: does the caller own the
	// directory the default parent would be made in?
	var hier *hierarchy
	if h.v2 != nil {
		hier = h.v2
	} else {
		hier = h.v1["pids"]
	}
	require.NotNil(t, hier)
	fi, err := os.Stat(existing(hier.dir(resolveParent("", hier)), hier.mount))
	require.NoError(t, err)
	owned := fi.Sys().(*syscall.Stat_t).Uid == uint32(os.Geteuid())
	if !owned {
		assert.False(t, d.Writable && h.v2 != nil, "a cgroup the caller does not own counts as delegated")
		assert.NotContains(t, d.Controllers, "pids")
		assert.NotEmpty(t, d.Reason)
		_, err := Create(Config{Limits: Limits{Pids: 16}})
		assert.Error(t, err, "a pids limit without a delegated pids hierarchy")
	}

	parent := os.Getenv(delegatedParentEnv)
	if parent == "" {
		testutil.Skip(t, delegatedParentEnv+" names no delegated cgroup", "have root create and chown one, as .ci/run does")
	}
	d, err = CheckDelegation(parent)
	require.NoError(t, err)
	require.True(t, d.Writable, d.Reason)
	require.Contains(t, d.Controllers, "pids", d.Reason)
	g := newGroup(t, Config{Parent: parent, Limits: Limits{Pids: 16}})
	assert.Equal(t, "16", readBack(t, g, "pids.max"))
	hp := startHelper(t, g, "sleep")
	procs, err := g.impl.procs()
	require.NoError(t, err)
	assert.Contains(t, procs, hp.cmd.Process.Pid)
}

// TestMemoryPeak compares MemoryPeak with a real group's files.
func TestMemoryPeak(t *testing.T) {
	requireCgroups(t)
	err := MemoryPeak()
	if DetectMode() != Unified {
		require.Error(t, err)
		assert.Contains(t, err.Error(), "memory.max_usage_in_bytes")
		return
	}
	g := newGroup(t, Config{Limits: Limits{Memory: 64 << 20}})
	_, statErr := os.Stat(filepath.Join(dirs(g)[0], "memory.peak"))
	assert.Equal(t, statErr == nil, err == nil, "memory.peak: %v; MemoryPeak: %v", statErr, err)
}
