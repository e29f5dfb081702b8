// Package sandbox runs untrusted commands in sandboxes on Linux: fresh
// namespaces, a root file system the command cannot escape, no network, no
// capabilities, a seccomp filter, Landlock, and the limits of a control
// group of its own when asked for. The packages mount, cgroup and netns
// are its parts.
//
//	res, err := sandbox.New(sandbox.Config{Args: []string{"./submission"}}).Run(ctx)
//
// # Run, or Start and Wait
//
// As with os/exec, [New] makes a [Sandbox] from a [Config] and never
// fails; [Sandbox.Run] starts it and waits, [Sandbox.Start] returns once
// the command runs, leaving the caller free to [Sandbox.Kill] it, read its
// [Sandbox.Stats] and [Sandbox.Wait] for its [Result]. [Sandbox.Output],
// [Sandbox.CombinedOutput] and the pipes work as in os/exec. A Sandbox runs
// once; the context covers the whole run, and when the command ends
// everything else in the sandbox ends with it. Nothing is left on the host.
//
// A Config without Args makes a long-lived sandbox: Start prepares it,
// [Sandbox.Exec] (or [Sandbox.Command]) runs a [Cmd] in it,
// [Sandbox.CopyIn] and [Sandbox.CopyOut] move files, and [Sandbox.Close]
// ends it. A [Pool] keeps such sandboxes ready and runs each Cmd in a fresh
// one. [Config.TTY] gives the command a terminal of the sandbox's own
// devpts, whose master the caller reads and writes ([Sandbox.Terminal]).
//
// # Secure when zero
//
// A Config holding only Args is ready for untrusted code: the command runs
// as uid 1000 with a clean environment and descriptors 0 to 2 only, in new
// user, pid, mount, uts, ipc, network and cgroup namespaces, on a root of
// read-only host /usr, /bin and /lib* with tmpfs /tmp and /work, only lo
// up, no capability, no_new_privs, the default seccomp filter and Landlock.
// Whatever opens it up is a named field: Mounts and RootDir, ExtraFiles,
// RunAsRoot and IDMap, [Network], [Security]. Root inside is never host
// root. [Limits] bound memory, CPU, tasks, CPU time and output; the Result
// says how the run ended (a [Reason]) and what it used.
//
// # Errors
//
// Errors are values for errors.Is and errors.As. A [*ConfigError] names
// the bad field and matches [ErrInvalidConfig], before anything is
// created; a [*FeatureError] names what this host lacks and matches
// [ErrNotSupported]; a [*SetupError] names the failed setup step and
// matches [ErrSetup]; an [*ExitError] holds the Result of a command that
// did not exit with status 0. The packages cgroup, mount and netns return
// the same sentinels and types.
//
// # Operating it
//
// [Config.Logger] and [Config.Observer] report starts, with the cost of
// each stage, and ends. [Probe] reports what this host offers the caller,
// and why a feature is off. [Cleanup] removes what the sandboxes of a
// process killed by SIGKILL left behind; call it when a service starts.
// The same code runs as root and as an ordinary user, through a user
// namespace; what only root can do fails clearly. Package sandboxtest
// starts sandboxes in go tests.
//
// # How it starts
//
// A Config is compiled into a program of raw system calls that a clone3'd
// child runs with no Go runtime; a tiny reaper is pid 1. Where that cannot
// run (STOCKADE_START=init, or memfds may not be executed) the program
// re-executes itself as an init stage, which this package recognises
// during its own initialisation, so the program's main never runs inside
// a sandbox: keep the init functions of other packages free of side
// effects. Off Linux the package builds with the same API, and what needs
// the kernel returns an error matching ErrNotSupported. The details are in
// docs/sandbox-internals.md.
package sandbox
