// Package oci reads and writes OCI runtime-spec configurations (a bundle's
// config.json, github.com/opencontainers/runtime-spec) as sandbox Configs.
//
//	cfg, err := oci.Load("bundle")      // bundle/config.json, rootfs relative to it
//	res, err := sandbox.New(cfg).Run(ctx)
//
// [FromSpec] maps a spec to a [sandbox.Config], [Load] reads one from a
// bundle first, and [ToSpec] describes a Config as a spec. The runtime
// command line (create, start, state, kill, delete) is not here: it is
// cmd/stockade's, which runs the hooks and uses this package for the rest.
//
// # Strict mapping
//
// A spec is a request, and the sandbox is stricter than an OCI runtime in
// ways it never relaxes: it always has its own user, pid, mount, uts, ipc
// and cgroup namespaces, nosuid and nodev mounts, no mount propagation
// to or from the host, its own /proc, /dev and /tmp, and the paths of /proc
// that reveal the host masked. So every field of a spec either maps to a
// Config field, or is ignored for a reason given below (it asks for less
// than the sandbox does anyway, or it is a label for an LSM the sandbox
// does not use), or is refused: FromSpec then fails with a
// *sandbox.ConfigError whose Field is the spec path
// ("linux.resources.memory.swap", "mounts[2].options[1]",
// "linux.seccomp.syscalls[3].names[2]"), one per refused field, so that
// errors.As finds the first and errors.Is(err, sandbox.ErrInvalidConfig)
// matches. Nothing asked for is dropped silently. A mapped Config is then
// checked with Config.Validate, whose error is reported under the spec path
// its field came from.
//
// The configs that `runc spec` and `crun spec` write are refused for one
// field, which a user edits as for any non-interactive run: process.terminal
// is true (set it to false). `runc spec --rootless` writes a spec without a network
// namespace that binds the host's /sys, which the sandbox refuses (it mounts
// a sysfs of its own network namespace; remove the mount), and maps the
// caller's id onto root, which, written by host root, is refused too
// (linux.uidMappings[0].hostID).
//
// # Round trips
//
// FromSpec(ToSpec(FromSpec(spec))) is FromSpec(spec): a Config made from a
// spec survives the trip through a spec, and every field of a spec that
// maps keeps its meaning. ToSpec fills in the defaults of a zero Config
// (Dir /work, Hostname sandbox, uid and gid 1000, DefaultEnv) and refuses
// the Config fields a spec cannot express (Timeout, Limits.CPUTime,
// Limits.Output, Limits.CgroupParent without a CgroupName, Limits.BestEffort, SubordinateIDs,
// TmpfsSize, TmpfsInodes, Network.Link, Networks, Ports and DNS, Landlock
// settings, SeccompProfile, SeccompExtend, a Config without
// RootDir); the parent-only fields and WaitDelay are the runtime caller's
// and are left out.
//
// # Every field, and what happens to it
//
// Top level:
//
//	ociVersion                    ignored: the fields are checked one by one, whatever version the spec claims
//	root.path                     RootDir (relative to the bundle directory); with no user namespace in
//	                              linux.namespaces and a runtime run by host root, RootIDMap too: the root's
//	                              files keep their on-disk ids inside, as when runc runs the spec as host root
//	                              (on ext4, xfs, btrfs, f2fs, and tmpfs from Linux 6.3; an overlayfs root, as
//	                              containerd's snapshots are, cannot be idmapped and is used as it is)
//	root.readonly                 WritableRoot = !readonly
//	hostname                      Hostname; empty: "sandbox" (an empty hostname keeps the host's in an OCI
//	                              runtime; the sandbox never shows it)
//	domainname                    refused if set: the sandbox sets no NIS domain name
//	mounts                        see Mounts below
//	hooks                         refused if any of prestart, createRuntime, createContainer, startContainer,
//	                              poststart, poststop is set: hooks are run by a runtime command, which this
//	                              package is not (run them around the sandbox, as stockade create does)
//	annotations                   ignored: they are information for tools, by the spec's own definition
//	solaris, windows, vm, zos, freebsd   refused if set: the configuration of another platform
//
// Process:
//
//	process                       refused if absent: the sandbox runs a command
//	process.terminal              TTY: a terminal of the sandbox's own (Sandbox.Terminal is its master)
//	process.consoleSize           TTY.Rows and TTY.Cols (height and width); ignored without a terminal
//	process.args                  Args (refused if empty)
//	process.commandLine           refused if set: Windows
//	process.env                   Env, as it is: an empty env is an empty environment, not DefaultEnv, and no
//	                              HOME is added (runc adds one from the root's /etc/passwd)
//	process.cwd                   Dir. In a spec the working directory is a directory of the root file system; the
//	                              sandbox mounts a fresh tmpfs on Dir (but "/") unless a mount targets it, so FromSpec adds a bind of
//	                              the directory onto itself (from the root file system, or from the bind that holds
//	                              it; read-only with a read-only root; with RootIDMap idmapped as the root), or,
//	                              below a tmpfs, an explicit tmpfs. The directory must exist (runc makes it)
//	process.user.uid, gid         0 and 0: RunAsRoot; otherwise UID and GID (refused: uid 0 with another gid, or
//	                              gid 0 with another uid)
//	process.user.umask            Umask (refused beyond 0777)
//	process.user.additionalGids   Groups (host root only: an ordinary user's sandbox cannot call setgroups)
//	process.user.username         refused if set: Windows
//	process.capabilities          Security.Capabilities = bounding. Refused unless effective and permitted equal
//	                              bounding, and inheritable and ambient are empty or equal to it; for a command
//	                              that is not root, ambient must list them (the sandbox keeps them across execve).
//	                              Absent: none, as the sandbox keeps none by default
//	process.rlimits[i]            RLIMIT_NOFILE, FSIZE, STACK, CORE, AS, NPROC, CPU, DATA: hard to Limits.Rlimits.NoFile,
//	                              FileSize, Stack, Core, AddressSpace, Processes, CPU, Data (RLIM_INFINITY:
//	                              Unlimited), a soft limit below it to the same field of Limits.SoftRlimits;
//	                              refused: other types, soft above hard, 0 but for RLIMIT_CORE, a repeated type,
//	                              an unlimited RLIMIT_CPU. No RLIMIT_CORE means none: the sandbox writes no core file
//	process.noNewPrivileges       Security.AllowNewPrivileges = !noNewPrivileges (every mount is nosuid all the same)
//	process.apparmorProfile       ignored: the sandbox uses no AppArmor profile; its confinement is its
//	                              namespaces, seccomp and Landlock
//	process.selinuxLabel          ignored: likewise for SELinux
//	process.oomScoreAdj           Limits.OOMScoreAdj (the command's and its children's; 0 leaves the runtime's)
//	process.scheduler             refused if set
//	process.ioPriority            refused if set
//	process.execCPUAffinity       refused if set: use linux.resources.cpu.cpus
//
// Mounts (mounts[i]):
//
//	/proc proc, /dev tmpfs,       the sandbox's own mounts, always there with its own options, which the
//	/dev/pts devpts,              entry's options do not change (/dev holds null, zero, full, random, urandom,
//	/dev/shm tmpfs                tty, pts and ptmx; /dev/shm is a tmpfs of 64 MiB)
//	/sys sysfs, or a bind of /sys Security.Sysfs: a fresh read-only sysfs of the sandbox's own network
//	                              namespace, firmware and powercap masked; refused without "ro", and without a
//	                              network namespace (the sandbox cannot mount a sysfs of the host's)
//	/dev/mqueue mqueue            Mqueue: the message queue file system of the sandbox's own IPC namespace
//	                              (always nosuid, nodev, noexec)
//	/sys/fs/cgroup cgroup         ignored: the sandbox mounts no cgroup file system
//	type bind, or option          Mounts entry, mount.Bind: source (relative to the bundle), destination,
//	bind or rbind                 Writable unless "ro" (a spec's bind is read-write by default); always recursive
//	type tmpfs                    Mounts entry, mount.Tmpfs: size= (k, m, g; absent: 64 MiB, never unbounded),
//	                              nr_inodes=, mode=, uid=, gid=, ro; source, unless "tmpfs", to Source (the
//	                              name the mount table shows; the sandbox's own mounts show proc, tmpfs,
//	                              devpts, shm, mqueue and sysfs, as runc's do)
//	options                       nosuid, nodev, exec, defaults, rw, ro, bind, rbind and the access time options
//	                              map or are ignored (the sandbox's mounts are always nosuid and nodev); a bind's
//	                              size=, nr_inodes=, mode=, uid= and gid= are ignored (mount(2) takes no data for
//	                              a bind: runc and crun pass them and the kernel drops them); refused: noexec,
//	                              suid, dev, and anything else
//	propagation options           Propagation, of the entry's own mount (the last option counts): shared and
//	                              rshared: "shared", a peer group of the sandbox's own, which nothing of
//	                              the host's joins; unbindable, runbindable: "unbindable"; private,
//	                              rprivate: private; slave, rslave: private too, for the sandbox takes no mount
//	                              events from the host (a slave of the host's mount would receive its mounts
//	                              with the host's attributes, past the read-only, nosuid, nodev and idmapping
//	                              set on the bind); mountinfo then shows the mount private. The r- forms
//	                              act on the entry's own mount only: the mounts beneath stay private
//	other types                   refused: the sandbox's Config mounts binds and tmpfs
//	uidMappings, gidMappings      refused if set: no id-mapped mounts
//	(not in a spec)               the sandbox also mounts a tmpfs of 64 MiB on /tmp, below a spec's mounts
//
// Linux:
//
//	linux.namespaces              pid, ipc, uts and mount must be listed (refused otherwise: the sandbox cannot
//	                              share the host's); network absent: Network.ShareHost; time: TimeNamespace;
//	                              user and cgroup: the sandbox always creates them, listed or not (without a user
//	                              namespace a spec means root inside is host root, which the sandbox never
//	                              allows: its processes keep unprivileged host ids, and for host root only the
//	                              files of root.path keep their owners, RootIDMap; a cgroup namespace only hides
//	                              the host's cgroup paths)
//	linux.namespaces[i].path      of the network namespace: Network.Join (host root; no /sys mount nor net.*
//	                              sysctl, and network capabilities do not apply there: the namespace is not the
//	                              sandbox's own); of any other, refused: the sandbox creates those and joins none
//	linux.uidMappings,            IDMap{HostUID: hostID, HostGID: hostID, Size: size}: one range each, with
//	linux.gidMappings             containerID 0, of one size; refused otherwise, and for host id 0. An ordinary
//	                              user's own ids, one each, are the sandbox's default for that user, so IDMap
//	                              stays zero
//	linux.timeOffsets             refused if set: the sandbox's time namespace starts its clocks near zero
//	linux.sysctl                  Sysctl: written in the sandbox's own namespaces before its /proc/sys is made
//	                              read-only; refused but for those of its network (net.*, with a network
//	                              namespace) and IPC namespaces (kernel.msg*, sem, shm*, fs.mqueue.*)
//	linux.devices[i]              ignored for null, zero, full, random, urandom and tty with their usual numbers
//	                              (always in /dev); any other, a Node of Config.Mounts (type c or u, b, p;
//	                              fileMode's permission bits, 0666 by default; uid, gid), after the spec's mounts;
//	                              refused unless the runtime is host root. Device rules allow it unless one
//	                              names it, as runc does
//	linux.netDevices              refused if set
//	linux.cgroupsPath             Limits.CgroupParent and CgroupName: the sandbox's group is made at that path when
//	                              it starts (absolute: from each hierarchy's root; relative: below the runtime's
//	                              own group), and must not exist; refused: the systemd driver's slice:prefix:name
//	linux.rootfsPropagation       RootPropagation, of the root's own mount, as the propagation options map:
//	                              shared and unbindable (and their r- forms) are honoured inside the sandbox;
//	                              "", private, slave and their r- forms leave it private; refused otherwise
//	linux.maskedPaths             the sandbox masks /proc/acpi, asound, kcore, kallsyms, keys, latency_stats,
//	                              timer_list, timer_stats, sched_debug and scsi, and, with Security.Sysfs,
//	                              /sys/firmware and /sys/devices/virtual/powercap, whatever the spec lists;
//	                              a listed path outside that set becomes a mount.Mask entry of Mounts, after the
//	                              spec's mounts (paths under /sys are fine without a /sys)
//	linux.readonlyPaths           likewise: /proc/bus, fs, irq, sys, sysrq-trigger, and every masked path; others
//	                              become mount.ReadOnly entries
//	linux.mountLabel              ignored: the sandbox uses no SELinux labels
//	linux.intelRdt                refused if set
//	linux.memoryPolicy            refused if set: use linux.resources.cpu.mems
//	linux.personality             refused if set
//
// Resources (linux.resources):
//
//	memory.limit                  Limits.Memory; -1: Unlimited (DefaultMemory lifted); 0 or unset: the sandbox's default
//	memory.swap                   Limits.Swap = swap - limit (the spec counts memory and swap together);
//	                              -1 or absent: SwapUnlimited, as runc and crun leave swap alone; refused
//	                              below limit, or without a limit
//	memory.reservation, kernel, kernelTCP, swappiness, useHierarchy, disableOOMKiller (true),
//	checkBeforeUpdate (true)      refused if set
//	cpu.shares                    Limits.CPUWeight = shares × 100 / 1024, rounded, at least 1 (the inverse of
//	                              the sandbox's weight × 1024 / 100 on cgroup v1, so 1024 is the default 100)
//	cpu.quota, cpu.period         Limits.CPU = quota / period (0 or -1: none), Limits.CPUPeriod = period µs
//	                              (absent or 100000: the default); the period must be 1000 to 1000000 µs,
//	                              as the kernel takes; a period without a quota limits nothing and is ignored
//	cpu.cpus, cpu.mems            Limits.CPUs, Limits.Mems
//	cpu.burst, idle               refused if set
//	cpu.realtimeRuntime, realtimePeriod   ignored: the sandbox gives its group no real-time budget, so where
//	                              the kernel schedules real-time tasks by group (RT_GROUP_SCHED) none of its
//	                              processes can take a real-time policy; elsewhere the kernel has no budget
//	                              per group to set
//	pids.limit                    Limits.Pids; -1: Unlimited (DefaultPids lifted); 0 or unset: the sandbox's default
//	blockIO.weight                Limits.IOWeight = 1 + (weight - 10) × 9999 / 990, rounded, as runc and crun
//	                              convert it for cgroup v2
//	blockIO.leafWeight, weightDevice, throttleReadBpsDevice, throttleWriteBpsDevice, throttleReadIOPSDevice,
//	throttleWriteIOPSDevice       refused if set: the sandbox sets one I/O weight for all devices
//	devices                       Limits.Devices, in order (type absent: a; major, minor absent: any; access
//	                              absent: rwm), on cgroup v1 as host root; the sandbox then allows its own /dev.
//	                              Ignored when it is a lone rule that denies every device, on cgroup v2 and for
//	                              an ordinary user: no rule changes what the sandbox's processes can open, the
//	                              nodes of its /dev and of linux.devices (which runc allows whatever the rules
//	                              say), since its root and mounts are nodev and no node can be made in its
//	                              user namespace
//	hugepageLimits, network, rdma, unified   refused if set
//
// Seccomp (linux.seccomp):
//
//	absent                        the sandbox's default policy (Docker's allow-list and stockade's denials):
//	                              the sandbox never runs without a filter unless asked
//	defaultAction ALLOW, no syscalls   Security.SeccompUnconfined
//	otherwise                     Security.Seccomp, the spec's policy itself (runtime-spec's type)
//	defaultAction, action         SCMP_ACT_ALLOW, ERRNO, KILL_PROCESS, LOG;
//	                              refused: SCMP_ACT_KILL and KILL_THREAD (the sandbox kills the whole process),
//	                              TRAP, TRACE, NOTIFY
//	defaultErrnoRet, errnoRet     absent: EPERM, as in runc
//	architectures                 ignored: the sandbox's filter admits the native ABI only and kills a call
//	                              made through another (i386 or x32 on amd64)
//	flags                         SECCOMP_FILTER_FLAG_TSYNC ignored (the filter is installed before the
//	                              command starts a thread); the others refused
//	listenerPath, listenerMetadata   refused if set
//	syscalls[i].names             a name the sandbox does not know is refused by Validate
//	                              under linux.seccomp.syscalls[i].names[j] (libseccomp-based runtimes skip it)
//	syscalls[i].args[j]           index, op (SCMP_CMP_EQ, NE, LT, LE, GT, GE, MASKED_EQ);
//	                              for MASKED_EQ, value is the mask and valueTwo the value, as in libseccomp
//
// When several rules match a call, the sandbox's filter takes the most
// restrictive action (kill, then errno, then log, then allow), whatever
// their order.
package oci
