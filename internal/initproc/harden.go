//go:build linux

package initproc

import (
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/landlock"
	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/seccomp"
)

// dropPrivileges prepares the calling (locked) thread so that every process
// forked from it starts with only the capabilities the Spec keeps (none by
// default) in any set, with no_new_privs, inside the Landlock domain and
// under the seccomp filter. The init's other threads keep their
// capabilities, which it needs to signal and reap the sandbox's processes,
// but are filtered too; they are outside the Landlock domain, which only
// the forking thread needs.
func (s *stage) dropPrivileges() error {
	spec := s.spec
	if err := linux.CloseOnExecFrom(proto.InitFD); err != nil {
		return step("close-fds", "", err)
	}
	if err := linux.DropBoundingSet(spec.Caps); err != nil {
		return step("capabilities", "", err)
	}
	// The kept capabilities are inheritable so that a command that is not
	// root can get them as ambient ones (see ambientCaps).
	if err := linux.SetInheritable(spec.Caps); err != nil {
		return step("capabilities", "", err)
	}
	if !spec.NewPrivs {
		// Without it, the init's capabilities (CAP_SYS_ADMIN in the
		// sandbox's user namespace) allow the domain and the filter.
		if err := linux.SetNoNewPrivs(); err != nil {
			return step("no-new-privs", "", err)
		}
	}
	if spec.Umask >= 0 {
		// The init's own: it creates no file from here on, and every
		// process it forks inherits it.
		unix.Umask(spec.Umask)
	}
	if spec.Landlock != nil {
		// Before seccomp, which may deny the Landlock calls.
		if err := landlock.Apply(spec.Landlock); err != nil {
			if spec.LandlockStrict {
				return step("landlock", "", err)
			}
			s.landlockNote = err.Error()
		} else {
			s.landlocked = true
		}
	}
	if len(spec.Seccomp) > 0 {
		// The very last step: from here on the init itself is filtered too.
		var f seccomp.Filter
		if err := f.UnmarshalBinary(spec.Seccomp); err != nil {
			return step("seccomp", "", err)
		}
		flags := seccomp.FlagTSync
		if spec.NewPrivs {
			flags |= seccomp.FlagPrivileged
		}
		if err := seccomp.Load(&f, flags); err != nil {
			return step("seccomp", "", err)
		}
	}
	return nil
}

// ambientCaps returns the capabilities a process forked to run as uid gets
// as ambient ones: the kept ones. A process that is not root has no
// other way to keep them across execve; root gets them anyway, and holds
// them as ambient ones too, as an OCI spec's root does.
func (s *stage) ambientCaps(uid int) []uintptr {
	if len(s.spec.Caps) == 0 {
		return nil
	}
	caps := make([]uintptr, len(s.spec.Caps))
	for i, c := range s.spec.Caps {
		caps[i] = uintptr(c)
	}
	return caps
}

// enterDir makes dir, resolved inside the sandbox's root without following
// a link out of it or a magic link (/proc/self/fd/N) anywhere, the init's
// working directory, which a process forked next inherits. Resolving it by
// handle here, rather than letting the child chdir by path, leaves no
// window in which a process of the sandbox could swap a component for a
// link to a directory of the host (runc CVE-2024-21626).
func enterDir(dir string) error {
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchdir(fd)
}
