//go:build linux

package cgroup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFindParentsBounds walks a made-up tree: parents are found down to
// the depth bound and no further, the directory budget is spent one level
// of every top at a time, and groups and parents are not descended into.
func TestFindParentsBounds(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	mk := func(top string, rels ...string) {
		for _, rel := range rels {
			require.NoError(t, os.MkdirAll(filepath.Join(top, rel), 0o755))
		}
	}
	mk(a,
		"stockade/sb-1-2-3-4",
		"x/stockade",
		"d1/d2/d3/d4/d5/stockade",    // 6 levels below the top
		"e1/e2/e3/e4/e5/e6/stockade", // 7 levels
		"sb-1-2-3-4/stockade",        // inside a group
		"x/stockade/stockade",        // inside a parent
		"sb-x/stockade",              // a directory not named like a group
	)
	require.NoError(t, os.WriteFile(filepath.Join(a, "d1", "stockade"), nil, 0o644))
	mk(b, "y/stockade")
	for i := range 50 {
		mk(c, fmt.Sprintf("w%02d/stockade", i))
	}
	ctx := context.Background()

	found, read, err := findParents(ctx, []string{a, b}, "stockade", walkBound{depth: 6, dirs: 1000})
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		{a + "/stockade", a + "/sb-x/stockade", a + "/x/stockade", a + "/d1/d2/d3/d4/d5/stockade"},
		{b + "/y/stockade"},
	}, found)
	// a and b; d1, e1, sb-x, x and y; d2 to d5 and e2 to e5.
	assert.Equal(t, 15, read)

	// Two reads take the first level of both tops, nothing deeper.
	found, read, err = findParents(ctx, []string{a, b}, "stockade", walkBound{depth: 6, dirs: 2})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{a + "/stockade"}, nil}, found)
	assert.Equal(t, 2, read)

	// Eleven reads: the top and the first ten of its fifty children.
	found, read, err = findParents(ctx, []string{c}, "stockade", walkBound{depth: 6, dirs: 11})
	require.NoError(t, err)
	assert.Equal(t, 11, read)
	require.Len(t, found[0], 10)
	assert.Equal(t, c+"/w09/stockade", found[0][9])

	found, read, err = findParents(ctx, []string{a}, "stockade", walkBound{depth: 1, dirs: 1000})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{a + "/stockade"}}, found)
	assert.Equal(t, 1, read)

	// A missing top is skipped.
	found, _, err = findParents(ctx, []string{a + "/missing", b}, "stockade", walkBound{depth: 6, dirs: 1000})
	require.NoError(t, err)
	assert.Equal(t, [][]string{nil, {b + "/y/stockade"}}, found)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = findParents(cancelled, []string{a}, "stockade", walkBound{depth: 6, dirs: 1000})
	require.ErrorIs(t, err, context.Canceled)
}

