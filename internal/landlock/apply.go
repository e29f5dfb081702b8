package landlock

import (
	"errors"
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
// does not exist is skipped, since there is nothing there to allow.
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
	for _, p := range r.Paths {
		if err := addPath(int(fd), p); err != nil {
			return err
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

func addPath(rulesetFD int, p PathRule) error {
	fd, err := unix.Open(p.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("landlock: open %s: %w", p.Path, err)
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
