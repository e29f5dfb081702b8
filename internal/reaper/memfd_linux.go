package reaper

import (
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// MinFD is the lowest number Open's descriptor takes, above those the
// first process of a sandbox dups onto.
const MinFD = 10

var memfd struct {
	once sync.Once
	fd   int
	err  error
}

// Open returns a close-on-exec descriptor of a sealed memfd that holds the
// reaper for this architecture, mode 0111, made once per process and kept
// open for its life. A child execs it with execveat(fd, "", ...,
// AT_EMPTY_PATH).
func Open() (int, error) {
	memfd.once.Do(func() { memfd.fd, memfd.err = create() })
	return memfd.fd, memfd.err
}

func create() (int, error) {
	prog, err := Program(runtime.GOARCH)
	if err != nil {
		return -1, err
	}
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate("stockade-reaper", flags|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// A kernel before 6.3 knows no MFD_EXEC: every memfd is executable.
		fd, err = unix.MemfdCreate("stockade-reaper", flags)
	}
	if err != nil {
		return -1, fmt.Errorf("reaper: memfd_create: %w", err)
	}
	fail := func(op string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("reaper: %s: %w", op, err)
	}
	if n, err := unix.Write(fd, prog); err != nil || n != len(prog) {
		if err == nil {
			err = fmt.Errorf("short write of %d bytes", n)
		}
		return fail("write", err)
	}
	// Executable, readable by nobody: the exec makes the reaper's memory
	// non-dumpable.
	if err := unix.Fchmod(fd, 0o111); err != nil {
		return fail("fchmod", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fail("seal", err)
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, MinFD)
	if err != nil {
		return fail("dup", err)
	}
	unix.Close(fd)
	return high, nil
}
