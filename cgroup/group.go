//go:build linux

package cgroup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Group is one sandbox's control group: a directory in each v1 hierarchy
// it uses, or one directory in the v2 hierarchy. Its methods are safe for
// concurrent use. A Group must be removed with Remove (after Kill if
// processes may still run in it); the directories outlive the Go value.
type Group struct {
	name string
	impl groupImpl

	mu sync.Mutex
	// memPeak and pidsPeak are the largest usages Stats has seen, for
	// kernels without memory.peak or pids.peak. Guarded by mu.
	memPeak, pidsPeak uint64
	// removed is set once Remove succeeded. Guarded by mu.
	removed bool
}

// groupImpl is the v1 or the v2 side of a group.
type groupImpl interface {
	addProc(pid int) error
	fd() (int, bool)
	stats(*Stats) (peaks, error)
	procs() ([]int, error)
	kill(ctx context.Context, name string) error
	thaw() error
	remove(ctx context.Context) error
}

// peaks says which high-water marks the kernel keeps itself.
type peaks struct{ memory, pids bool }

// Stats is what a group's processes have used so far. Counters of a
// controller that the group does not use are zero.
type Stats struct {
	// CPUUser and CPUSystem are the CPU time spent in user and kernel mode
	// by every process that ran in the group (cpu.stat on v2, cpuacct on
	// v1). Their sum is the kernel's exact total, what CPUTime returns; the
	// split follows the kernel's user and system counters, which on v1
	// count whole scheduler ticks.
	CPUUser, CPUSystem time.Duration
	// MemoryPeak is the most memory the group used at once, in bytes
	// (memory.peak on v2 from Linux 5.19, memory.max_usage_in_bytes on v1).
	// On older v2 kernels it is the largest usage that Stats has seen, a
	// lower bound.
	MemoryPeak uint64
	// OOMKills counts the processes of the group that the OOM killer killed
	// (oom_kill in memory.events on v2, in memory.oom_control on v1 from
	// Linux 4.13). Decide "out of memory" from it, not from a SIGKILL.
	OOMKills uint64
	// Pids is the number of tasks in the group now (pids.current). The
	// kernel counts a task until its parent reaps it, so killed children of
	// the caller, or orphans of a reaper that does not reap, still count.
	Pids uint64
	// PidsPeak is the most tasks the group held at once (pids.peak, Linux
	// 6.1); on older kernels the largest count that Stats has seen, a lower
	// bound.
	PidsPeak uint64
	// ForksRefused counts the forks and clones that failed because the
	// group hit Limits.Pids (max in pids.events).
	ForksRefused uint64
}

// Create validates cfg, then creates a group under cfg.Parent and applies
// cfg.Limits. An invalid config or a limit this host cannot apply returns a
// *ConfigError before anything is created; a failure after that removes
// what was created. The parent directories are created when missing and
// left in place.
func Create(cfg Config) (*Group, error) {
	h, err := probeHost()
	if err != nil {
		return nil, err
	}
	f, err := hostFacts(cfg.Parent)
	if err != nil {
		return nil, err
	}
	return create(h, f, cfg)
}

// create is Create on a given host, so that tests can aim it at another
// hierarchy.
func create(h *host, f facts, cfg Config) (*Group, error) {
	if err := validate(cfg, f); err != nil {
		return nil, err
	}
	name := cfg.Name
	var err error
	if name == "" {
		if name, err = newName(); err != nil {
			return nil, err
		}
	}
	var impl groupImpl
	if h.v2 != nil {
		impl, err = createV2(h.v2, f, cfg, name)
	} else {
		impl, err = createV1(h, f, cfg, name)
	}
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	return &Group{name: name, impl: impl}, nil
}

// Name returns the group's directory name, the same in every hierarchy.
func (g *Group) Name() string { return g.name }

// FD returns an open descriptor of the group's directory to start a
// process directly inside the group, as syscall.SysProcAttr{UseCgroupFD:
// true, CgroupFD: fd} (clone3 with CLONE_INTO_CGROUP, Linux 5.7). ok is
// false on cgroup v1, where no single descriptor spans the hierarchies: use
// AddProc then. The descriptor belongs to the group and is closed by Remove.
func (g *Group) FD() (fd int, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.impl.fd()
}

// AddProc moves the process pid (all its threads) into the group. On v1 it
// writes the pid to every hierarchy the group uses; a process that starts
// threads or children before it is moved leaves them behind, so move it
// while it waits.
func (g *Group) AddProc(pid int) error {
	if err := g.impl.addProc(pid); err != nil {
		return fmt.Errorf("add process %d to cgroup %s: %w", pid, g.name, err)
	}
	return nil
}

// Stats reads the group's usage counters.
func (g *Group) Stats() (Stats, error) {
	var st Stats
	have, err := g.impl.stats(&st)
	if err != nil {
		return st, fmt.Errorf("read stats of cgroup %s: %w", g.name, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !have.memory {
		g.memPeak = max(g.memPeak, st.MemoryPeak)
		st.MemoryPeak = g.memPeak
	}
	if !have.pids {
		g.pidsPeak = max(g.pidsPeak, st.Pids)
		st.PidsPeak = g.pidsPeak
	}
	return st, nil
}

// Kill sends SIGKILL to every process in the group and waits until the
// group is empty. Processes that fork as fast as they can, or ignore every
// other signal, die too: Kill writes cgroup.kill where the kernel has it
// (v2, Linux 5.14), and otherwise freezes the group, kills every process
// while none can fork, thaws it and repeats until the group is empty. It
// returns ctx's error if the group is not empty before ctx is done. A
// group that is already empty costs one read.
// Processes that are children of the caller stay zombies until the caller
// reaps them; they no longer count as members of the group.
func (g *Group) Kill(ctx context.Context) error {
	g.mu.Lock()
	removed := g.removed
	g.mu.Unlock()
	if removed || g.empty() {
		// An empty group needs no freezing: nothing in it can fork.
		return nil
	}
	if err := g.impl.kill(ctx, g.name); err != nil {
		return fmt.Errorf("kill processes of cgroup %s: %w", g.name, err)
	}
	return nil
}

// Thaw thaws the group if it is frozen, whoever froze it (the v1 freezer's
// freezer.state, cgroup.freeze on v2), so that a SIGKILL sent to its
// processes takes effect: a task of a frozen v1 group does not die until it
// is thawed. A group without a freezer, or one already removed, needs
// nothing.
func (g *Group) Thaw() error {
	g.mu.Lock()
	removed := g.removed
	g.mu.Unlock()
	if removed {
		return nil
	}
	if err := g.impl.thaw(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("thaw cgroup %s: %w", g.name, err)
	}
	return nil
}

// removeTimeout bounds how long Remove waits for the kernel to let go of a
// group whose last process just exited. Tests shorten it.
var removeTimeout = 2 * time.Second

// Remove removes the group's directories, and any cgroups created below
// them, and closes the descriptor FD returned. The group must be empty:
// call Kill first. Remove retries for a short while when the kernel still
// reports the group busy, which happens just after its last process died.
// Removing a removed group does nothing.
func (g *Group) Remove() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	if err := g.impl.remove(ctx); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", g.name, err)
	}
	g.removed = true
	return nil
}

// errBusy is returned when a group still holds processes.
var errBusy = errors.New("the group still holds processes (call Kill first)")
