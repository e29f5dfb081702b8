// Package cgroup gives one sandbox its own control group on cgroup v1 or
// v2: it creates the group, applies limits, places processes in it, reads
// what they used (CPU time, memory and pids peaks, OOM kills, refused
// forks), kills everything in it and removes it, and cleans up groups that
// a crashed owner left behind. Package sandbox composes it; it can also be
// used on its own:
//
//	g, err := cgroup.Create(cgroup.Config{Limits: cgroup.Limits{Memory: 256 << 20, Pids: 64}})
//	...
//	if fd, ok := g.FD(); ok { // cgroup v2: start the process inside the group
//		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
//	}
//	cmd.Start()
//	if _, ok := g.FD(); !ok { // cgroup v1: move it in before it runs anything
//		err = g.AddProc(cmd.Process.Pid)
//	}
//	...
//	st, err := g.Stats() // st.OOMKills > 0: the OOM killer struck
//	err = g.Kill(ctx)
//	err = g.Remove()
//
// The host's mode (DetectMode) is detected once; v1 and v2 live in separate
// files behind one small interface. A hybrid host (v1 controllers plus an
// empty cgroup2 hierarchy) is run as v1.
//
// # Where groups go
//
// Each group is a directory named sb-<owner pid>-<owner start time>-<pid
// namespace>-<n> under Config.Parent, by default "stockade" below the
// caller's own cgroup in each hierarchy, so that sandboxes count against the
// caller's own limits. The name lets Cleanup recognise groups whose owner
// died (even by SIGKILL, when nothing could run) and remove them; call it
// when a long-running owner starts. With the default parent it also finds,
// by a bounded search of each hierarchy, the "stockade" parents of owners
// that ran in other cgroups (another service or container, or before they
// moved).
//
// # Traps
//
//   - Directories outlive the Go value: every created Group must be removed
//     with Remove, after Kill if anything may still run in it. Remove fails,
//     after a short retry, while the group holds processes.
//   - On cgroup v1 a process is placed by writing its pid into every
//     hierarchy (AddProc), which only moves the process itself: children it
//     forked and memory it touched before stay where they were. Move it
//     while it waits, before it runs anything. On v2 start it inside the
//     group with FD (CLONE_INTO_CGROUP, Linux 5.7), so that not even the
//     caller's threads pass through the group.
//   - Limits.Pids counts threads, not processes: a Go program uses 5 to 8.
//   - Limits.Memory below MinMemory is refused: a Go init stage would be
//     OOM-killed before the command starts. Swap is limited to zero whenever
//     memory is limited, unless Limits.Swap says otherwise.
//   - cgroup v2 lets a cgroup hand controllers to its children only while
//     it holds no processes. The default parent works when the caller sits
//     in the root cgroup; a caller in an ordinary v2 cgroup (a systemd unit,
//     say) must set Config.Parent to a delegated cgroup without processes,
//     or its limits fail with an error that says so. Create enables the
//     controllers it needs in the parent's cgroup.subtree_control, and in
//     its ancestors up to the caller's own cgroup (up to the root for an
//     absolute Parent).
//   - Limits.Devices writes the rules of the v1 devices controller in
//     order, on top of the parent's default (allow everything): an allow
//     list starts with a rule of Type "a" that denies every device. Writing
//     them needs CAP_SYS_ADMIN. On cgroup v2 the kernel controls devices
//     only through a BPF program, which this package does not load:
//     Validate refuses device rules there with a FeatureError.
//   - Kill leaves the caller's own children as zombies until the caller
//     waits for them; zombies no longer count as members of the group.
//   - Stats counters of a controller that the group cannot use are zero.
//     Decide that a sandbox ran out of memory from Stats.OOMKills, not from
//     the SIGKILL that ended it: Kill and a wall-clock timeout send SIGKILL
//     too.
//
// # Cost
//
// Package sandbox re-executes its host binary for every sandbox, so every
// package initialiser this package pulls in runs on every sandbox start.
// The cgroup1 and cgroup2 subpackages of github.com/containerd/cgroups/v3
// bring protobuf descriptors, dbus, go-systemd, cilium/ebpf and logrus,
// which added 0.6 to 0.75 ms to every start of a small Go binary here (a
// third of the sandbox's whole start-up budget). This package therefore
// imports only the module's root package (mode detection and
// /proc/self/cgroup parsing, which cost nothing at init) and writes the
// cgroup files itself with plain system calls. On v1 a group with memory
// and pids limits costs about 0.25 ms to create, fill and remove.
//
// This package never logs; errors name the operation, the group and the
// file, and wrap the system call's error. Configuration errors are
// *ConfigError values (sandbox's type) that match ErrInvalidConfig, and
// ErrNotSupported too when the host lacks what a field needs.
//
// On systems other than Linux the package builds with the same API, but
// creates nothing: Create, Cleanup, CheckDelegation and the Group methods
// return an error matching ErrNotSupported (sandbox.ErrNotSupported),
// DetectMode returns Unavailable, and Config.Validate checks what needs no
// host before it returns such an error.
package cgroup
