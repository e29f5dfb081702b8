// Package reaper is pid 1 of a sandbox started on the raw path: a static
// program of about seventy instructions per architecture, with no libc and
// no runtime, that the sandbox's first process execs from a sealed memfd
// once the command is started.
//
// Why a separate pid 1. The kernel gives the init of a pid namespace only
// the signals it has a handler for, so a command that is pid 1 itself
// cannot end itself with kill(getpid(), SIGTERM), nor be stopped by a
// default SIGTSTP, and no outside supervisor can make it behave as an
// ordinary process. The first process of the sandbox shares the owner's
// memory (it is a CLONE_VM child) and may live only until its execve, so
// pid 1 must be a program of its own; this one needs no file in the
// sandbox's root, holds no secret and starts in well under a millisecond.
//
// What it does. It blocks SIGCHLD, catches it with an empty handler, and
// reaps every child with wait4(WNOHANG), sleeping in rt_sigsuspend between
// rounds. With an argument, a pid in decimal, it watches that child: the
// command, pid 2, which the first process cloned before it exec'd the
// reaper:
// when the command is reaped, it writes the command's wait status and
// rusage to descriptor 3 in one write (the Report layout) and exits, which
// ends every other process of the sandbox. With no argument (a sandbox
// that runs processes only through Exec) it reaps orphans until killed.
//
// Confinement. Before the exec, the first process drops every capability
// from all sets and the bounding set, sets no_new_privs and installs
// Filter, an allow-list of the seven system calls the reaper makes. The
// memfd is mode 0111: the reaper can execute but not read it, so the
// kernel makes its memory non-dumpable from the first instruction, and no
// process of the sandbox without CAP_SYS_PTRACE can ptrace it, read its
// memory or take its descriptors. Nothing it does writes to the command's
// streams: its only descriptor besides the report pipe is the command's
// pidfd, which the owner copies with pidfd_getfd to signal the command.
//
// The machine code is in src, one file per architecture; go generate
// assembles it into zcode.go with llvm-mc.
package reaper

//go:generate go run gen.go
