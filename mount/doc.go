// Package mount describes a sandbox's root file system as a plan and builds
// it inside a new mount namespace.
//
// A [Plan] is plain data: a root (an empty tmpfs or a host directory) and an
// ordered list of [Mount] entries (bind mounts of host paths, tmpfs, procfs,
// devpts, directories, files, symbolic links, and masked or read-only paths).
// The parent process builds and validates the plan; the sandbox's init stage
// calls [Apply], which makes the whole tree private, clones every host source
// while the host tree is still in view, assembles the new root entirely
// through file descriptors (open_tree, fsopen, move_mount, mount_setattr),
// and ends with pivot_root, the old root detached, and the shared or
// unbindable [Propagation] the plan asks for, in peer groups of its own.
// The mount table lists the entries in the plan's order: a bind placed
// after a mount the plan makes is cloned again where it is placed, since
// Linux lists mounts in the order they were made.
//
// Every target is resolved inside the new root with openat2 and
// RESOLVE_IN_ROOT, so a symbolic link inside a given root directory can never
// send a mount onto the host; read-only mounts are made read-only before
// they are attached, so there is no window in which they are writable; every
// mount is nosuid and, except the device nodes of /dev, nodev.
//
// Apply must run in a process that owns its mount namespace and holds
// CAP_SYS_ADMIN in it, normally a fresh user namespace. It needs Linux 5.12
// (mount_setattr) and openat2 (5.6).
//
// On systems other than Linux a Plan can be built and validated as on
// Linux; Apply, CloneRoot, CloneSource and MakeNodes return an error matching
// sandbox.ErrNotSupported.
package mount
