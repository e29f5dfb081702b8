//go:build linux

package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestAboveNamespace(t *testing.T) {
	for p, want := range map[string]bool{
		"/": false, "": false, "/a/b": false, "/..": true, "/../..": true,
		"/../../x": true, "/..x": false, "/a/../..": true,
	} {
		assert.Equal(t, want, aboveNS(p), p)
	}
	up, down := splitUp("/../../docker/x")
	assert.Equal(t, 2, up)
	assert.Equal(t, []string{"docker", "x"}, down)
}

// TestSearchOwn builds a fake hierarchy: the caller's cgroup is
// /kubepods/pod1/ctr (the namespace's root) plus /inner below it, and the
// mount shows the hierarchy's top as "/../../..".
func TestSearchOwn(t *testing.T) {
	top := t.TempDir()
	mk := func(rel, procs string) {
		require.NoError(t, os.MkdirAll(filepath.Join(top, rel), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(top, rel, "cgroup.procs"), []byte(procs), 0o644))
	}
	mk("", "1\n2\n")
	mk("system/sshd", "40\n")
	mk("kubepods/pod1/ctr", "")
	mk("kubepods/pod1/ctr/inner", "7\n4242\n")
	mk("kubepods/pod2/ctr/inner", "99\n")
	mk("kubepods/pod2/ctr/other", "4242\n") // a name that does not match

	own, err := searchOwn(top, "/inner", "/../../..", 4242)
	require.NoError(t, err)
	assert.Equal(t, "/kubepods/pod1/ctr/inner", own)

	own, err = searchOwn(top, "/", "/../..", 40)
	require.NoError(t, err)
	assert.Equal(t, "/system/sshd", own)

	_, err = searchOwn(top, "/inner", "/../../..", 5)
	assert.ErrorIs(t, err, ErrOwnCgroupNotFound, "a caller that is nowhere must not get the top")
	_, err = searchOwn(top, "/", "/../x/y", 1)
	assert.ErrorIs(t, err, ErrOwnCgroupNotFound)

	// The ordinary case needs no search.
	own, err = locateOwn(top, "/a/b", "/")
	require.NoError(t, err)
	assert.Equal(t, "/a/b", own)
	_, err = locateOwn(top, "/", "/../..")
	assert.ErrorIs(t, err, ErrOwnCgroupNotFound)
	assert.Contains(t, err.Error(), "mount the hierarchy inside the cgroup namespace")
}

// TestGroupsStayInsideCgroupNamespace starts a helper in a group G, which
// starts a process in a new cgroup namespace rooted at G. The hierarchies
// it sees are the host's, mounted from above its namespace ("/../.."), as
// in a container that shares the host's /sys/fs/cgroup. The group that
// process creates must be inside G, never at the hierarchy's top.
func TestGroupsStayInsideCgroupNamespace(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Config{})
	cmd, stdin, err := helperCommand(g, "cgroupns")
	require.NoError(t, err)
	var out bytes.Buffer
	cmd.Stdout = &out
	require.NoError(t, launch(t, g, cmd, stdin).wait(), out.String())

	fields := strings.Fields(out.String())
	require.NotEmpty(t, fields)
	require.Equal(t, "dirs", fields[0], out.String())
	require.Greater(t, len(fields), 1, out.String())
	for _, d := range fields[1:] {
		inside := false
		for _, gd := range dirs(g) {
			inside = inside || strings.HasPrefix(d, gd+"/")
		}
		assert.True(t, inside, "%s is outside the group %v that the namespace is rooted at", d, dirs(g))
	}
}

// cgroupNSHelper is the helper of TestGroupsStayInsideCgroupNamespace:
// "cgroupns" starts itself again as "cgroupns-inner" in a new cgroup
// namespace and relays its output; "cgroupns-inner" creates a group,
// prints its directories and removes it.
func cgroupNSHelper(mode string) {
	if mode == "cgroupns" {
		cmd := exec.Command("/proc/self/exe")
		cmd.Env = append(os.Environ(), helperEnv+"=cgroupns-inner")
		cmd.Stdin = strings.NewReader("x")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWCGROUP}
		if err := cmd.Run(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		return
	}
	g, err := Create(Config{})
	if err != nil {
		fmt.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	fmt.Println("dirs", strings.Join(dirs(g), " "))
	if err := errors.Join(g.Remove()); err != nil {
		fmt.Fprintln(os.Stderr, "remove:", err)
		os.Exit(1)
	}
}
