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
	sync.Mutex
	fd       int // -1 until made
	dev, ino uint64
}

func init() { memfd.fd = -1 }

// Open returns a close-on-exec descriptor of a sealed memfd that holds the
// reaper for this architecture, mode 0111, made once and kept open for the
// life of the process. A child execs it with execveat(fd, "", ...,
// AT_EMPTY_PATH).
//
// Each call checks that the descriptor still is that memfd: a double close
// elsewhere in the program may have closed it and its number been reused,
// and an exec of whatever the number names now would make that file pid 1
// of a sandbox. It then makes a new one (the old number is not ours any
// more and stays as it is).
func Open() (int, error) {
	memfd.Lock()
	defer memfd.Unlock()
	if memfd.fd >= 0 {
		var st unix.Stat_t
		if unix.Fstat(memfd.fd, &st) == nil && st.Dev == memfd.dev && st.Ino == memfd.ino {
			return memfd.fd, nil
		}
	}
	fd, err := create()
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("reaper: fstat: %w", err)
	}
	memfd.fd, memfd.dev, memfd.ino = fd, st.Dev, st.Ino
	return fd, nil
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
