// Package stockade runs untrusted code in isolated user space on Linux, as a
// library: a Go program imports it and writes
//
//	res, err := sandbox.New(sandbox.Config{Args: []string{"./submission"}}).Run(ctx)
//
// and the command runs in fresh namespaces, on a root file system it cannot
// escape, with no network, no capabilities and no_new_privs, and the call
// returns how it ended and what it used. Nothing is left behind on the host.
//
// # Packages
//
//   - [github.com/stockade/stockade/sandbox] is the API: Config, New,
//     Sandbox (Run, Start, Wait, Kill, Exec, Close), Pool, Result, Probe
//     and the errors. Start here.
//   - [github.com/stockade/stockade/sandbox/sandboxtest] starts a sandbox
//     for a go test, in the test's temporary directory.
//   - [github.com/stockade/stockade/mount] describes a root file system as a
//     plan of mounts and builds it inside a mount namespace.
//   - [github.com/stockade/stockade/cgroup] gives a sandbox its own control
//     group on cgroup v1 or v2: limits, figures, kill-all, clean-up.
//   - [github.com/stockade/stockade/netns] gives sandboxes their networks:
//     network namespaces held as descriptors, veth links to the host,
//     private networks, forwarded ports and a pool of ready namespaces.
//   - cmd/stockade is a command line over the same API (stockade run,
//     probe, version), with flags named as bwrap and nsjail users expect.
//   - bench, a module of its own so that this module needs no plotting
//     library, measures stockade side by side with bwrap, crun and runc.
//   - internal/initproc is the init stage that runs inside each sandbox;
//     internal/proto is what it and the parent say to each other;
//     internal/linux holds the capability, loopback and time namespace
//     primitives; internal/seccomp compiles system call policies to BPF in
//     pure Go and internal/landlock applies Landlock rules;
//     internal/testutil holds the test guards, internal/int80 the i386
//     system call the attack tests make, and internal/vmtest the tie to
//     CI's cgroup v2 VM. internal/unsupported is the error every package
//     returns on systems other than Linux, and internal/stubgen writes the
//     stubs that keep the public packages' API there (see the sandbox
//     package documentation, "Other systems").
//
// # How a sandbox starts
//
// Go cannot run code between fork and exec, so the library starts a second
// copy of the calling binary (the init stage) in new user, pid, mount, uts,
// ipc, network and cgroup namespaces. The sandbox package recognises that
// copy during package initialisation, before the program's main can run,
// and the copy never reaches main. Its configuration arrives over an
// inherited socket, never in argv or the environment. When the config has
// limits that need a control group, the group is created first and the init
// starts inside it (CLONE_INTO_CGROUP on cgroup v2; on v1 the parent moves it
// in while it waits for the go-ahead), so everything the sandbox runs is
// counted and limited; the init then makes the group the root of the
// sandbox's cgroup namespace. A sandbox with a link, private networks or
// forwarded ports is forked into a network namespace the parent prepared
// (taken from a pool of ready ones), and the parent makes its links while
// the init starts, before it lets the init go on. The init builds the
// root file system, sets the host name, brings up loopback, drops every
// capability and sets no_new_privs on a locked thread, starts the command
// from that thread, and stays as the sandbox's pid 1: it forwards signals,
// reaps orphans, and when the command ends it kills everything else and
// reports the exit status and CPU time.
//
// # Security model
//
// The sandbox defends the host against the code it runs; it does not
// defend that code against the host. The defaults, none of which needs a
// field to be set:
//
//   - Identity. A user namespace maps the sandbox's ids onto an
//     unprivileged host range. Host uid 0 is never mapped, so root inside
//     (only on request; the command runs as uid 1000 by default) owns no
//     host file and holds no capability over the host. Host root's
//     sandboxes each lease a range of their own from root's range, so
//     that two running sandboxes share no host id, and each sandbox's
//     user namespace is owned by a host id of its own, which the kernel
//     charges for what the sandbox holds (inotify instances, queued
//     signals, processes): never host root. An ordinary user's
//     sandbox maps the caller's own ids, or with SubordinateIDs its ranges
//     in /etc/subuid, and needs no root at all; sandbox.Probe says what
//     such a host offers.
//   - Privileges. The command starts with every capability set empty
//     (bounding, permitted, effective, inheritable, ambient), with
//     no_new_privs, in its own session, and with only descriptors 0, 1, 2
//     and the explicitly passed extra files; its working directory is
//     opened inside the root by handle, never by path.
//   - System calls. A seccomp filter, compiled once per policy in the
//     parent and loaded by the init with TSYNC, allows Docker's default
//     list, kills any call made through another ABI, and denies the
//     kernel surface a sandbox has no use for: keyrings, vsock, io_uring,
//     TIOCSTI and the other ioctls that would change the caller's terminal
//     for good (line discipline, termios, window size), userfaultfd, bpf, perf_event_open, kexec, the mount family,
//     unshare, setns and clone with namespace flags. A kill by the filter
//     is reported as its own Reason.
//   - Landlock. Where the kernel has it, the command may read and execute
//     only inside the sandbox's root and write only in its writable
//     mounts, so that even a descriptor of a host directory that reaches
//     it opens nothing; from ABI 4 it binds and connects no TCP port
//     unless named, and from ABI 6 it cannot reach an abstract unix socket
//     or signal a process outside. Best effort by default, strict on
//     request; Sandbox.Confinement says what was enforced.
//   - File system. An empty tmpfs root holds read-only binds of the host's
//     /usr, /bin, /sbin and /lib*, a generated /etc, a private /proc with
//     the host-revealing paths masked or read-only, a minimal /dev, and
//     size-limited tmpfs for /tmp and the working directory. The old root
//     is detached after pivot_root. Every mount is nosuid and (but for the
//     device nodes) nodev; mount targets are resolved inside the new root,
//     so a symbolic link cannot send a mount onto the host.
//   - Processes and network. A new pid namespace (the host's processes are
//     invisible and everything dies with the sandbox's init), a new network
//     namespace with only loopback, and new uts, ipc and cgroup namespaces.
//     Config.Network opens the network one named field at a time: a link to
//     the host that reaches only its gateway unless given the default
//     route, private networks whose members reach only each other,
//     forwarded host ports, and, not isolated at all, the host's network.
//     A network namespace prepared by the parent belongs to the host's
//     user namespace, so the sandbox holds no capability over it and
//     cannot change its addresses, routes or links.
//   - The host binary. The init re-executes the caller's binary, so it is
//     made non-dumpable before anything else runs: no process in the
//     sandbox can open /proc/1/exe, and the host ids that own the binary are
//     not mapped inside.
//   - Resources. Config.Limits bounds memory (swap off), CPU bandwidth,
//     tasks (a fork bomb stays inside), CPU time, output and the per-process
//     rlimits; core files are off by default. The Result says which limit
//     ended a run (the OOM verdict comes from the group's counter, never
//     from a SIGKILL alone) and what the sandbox used.
//   - Lifetime. When the command ends, everything in the sandbox ends. When
//     the owning process dies, even by SIGKILL, the init dies (parent-death
//     signal from a thread that never exits, and a closed socket) and takes
//     the sandbox with it.
//
// What runs inside still shares the host kernel: a kernel bug reachable
// from an unprivileged process is reachable from a sandbox.
//
// Each defence is proven by an attack that runs for real: the sandbox's
// tests build a small static attack program (sandbox/testdata/attack), run
// one attack per known escape class in a sandbox, check the errno of every
// step, and check the host afterwards.
package stockade
