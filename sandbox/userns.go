//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Hosts that forbid user namespaces, wholly or to ordinary users, do it
// with one of three settings. When a sandbox cannot get its user
// namespace, the error names the one in force and how to change it.
const (
	maxUserNSFile        = "/proc/sys/user/max_user_namespaces"
	unprivCloneFile      = "/proc/sys/kernel/unprivileged_userns_clone"
	apparmorRestrictFile = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
)

// userNSSettings are the values of those settings; -1 means the kernel
// has no such setting (or it could not be read).
type userNSSettings struct {
	maxUserNS        int // user.max_user_namespaces
	unprivClone      int // kernel.unprivileged_userns_clone (Debian and older Ubuntu kernels)
	apparmorRestrict int // kernel.apparmor_restrict_unprivileged_userns (Ubuntu 23.10 and later)
}

func readUserNSSettings() userNSSettings {
	read := func(file string) int {
		b, err := os.ReadFile(file)
		if err != nil {
			return -1
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return -1
		}
		return n
	}
	return userNSSettings{
		maxUserNS:        read(maxUserNSFile),
		unprivClone:      read(unprivCloneFile),
		apparmorRestrict: read(apparmorRestrictFile),
	}
}

// diagnose returns a *FeatureError naming the setting that keeps the
// caller (host root or not) from a working user namespace, or nil when
// none does. errno is the kernel's answer to the attempt, 0 when there
// was none: ENOSPC from clone means a count limit, EPERM or EACCES a
// refusal, which a seccomp filter or security module of a container can
// also cause when no setting explains it.
func (s userNSSettings) diagnose(root bool, errno unix.Errno) error {
	fail := func(format string, args ...any) error {
		err := fmt.Errorf(format, args...)
		if errno != 0 {
			err = fmt.Errorf("%w (%s)", err, unix.ErrnoName(errno))
		}
		return &FeatureError{Feature: "user namespaces", Err: err}
	}
	switch {
	case s.maxUserNS == 0:
		return fail("the sysctl user.max_user_namespaces is 0, which forbids them: " +
			"raise it with sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d to keep it); " +
			"inside a user namespace the limit is that namespace's, set by its owner")
	case errno == unix.ENOSPC || errno == unix.EUSERS:
		return fail("the limit user.max_user_namespaces (%d here) is reached, or namespaces nest more than 32 deep: "+
			"end other sandboxes or raise it with sysctl -w user.max_user_namespaces=N", s.maxUserNS)
	case !root && s.unprivClone == 0:
		return fail("the sysctl kernel.unprivileged_userns_clone is 0, which forbids them to ordinary users: " +
			"enable it with sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d to keep it), or run as root")
	case !root && s.apparmorRestrict == 1 && (errno == 0 || errno == unix.EPERM || errno == unix.EACCES):
		return fail("the sysctl kernel.apparmor_restrict_unprivileged_userns is 1, so AppArmor denies capabilities " +
			"in the user namespaces of programs without a profile that allows them: give this program a profile " +
			"with a \"userns,\" rule in /etc/apparmor.d, or set sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or run as root")
	case errno == unix.EPERM || errno == unix.EACCES:
		return fail("creating one was refused although no sysctl forbids it: a seccomp filter or security module " +
			"around this process does (container runtimes' default seccomp profiles do; run the container with a " +
			"profile that allows clone(CLONE_NEWUSER) and unshare), or the process runs in a chroot")
	}
	return nil
}

// startError is the error of a failed start of the init: a *FeatureError
// when the kernel refused the user namespace, else a *SetupError.
func startError(path string, err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ENOSPC, unix.EUSERS, unix.EPERM, unix.EACCES:
			if fe := readUserNSSettings().diagnose(os.Geteuid() == 0, errno); fe != nil {
				return joinCause(fe, err)
			}
		}
	}
	return setupErr("start", path, err)
}

// deniedInside returns a *FeatureError when the first privileged setup
// step inside the sandbox failed with EPERM or EACCES because the host
// keeps an ordinary user's namespaces without capabilities (AppArmor's
// restriction: the clone succeeds, the first mount fails); nil otherwise.
func deniedInside(stage string, errno unix.Errno, s userNSSettings, root bool) error {
	if root || s.apparmorRestrict != 1 || (stage != "make-private" && stage != "time-namespace") {
		return nil
	}
	if errno != unix.EPERM && errno != unix.EACCES {
		return nil
	}
	fe := s.diagnose(false, errno)
	if fe == nil {
		return nil
	}
	return joinCause(fe, fmt.Errorf("setup step %s failed", stage))
}

// joinCause adds cause to the *FeatureError fe, so that errors.Is finds
// the errno too.
func joinCause(fe error, cause error) error {
	f := fe.(*FeatureError)
	f.Err = fmt.Errorf("%w: %w", f.Err, cause)
	return f
}
