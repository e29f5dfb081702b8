//go:build linux

package cgroup

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEnterThread forks a process from a thread that entered the group:
// the process starts inside the group in every hierarchy, and the thread,
// and so this process, is back where it was afterwards.
func TestEnterThread(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Config{Limits: Limits{Pids: 20, Memory: 64 << 20}})
	if DetectMode() == Unified {
		_, err := g.EnterThread()
		assert.ErrorIs(t, err, ErrNotSupported)
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := os.ReadFile("/proc/thread-self/cgroup")
	require.NoError(t, err)

	leave, err := g.EnterThread()
	require.NoError(t, err)
	inside, err := os.ReadFile("/proc/thread-self/cgroup")
	require.NoError(t, err)
	cmd := exec.Command("/bin/sleep", "100")
	startErr := cmd.Start()
	require.NoError(t, leave())
	require.NoError(t, startErr)
	started.Store(cmd.Process.Pid, struct{}{})
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		started.Delete(cmd.Process.Pid)
	}()

	after, err := os.ReadFile("/proc/thread-self/cgroup")
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "the thread did not go back")
	assert.True(t, inGroup(string(inside), g.Name()), "the thread never entered: %s", inside)
	child, err := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/cgroup")
	require.NoError(t, err)
	for _, d := range dirs(g) {
		assert.Contains(t, string(child), "/"+g.Name()+"\n", "hierarchy of %s", d)
	}
	pids, err := g.impl.procs()
	require.NoError(t, err)
	assert.Equal(t, []int{cmd.Process.Pid}, pids, "only the child is in the group")
	st, err := g.Stats()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), st.Pids)
}
