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
// The helpers of os/exec work on the same terms: [Sandbox.Output] and
// [Sandbox.CombinedOutput] run the command and return what it printed
// (the [*ExitError] of a failure holds its standard error), and
// [Sandbox.StdinPipe], [Sandbox.StdoutPipe] and [Sandbox.StderrPipe],
// asked for before Start, connect its streams; Wait closes them.
//
// # Long-lived sandboxes and Exec
//
// A Config without Args makes a sandbox with no command of its own: Start
// prepares it, [Sandbox.Exec] runs a [Cmd] in it and returns its Result
// (several at once if need be; they share the sandbox's namespaces, files,
// limits and defences), [Sandbox.CopyIn] and [Sandbox.CopyOut] move files
// in and out, and [Sandbox.Close] ends it. Exec works in a running sandbox
// that has a command too. [Sandbox.Command] makes a Cmd with the methods
// of os/exec's: Start and Wait, Run, Output, CombinedOutput and the pipes.
// A [Pool] keeps such sandboxes started and
// waiting: [Pool.Run] runs a Cmd in a fresh one at the cost of an Exec,
// then throws that sandbox away, so nothing crosses from one run to the
// next.
//
// # Terminals
//
// [Config.TTY] gives the command a pseudo-terminal as its standard input,
// output and error and as the controlling terminal of its own session, of
// the size the [TTY] says. The caller holds the other end, the master,
// from [Sandbox.Terminal]: it reads what the command writes and writes
// what is typed, and the terminal's line discipline turns Ctrl-C and
// Ctrl-Z into SIGINT and SIGTSTP for the foreground job, so a shell's job
// control works as in any terminal. [Sandbox.Resize] sets the size, and
// the kernel sends SIGWINCH to the foreground job. Wait leaves the master
// open, so that the command's last output can still be read (a read then
// ends with EIO); Close closes it, and closing it earlier hangs the
// terminal up (SIGHUP to the command's session). "stockade run -t" is
// built on this.
//
// The terminal is a pty of the sandbox's own devpts, the new instance the
// sandbox mounts at /dev/pts, never one of the host's /dev/ptmx: a host
// pty would put a file of the host's devpts instance in the sandbox,
// with the host's numbering of terminals, and a name that does not exist
// inside. In the sandbox's instance the command's terminal is /dev/pts/0,
// alone, and it ends with the sandbox. The pty is opened inside the new
// root, unlocked, sized, and its peer (TIOCGPTPEER) handed to the command
// with setsid and TIOCSCTTY, owned by the command's ids as login makes
// it. The master never passes through a process the command can control.
// On the raw path the command's own process, in the plan it runs before
// its exec, after its setsid and before its confinement, opens the pty
// and sends the master to the caller over a socket pair (SCM_RIGHTS); the
// master is close-on-exec and closed before the exec, and until then no
// code of the command's runs, and no process of the sandbox's but the
// first, which becomes the reaper. Pid 1, the
// reaper, never holds it, so its seccomp allow-list is unchanged. On the
// init stage the init opens the pty after the mounts, before it drops its
// privileges, gives the peer to the command as it forks it, sends the
// master with its Started report and closes both. Either way the caller
// holds the only master.
//
// Stdin, Stdout and Stderr must be nil with a terminal, and Limits.Output,
// which counts them, unset: the caller reads the terminal itself. The
// default seccomp filter lets the command use its terminal as programs
// expect: TCGETS and TCSETS* (line editing, stty, vi's raw mode),
// TIOCGPGRP and TIOCSPGRP (a shell gives the terminal to its jobs),
// TIOCGWINSZ, and, on the init stage, where the command's fork sets its
// controlling terminal under the filter, TIOCSCTTY; TIOCSTI, which types
// into a terminal's input, stays denied. [Cmd] has no terminal yet: Exec
// returns only once the process has ended, so the master would need
// another way out to the caller first.
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
// text. The packages cgroup, mount and netns return the same family: their
// ErrNotSupported, ErrInvalidConfig, ConfigError and FeatureError are
// these.
//
//   - a [*ConfigError] names the bad field ("Mounts[2].Target") and matches
//     [ErrInvalidConfig]; it comes before anything is created;
//   - a [*FeatureError] names what this kernel or host lacks, and the Linux
//     release that brings it, and matches [ErrNotSupported]; a limit whose
//     cgroup controller is missing is a *ConfigError holding one;
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
// # Logs and metrics
//
// [Config.Logger] gets a debug record when a sandbox has started, with the
// duration of every setup stage, and an info record when it has ended,
// with its verdict and figures, each with the sandbox's id.
// [Config.Observer] is told the same as [Event] values, for a service's
// counters and histograms (expvar, Prometheus): starts and their latency,
// failed starts by stage, ends by Reason.
//
// # Tests
//
// Package [github.com/stockade/stockade/sandbox/sandboxtest] starts a
// sandbox for a go test, with the test's t.TempDir() as its writable
// working directory, ends it with the test, adds its standard error and
// verdict to a failure, and skips on a host that lacks a feature.
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
// # How a sandbox starts
//
// A Config is compiled once into a program of raw system calls (mounts,
// pivot_root, ids, hostname, limits, capabilities, no_new_privs, Landlock,
// seccomp, execve), and each start is one clone3(CLONE_VM) of a child that
// runs that program with an interpreter of a hundred instructions: no Go
// runtime starts in any process of the sandbox, and the caller's memory is
// never copied, so a start costs the same in a program with a large heap.
// A child that shares the caller's memory lives only until its execve.
//
// The first child builds the sandbox, then clones the command (pid 2),
// which confines itself and execs; the first child then drops every
// capability, installs a seccomp filter of nine system calls and execs the
// reaper, a static program of sixty instructions held in a sealed memfd,
// which is pid 1 for the rest of the sandbox's life. It reaps orphans and,
// when the command ends, writes its wait status and resource use to the
// caller on a pipe and exits, which ends every other process inside. Why a
// separate pid 1: the kernel gives the init of a pid namespace only the
// signals it has a handler for, so a command that is pid 1 cannot end
// itself with kill $$ or be stopped by a default SIGTSTP. Why not a Go
// init: it costs a runtime per sandbox, pids pressure can kill it, and
// root inside with a kept CAP_SYS_PTRACE can take it over; the reaper's
// memory is its own, unreadable and non-dumpable from its first
// instruction, holds nothing of the caller's, and prints nothing.
//
// The caller supervises both from outside, through their pidfds: Kill
// signals the command (SIGKILL ends pid 1, and so the whole sandbox),
// Close and the limits kill pid 1. Exec joins the sandbox's namespaces
// through the pidfd of pid 1 and starts the process confined as the
// command was, with the caller as its parent; it needs no agent inside.
// A sandbox without a command runs only the reaper until Close.
//
// Making a network namespace is the largest single cost left in a start
// (the kernel sets up every protocol's state in it, and tears it down
// again after the sandbox). Network.ReuseNamespace, an opt-in whose cost
// in isolation its documentation states, lets sandboxes without a network
// take turns in namespaces instead. STOCKADE_NETNS_POOL=1 makes a program
// that runs as root keep a few fresh namespaces ready, made by an
// idle-priority thread, for hosts with CPUs to spare; it is off by
// default, since on two CPUs it saved no time (see the README).
//
// # The init stage
//
// Every sandbox on an architecture other than amd64 and arm64 or where
// memfds may not be executed (vm.memfd_noexec=2), and every sandbox when
// STOCKADE_START=init is set in the environment, starts through the init
// stage instead: this same program, re-executed from /proc/self/exe in
// the new namespaces, which builds the root, drops its privileges, starts
// the command and stays as the sandbox's pid 1. This package recognises
// that copy during its own package initialisation and runs the init there,
// so the program's main, and the init functions of the main package, never
// run inside a sandbox. Packages this package does not depend on may be
// initialised before it: keep their init functions free of side effects.
// The init stage counts against the sandbox's limits (a few MiB of memory,
// a few threads), and a larger program starts a little slower. When the
// process that owns a sandbox dies, even by SIGKILL, the sandbox dies with
// it, on either path.
//
// # Other systems
//
// Sandboxes need Linux, but the package builds on every system, with the
// same API, so that a program that embeds it compiles on macOS or Windows
// and its other tests run there. Off Linux no sandbox starts: Start, Run,
// Exec, NewPool, Cleanup and the rest return a [*FeatureError] matching
// [ErrNotSupported] that names the method and the system; [New] still
// never fails; [Probe] reports every feature unavailable, with the reason;
// [Config.Validate] checks the fields that need no kernel (Args, Env, Dir,
// Hostname, ids, paths, mounts) as on Linux and then returns an error
// matching ErrNotSupported. The packages cgroup, mount and netns do the
// same. The code that needs Linux is in files built for Linux only; the
// other systems get stubs (zstubs_other.go) that internal/stubgen
// generates from those files, and CI builds and vets the module for
// darwin and windows.
package sandbox
