// Package sandbox runs untrusted commands in sandboxes on Linux: fresh
// namespaces, a root file system the command cannot escape, no network, no
// capabilities, a seccomp filter, Landlock, and the limits of a control
// group of its own when asked for. It is stockade's API; the packages
// mount, cgroup and netns are its parts.
//
//	res, err := sandbox.New(sandbox.Config{Args: []string{"./submission"}}).Run(ctx)
//
// # Run, or Start and Wait
//
// A [Sandbox] is one sandbox and the command it runs. [New] makes one from
// a [Config]; it never fails and keeps its own copy of the config. As with
// os/exec, [Sandbox.Run] starts the sandbox and waits for it to end, and
// [Sandbox.Start] returns once the command runs, leaving the caller free
// to [Sandbox.Kill] it, read its [Sandbox.Stats], and [Sandbox.Wait] for
// its [Result]. A Sandbox runs once. The context given to Start or Run
// covers the whole run: when it is done, every process of the sandbox is
// killed and the Reason is Cancelled. When the command ends, everything
// else in the sandbox ends with it, and nothing is left on the host.
//
// # Long-lived sandboxes and Exec
//
// A Config without Args makes a sandbox with no command of its own: Start
// prepares it, [Sandbox.Exec] runs a [Cmd] in it and returns its Result
// (several at once if need be; they share the sandbox's namespaces, files,
// limits and defences), [Sandbox.CopyIn] and [Sandbox.CopyOut] move files
// in and out, and [Sandbox.Close] ends it. Exec works in a running sandbox
// that has a command too. A [Pool] keeps such sandboxes started and
// waiting: [Pool.Run] runs a Cmd in a fresh one at the cost of an Exec,
// then throws that sandbox away, so nothing crosses from one run to the
// next.
//
// # Config: secure when zero
//
// [Config] is plain data, and the zero value of every field is the safe
// choice: a Config holding only Args is ready for untrusted code. The
// command then runs as uid 1000, with a clean environment and only
// descriptors 0, 1 and 2, in new user, pid, mount, uts, ipc, network and
// cgroup namespaces; its root holds read-only binds of the host's /usr,
// /bin, /sbin and /lib*, a generated /etc, a minimal /dev, a private /proc
// with the paths that reveal the host masked, and small tmpfs for /tmp,
// /dev/shm and the working directory /work; only lo is up; it holds no
// capability, runs with no_new_privs, under the default seccomp policy
// (Docker's allow-list and stockade's denials) and Landlock (best effort);
// nothing is limited but core files. Whatever opens the sandbox up is a
// named field:
//
//   - RootDir (with WritableRoot) and Mounts: what it sees of the host.
//   - Stdin, Stdout, Stderr and ExtraFiles: what it is handed.
//   - RunAsRoot, UID and GID, IDMap, SubordinateIDs: whom it runs as. Root
//     inside is never host root and holds no capability.
//   - Network: a Link to the host, private Networks, forwarded Ports, or
//     ShareHost, which is no network isolation at all. See [Network].
//   - Security: capabilities kept, a seccomp policy or Docker profile in
//     place of the default, Landlock's strictness, a read-only /sys. See
//     [Security]; [Sandbox.Confinement] reports what was enforced.
//   - TimeNamespace and Hostname.
//
// [Config.Validate] checks a config without touching the system; Start
// calls it first, so a bad config never leaves anything behind.
//
// # Limits and verdicts
//
// [Limits] bound memory, swap, CPU bandwidth and weight, tasks, CPUs,
// I/O weight and CPU time through a control group of the sandbox's own,
// and output and the per-process rlimits without one; Config.Timeout
// bounds the wall time from Start. The [Result] says how the run ended,
// as a [Reason] (Exited, Signaled, Timeout, Cancelled, OOMKilled,
// CPUTimeLimit, OutputLimit, SeccompKilled, Closed) with the exit code or
// signal, and what it used: CPU time, peak memory and tasks, refused
// forks, OOM kills. The OOM verdict comes from the group's OOM counter,
// never from a SIGKILL alone. [Cleanup] removes what sandboxes of a
// process killed by SIGKILL left on the host; a service calls it when it
// starts.
//
// # Errors
//
// Errors are values to test with errors.Is and errors.As, never by their
// text:
//
//   - a [*ConfigError] names the bad field ("Mounts[2].Target") and matches
//     [ErrInvalidConfig]; it comes before anything is created;
//   - a [*FeatureError] names what this kernel or host lacks and matches
//     [ErrNotSupported];
//   - a [*SetupError] names the setup step that failed, in the parent or
//     inside the sandbox, and its errno (errors.Is(err, unix.ENOENT)), and
//     matches [ErrSetup], once Start has removed what it created;
//   - an [*ExitError] holds the Result of a run that started but did not
//     exit with status 0 (Wait, Run and Exec return the Result as well),
//     and unwraps to the context's error when the run was cancelled;
//   - [ErrStarted], [ErrNotStarted] and [ErrFinished] report a method of
//     a Sandbox called out of order, [ErrPoolClosed] a Run on a closed
//     Pool, and [ErrNoCgroup] Stats of a sandbox without a control group.
//
// # Probe and rootless use
//
// [Probe] reports what this host offers a sandbox started by this caller,
// feature by feature, and what would turn a missing one on: for a
// service's start-up check, or `stockade probe`. The same code runs as
// host root and as an ordinary user, through a user namespace that maps
// the caller's own ids (or, with SubordinateIDs, its ranges in
// /etc/subuid). What only root can do fails clearly for an ordinary user,
// never silently: limits need a cgroup delegated to it (Limits.CgroupParent)
// or Limits.BestEffort, else Start returns a *FeatureError; links, private
// networks and ports are a *ConfigError.
//
// # The init stage
//
// Go cannot run code between fork and exec, so each sandbox's setup runs
// in an init stage: this same program, re-executed from /proc/self/exe in
// the new namespaces, which builds the root, drops its privileges, starts
// the command and stays as the sandbox's pid 1. This package recognises
// that copy during its own package initialisation and runs the init there,
// so the program's main, and the init functions of the main package, never
// run inside a sandbox. Packages this package does not depend on may be
// initialised before it: keep their init functions free of side effects.
// The init stage counts against the sandbox's limits (a few MiB of memory,
// a few threads), and a larger program starts a little slower. When the
// process that owns a sandbox dies, even by SIGKILL, the sandbox dies with
// it.
//
// # The raw start path
//
// With STOCKADE_START=raw in the environment, a sandbox with a command
// starts without any Go runtime inside: its Config is compiled once into a
// program of raw system calls (mounts, pivot_root, ids, hostname, limits,
// capabilities, no_new_privs, Landlock, seccomp, execve), and each start
// is one clone3(CLONE_VM) of a child that runs that program on a small
// stack with an interpreter of a hundred instructions, and execs the
// command. The child shares the caller's memory only until that exec, so
// the caller's heap is never copied: a start costs the same in a program
// with a large heap. A sandbox without a command, a time namespace and
// subordinate ids still take the init stage, as every sandbox does on
// architectures other than amd64 and arm64. The raw path is not yet the
// default because of one difference that follows.
//
// On the raw path the command itself is pid 1 of its sandbox, and the
// caller supervises it from outside, through its pidfd: no process of the
// library lives inside, so nothing inside can be killed, crashed or
// overwritten to lie about the command's end, and nothing the library
// prints can reach the command's streams. The kernel gives a pid 1 only
// the signals it handles, so Kill delivers a signal the command would die
// of as SIGKILL and reports it as that signal; one it would stop on as
// SIGSTOP; one it ignores not at all. But a command that signals itself
// (kill $$, raise) without a handler is not ended, as pid 1 of any pid
// namespace is not; a small reaper as pid 1, in memory of its own, will
// remove that difference. Orphans of the command are reparented
// to it and are reaped, at the latest, when it exits and the kernel ends
// its pid namespace. Exec joins the sandbox through the pidfd of its pid 1
// and starts the process confined as the command was; it needs no agent
// inside either.
package sandbox
