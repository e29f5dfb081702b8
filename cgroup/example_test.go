//go:build linux

package cgroup_test

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/stockade/stockade/cgroup"
)

// Run a command in its own group with 256 MiB of memory, no swap and at
// most 64 tasks, then tell whether the OOM killer ended it.
func ExampleCreate() {
	g, err := cgroup.Create(cgroup.Config{Limits: cgroup.Limits{Memory: 256 << 20, Pids: 64}})
	if err != nil {
		fmt.Println(err) // a *cgroup.ConfigError names the field at fault
		return
	}
	defer g.Remove()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer g.Kill(ctx) // whatever the command left running

	cmd := exec.Command("/bin/sh", "-c", "echo hello")
	fd, onClone := g.FD()
	if onClone {
		// cgroup v2: the process starts inside the group.
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}
	// On cgroup v1 a real caller starts the process stopped (an init stage
	// waiting on a pipe) and moves it in with AddProc before it goes on.
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	if !onClone {
		if err := g.AddProc(cmd.Process.Pid); err != nil {
			fmt.Println(err)
		}
	}
	cmd.Wait()
	st, err := g.Stats()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("out of memory:", st.OOMKills > 0, "peak memory:", st.MemoryPeak)
}

// Remove the groups of sandbox owners that died, when a service starts.
func ExampleCleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	removed, err := cgroup.Cleanup(ctx, "")
	fmt.Println(len(removed), err)
}
