//go:build linux

package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The helpers in this file talk to cgroupfs with raw open, read, write and
// close calls. os.OpenFile would add a failed attempt to register every file
// with the network poller, and the start path writes a dozen files.

// writeFile writes data to the existing cgroupfs file path. It never
// creates files: cgroupfs refuses that anyway, and a missing file must show
// up as ENOENT so callers can tell that the kernel lacks the knob.
//
// A write that makes the kernel reclaim memory (a lower memory limit) fails
// with EINTR when a signal arrives meanwhile, and the Go runtime sends its
// threads SIGURG to preempt goroutines, so EINTR is retried here.
func writeFile(path, data string) error {
	fd, err := open(path, unix.O_WRONLY)
	if err != nil {
		return err
	}
	for {
		_, err = unix.Write(fd, []byte(data))
		if err != unix.EINTR {
			break
		}
	}
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", data, path, err)
	}
	return nil
}

// open opens path with flags and O_CLOEXEC, retrying on EINTR.
func open(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
		if err == nil {
			return fd, nil
		}
		if err != unix.EINTR {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
	}
}

// readFile reads a whole cgroupfs file. Most cgroup files are a few bytes,
// so a small buffer serves the common case in one read.
func readFile(path string) ([]byte, error) {
	fd, err := open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var small [512]byte
	buf := small[:]
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return bytes.Clone(buf[:n]), nil
}

// readUint reads a file holding one unsigned number, or "max" (returned as
// the largest uint64).
func readUint(path string) (uint64, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return ^uint64(0), nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

// readKeys reads a flat-keyed file ("key value" per line, as memory.events,
// pids.events, cpu.stat and memory.oom_control are) and returns the values
// of the keys asked for. Keys that the file lacks are left at zero.
func readKeys(path string, keys map[string]*uint64) error {
	b, err := readFile(path)
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if dst, want := keys[k]; want {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return fmt.Errorf("parse %s: key %s: %w", path, k, err)
			}
			*dst = n
		}
	}
	return nil
}

// readPids returns the process ids listed in a cgroup.procs file.
func readPids(path string) ([]int, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// exists reports whether path exists. Errors other than ENOENT count as
// existing so that a later open reports them.
func exists(path string) bool {
	err := unix.Access(path, unix.F_OK)
	return !errors.Is(err, unix.ENOENT)
}

// mkdir creates a cgroup directory. It reports whether it created the
// directory (false when it already existed).
func mkdir(path string) (bool, error) {
	err := unix.Mkdir(path, 0o755)
	for err == unix.EINTR {
		err = unix.Mkdir(path, 0o755)
	}
	if err == nil {
		return true, nil
	}
	if err == unix.EEXIST {
		return false, nil
	}
	return false, &os.PathError{Op: "mkdir", Path: path, Err: err}
}

// durationNS converts nanoseconds to a Duration, saturating.
func durationNS(ns uint64) time.Duration {
	if ns > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}
