// Package sandbox runs untrusted commands in sandboxes on Linux: fresh
// namespaces, a root file system the command cannot escape, no network, no
// capabilities, a seccomp filter, Landlock, and a control group's limits.
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
// ready. [Config.TTY] and [Cmd.TTY] give terminals; [Config.Overlay] makes
// the root an image's layers under an upper layer ([Sandbox.Upper]).
//
// A Config holding only Args is ready for untrusted code: the command runs
// as uid 1000 with a clean environment, in new user, pid, mount, uts, ipc,
// network and cgroup namespaces, on a root of read-only host /usr, /bin
// and /lib* with tmpfs /tmp and /work, with only lo, no capability, the
// default seccomp filter and Landlock. Root inside is never host root.
// Whatever opens it up is a named field. [Limits] cap its tasks, memory
// and copied output by default, and bound the rest when asked. Writes in
// a writable Bind [Mount] land on the host as its source's owner's, but a
// source of root's is bound as it is unless [Mount.Owner] names root.
//
// Errors suit errors.Is and errors.As, as in cgroup, mount and netns: a
// [*ConfigError] names a bad field before anything exists, a [*FeatureError]
// what the host lacks, a [*SetupError] a failed step, an [*ExitError] a
// failed run's Result.
//
// [Probe] tells what this host offers; [Cleanup] clears what killed owners
// left; Config.Logger and Config.Observer report starts and ends; package
// sandboxtest serves tests. It works as root or as an ordinary user. A start
// runs raw syscalls in a clone3'd child with a tiny reaper as pid 1, or
// an init stage (main never runs in a sandbox; keep other packages' init
// functions free of side effects): see docs/sandbox-internals.md. Off Linux,
// calls return ErrNotSupported.
package sandbox