// TestCleanupFindsGroupsElsewhere leaves groups under a parent named like
// the default one outside this process's own cgroup, as an owner that ran
// in another cgroup would, and checks that Cleanup with the default parent
// finds them: a dead owner's group is killed and removed, in every
// hierarchy even where its path differs, and a live owner's group, a group
// beyond the search's depth and a group under a parent named otherwise
// stay.
func TestCleanupFindsGroupsElsewhere(t *testing.T) {
	requireCgroups(t)
	h, err := probeHost()
	require.NoError(t, err)
	me, err := self()
	require.NoError(t, err)

	// The hierarchies a group without limits uses.
	var hiers []*hierarchy
	if h.v2 != nil {
		hiers = []*hierarchy{h.v2}
	} else {
		for _, c := range v1Controllers(Limits{}) {
			if hier := h.v1[c]; hier != nil && !slices.Contains(hiers, hier) {
				hiers = append(hiers, hier)
			}
		}
	}
	elsewhere := "/stockade-test-elsewhere-" + itoa(os.Getpid())
	for _, hier := range hiers {
		_, err := os.Stat(hier.dir(elsewhere))
		require.ErrorIs(t, err, os.ErrNotExist, "left over from an earlier run")
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			assert.NoError(t, removeTree(ctx, hier.dir(elsewhere)))
		})
	}
	// mkGroup creates the group called name under the parent that rel
	// gives for each hierarchy and returns its directories.
	mkGroup := func(name string, rel func(i int) string) []v1Dir {
		var dirs []v1Dir
		for i, hier := range hiers {
			d := hier.dir(rel(i)) + "/" + name
			require.NoError(t, os.MkdirAll(d, 0o755))
			dirs = append(dirs, v1Dir{hier, d})
		}
		return dirs
	}
	at := func(rel string) func(int) string { return func(int) string { return rel } }

	dead := deadOwner(t)
	deadName := func(n int) string {
		return fmt.Sprintf("%s%d-%d-%d-%d", namePrefix, dead.pid, dead.start, me.pidNS, n)
	}
	// The dead owner ran in another cgroup in the first hierarchy than in
	// the others, as this process may (a memory cgroup of its own, say).
	stale := mkGroup(deadName(1), func(i int) string {
		if i == 0 && len(hiers) > 1 {
			return elsewhere + "/deeper/" + DefaultParent
		}
		return elsewhere + "/" + DefaultParent
	})
	g := &Group{name: deadName(1)}
	if h.v2 != nil {
		g.impl = openV2At(stale[0].dir)
	} else {
		g.impl = openV1At(stale)
	}
	sleeper := startHelper(t, g, "sleep")

	liveName, err := newName()
	require.NoError(t, err)
	live := mkGroup(liveName, at(elsewhere+"/"+DefaultParent))
	// The parent is 7 levels below the top, one more than the search goes.
	beyond := mkGroup(deadName(2), at(elsewhere+"/1/2/3/4/5/"+DefaultParent))
	otherParent := mkGroup(deadName(3), at(elsewhere+"/jobs"))
	notOurs := mkGroup("sb-unknown", at(elsewhere+"/"+DefaultParent))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	removed, err := Cleanup(ctx, "")
	require.NoError(t, err)
	t.Logf("removed %v", removed)
	assert.Contains(t, removed, deadName(1))
	for _, d := range stale {
		assert.NoDirExists(t, d.dir)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.wait() }()
	select {
	case err := <-exited:
		require.Error(t, err, "the sleeper was killed")
	case <-time.After(30 * time.Second):
		t.Fatal("the sleeper still runs 30 s after Cleanup")
	}
	assert.Equal(t, syscall.SIGKILL, sleeper.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal())

	for _, name := range []string{liveName, deadName(2), deadName(3)} {
		assert.NotContains(t, removed, name)
	}
	for _, dirs := range [][]v1Dir{live, beyond, otherParent, notOurs} {
		for _, d := range dirs {
			assert.DirExists(t, d.dir)
		}
	}
}

// deadOwner returns an owner in this pid namespace that has exited: a
// child that was started and reaped.
func deadOwner(t *testing.T) owner {
	t.Helper()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), helperEnv+"=true") // exits at once: stdin is empty
	require.NoError(t, cmd.Start())
	o := owner{pid: cmd.Process.Pid}
	var err error
	o.start, err = startTime(o.pid) // a zombie until reaped
	cmd.Wait()
	require.NoError(t, err)
	me, err := self()
	require.NoError(t, err)
	o.pidNS = me.pidNS
	require.False(t, o.alive(me))
	return o
}

// BenchmarkCleanupSearch measures Cleanup's search for parents on this
// host's real hierarchies, reporting the directories read per search and
// the cost of each; the search reads at most searchBound.dirs of them.
func BenchmarkCleanupSearch(b *testing.B) {
	requireCgroups(b)
	h, err := probeHost()
	if err != nil {
		b.Fatal(err)
	}
	var tops []string
	if h.v2 != nil {
		tops = []string{h.v2.mount}
	}
	for _, hier := range h.v1Distinct() {
		tops = append(tops, hier.mount)
	}
	ctx := context.Background()
	read := 0
	for b.Loop() {
		_, n, err := findParents(ctx, tops, DefaultParent, searchBound)
		if err != nil {
			b.Fatal(err)
		}
		read = n
	}
	b.ReportMetric(float64(read), "dirs/op")
	if read > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*read), "ns/dir")
	}
}
