//go:build linux

package landlock

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ABI returns the Landlock ABI version of the running kernel, or 0 when it
// has no Landlock or has it disabled. It asks the kernel once.
func ABI() int { return abi() }

var abi = sync.OnceValue(func() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
})

// ruleNetPort is LANDLOCK_RULE_NET_PORT, which x/sys/unix lacks.
const ruleNetPort = 2

// netPortAttr is struct landlock_net_port_attr, which x/sys/unix lacks.
type netPortAttr struct {
	allowedAccess uint64
	port          uint64
}

// attrSize returns the size of struct landlock_ruleset_attr to pass for
// r: the kernel refuses a struct larger than it knows unless the extra
// fields are zero, and an older kernel knows fewer fields.
func attrSize(r *Ruleset) uintptr {
	switch {
	case r.Scoped != 0:
		return 24
	case r.HandledNet != 0:
		return 16
	}
	return 8
}

// Apply enforces r on the calling thread, which must be locked to its
// goroutine and must have set no_new_privs (or hold CAP_SYS_ADMIN in its
// user namespace). Every process the thread forks afterwards inherits the
// domain. r must already suit this kernel (see ForABI). A rule whose path
// does not exist, or leads out of the root, is skipped (see addPath).
func Apply(r *Ruleset) error {
	attr := unix.LandlockRulesetAttr{
		Handled_access_fs:  r.HandledFS,
		Handled_access_net: r.HandledNet,
		Scoped:             r.Scoped,
	}
	fd, _, errno := unix.RawSyscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), attrSize(r), 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer unix.Close(int(fd))
	if len(r.Paths) > 0 {
		root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("landlock: open /: %w", err)
		}
		defer unix.Close(root)
		for _, p := range r.Paths {
			if err := addPath(int(fd), root, p); err != nil {
				return err
			}
		}
	}
	for _, p := range r.Ports {
		a := netPortAttr{allowedAccess: p.Access, port: uint64(p.Port)}
		_, _, errno := unix.RawSyscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, ruleNetPort, uintptr(unsafe.Pointer(&a)), 0, 0, 0)
		if errno != 0 {
			return fmt.Errorf("landlock_add_rule: port %d: %w", p.Port, errno)
		}
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}

// addPath adds the rule p, with its path resolved beneath root without
// leaving it and without magic links (/proc/self/fd/N), so that a link
// planted in a writable part of the sandbox cannot send a rule to a
// descriptor the init holds. A path that cannot be resolved that way, or
// does not exist, gets no rule: a rule only ever allows, so leaving one
// out denies, and a planted link must not make Apply fail, which in best
// effort would leave the sandbox without any Landlock domain.
func addPath(rulesetFD, root int, p PathRule) error {
	fd, err := unix.Openat2(root, p.Path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	access := p.Access
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("landlock: stat %s: %w", p.Path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// The kernel refuses directory rights on a file.
		access &= FileRights
	}
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
	_, _, errno := unix.RawSyscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rulesetFD), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("landlock_add_rule: %s: %w", p.Path, errno)
	}
	return nil
}
