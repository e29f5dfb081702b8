// Package sandbox runs untrusted commands in sandboxes on Linux: fresh
// namespaces, a root file system the command cannot escape, no network, no
// capabilities, a seccomp filter, Landlock, and the limits of a control
// group of its own when asked for.
//
//	res, err := sandbox.New(sandbox.Config{Args: []string{"./submission"}}).Run(ctx)
//
// As with os/exec, [New] makes a [Sandbox] from a [Config]; [Sandbox.Run]
// runs it, or [Sandbox.Start] returns once the command runs, to
// [Sandbox.Kill] it or read its [Sandbox.Stats] before [Sandbox.Wait]
// returns its [Result]; [Sandbox.Output] and the pipes work as in os/exec.
// When the command ends everything in the sandbox ends, and nothing is
// left on the host. A Config without Args makes a long-lived sandbox:
// [Sandbox.Exec] runs a [Cmd] in it, [Sandbox.CopyIn] and [Sandbox.CopyOut]
// move files, [Sandbox.Close] ends it, and a [Pool] keeps such sandboxes
// ready. [Config.TTY] gives the command a terminal. [Config.Overlay] makes
// the root an image's read-only layers and a writable upper layer of the
// sandbox's own, which [Sandbox.Upper] shows the owner until Close.
//
// A Config holding only Args is ready for untrusted code: the command runs
// as uid 1000 with a clean environment, in new user, pid, mount, uts, ipc,
// network and cgroup namespaces, on a root of read-only host /usr, /bin
// and /lib* with tmpfs /tmp and /work, with only lo, no capability, the
// default seccomp filter and Landlock. Root inside is never host root.
// Whatever opens it up is a named field; [Limits] bound what it uses.
//
// Errors are values for errors.Is and errors.As, the same in the packages
// cgroup, mount and netns: a [*ConfigError] names a bad field before
// anything exists, a [*FeatureError] what this host lacks, a [*SetupError]
// the step that failed, and an [*ExitError] holds the Result of a command
// that did not exit with status 0.
//
// [Probe] tells what this host offers the caller; [Cleanup] removes what
// sandboxes of a killed process left; Config.Logger and Config.Observer
// report starts and ends; package sandboxtest starts sandboxes in tests.
// The same code runs as root and as an ordinary user.
//
// A start runs a compiled program of raw system calls in a clone3'd child
// without a Go runtime, with a tiny reaper as pid 1. Where it cannot, the
// program re-executes itself as an init stage, which this package catches
// during its own initialisation, so main never runs in a sandbox (keep
// other packages' init functions free of side effects). Off Linux the
// package builds and returns errors matching ErrNotSupported. See
// docs/sandbox-internals.md.
package sandbox
