//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// CopyIn copies host file src to dst inside, as its user; no link leads out.
func (s *Sandbox) CopyIn(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("stockade: copy in: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("stockade: copy in: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("stockade: copy in %s: not a regular file", src)
	}
	out, err := s.openInside(dst, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, uint32(fi.Mode().Perm()))
	if err != nil {
		return err
	}
	defer out.Close()
	// As the command user too: a file a process of the sandbox made
	// writable to that user, but does not let it chmod, keeps its mode.
	if err := s.asSandboxUser(func() error { return out.Chmod(fi.Mode().Perm()) }); err != nil {
		return fmt.Errorf("stockade: copy in %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("stockade: copy in %s: %w", dst, err)
	}
	return out.Close()
}

// CopyOut copies src inside to host file dst, as its user; no link leads out.
func (s *Sandbox) CopyOut(src, dst string) error {
	in, err := s.openInside(src, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return fmt.Errorf("stockade: copy out: %w", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("stockade: copy out %s: not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("stockade: copy out: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("stockade: copy out %s: %w", src, err)
	}
	return out.Close()
}

// openInside opens name inside the running sandbox's root: through the
// init's /proc/PID/root, with every component resolved inside that root
// and no magic link followed, and a check on the init's pidfd afterwards
// that the pid was still the init's when the root was opened. It opens
// with the rights of the sandbox's command user (see asSandboxUser), never
// the caller's: host root would otherwise read for the sandbox what a link
// it planted points at.
func (s *Sandbox) openInside(name string, flags int, mode uint32) (*os.File, error) {
	s.mu.Lock()
	if err := s.runningLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	pid, pidfd := s.pid1Locked()
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil && unix.PidfdSendSignal(pidfd, 0, nil, 0) != nil {
		unix.Close(root)
		err = ErrFinished
	}
	s.mu.Unlock()
	if err != nil {
		if errors.Is(err, ErrFinished) {
			return nil, err
		}
		return nil, fmt.Errorf("stockade: open the sandbox's root: %w", err)
	}
	defer unix.Close(root)
	var fd int
	open := func() error {
		// O_NONBLOCK: a FIFO that a process in the sandbox put there
		// must not hold the caller in open(2) until someone writes to it;
		// a regular file, the only kind copied, ignores the flag.
		fd, err = unix.Openat2(root, name, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK),
			Mode:    uint64(mode),
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		return err
	}
	if err := s.asSandboxUser(open); err != nil {
		return nil, fmt.Errorf("stockade: open %s in the sandbox: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// pid1Locked returns the pid and pidfd of the sandbox's pid 1: the init,
// or on the raw path the reaper. s.mu is held.
func (s *Sandbox) pid1Locked() (pid, pidfd int) {
	if s.raw != nil {
		return s.raw.pid, s.raw.pidfd
	}
	return s.cmd.Process.Pid, s.pidfd
}

// asSandboxUser runs f on a locked thread whose file-system ids are those
// of the sandbox's command user on the host, with no supplementary groups.
// A file system mounted in the sandbox's user namespace refuses to create
// a file for an id that is not mapped there (EOVERFLOW), which host root
// is not; and acting as the command's user gives the copy that user's
// rights and no more (a fsuid other than 0 drops the file capabilities,
// and host root's groups would open files of those groups). An ordinary
// caller's own ids are already the command's.
func (s *Sandbox) asSandboxUser(f func() error) error {
	if os.Geteuid() != 0 {
		return f()
	}
	cfg := s.cfg.withDefaults()
	uid, gid := s.id.hostIDs(cfg.UID, cfg.GID)
	if uid < 0 || gid < 0 {
		return fmt.Errorf("the command's ids %d:%d are not mapped", cfg.UID, cfg.GID)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The raw system calls change this thread's credentials only.
		groups, err := unix.Getgroups()
		if err == nil {
			err = unix.Setgroups(nil)
		}
		if err != nil {
			// Nothing changed yet.
			runtime.UnlockOSThread()
			done <- fmt.Errorf("drop the caller's groups: %w", err)
			return
		}
		unix.SetfsgidRetGid(gid)
		unix.SetfsuidRetUid(uid)
		err = f()
		unix.SetfsuidRetUid(0)
		unix.SetfsgidRetGid(0)
		// setfs*id(-1) changes nothing and returns the current id.
		fsuid, _ := unix.SetfsuidRetUid(-1)
		fsgid, _ := unix.SetfsgidRetGid(-1)
		restored := unix.Setgroups(groups) == nil
		if now, gerr := unix.Getgroups(); gerr != nil || !slices.Equal(now, groups) {
			restored = false
		}
		if fsuid == 0 && fsgid == 0 && restored {
			runtime.UnlockOSThread()
		} // else: the goroutine exits locked, and the runtime ends the thread
		done <- err
	}()
	return <-done
}
