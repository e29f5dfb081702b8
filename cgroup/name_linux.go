package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// self is the calling process as an owner, read once.
var self = sync.OnceValues(func() (owner, error) {
	o := owner{pid: os.Getpid()}
	var err error
	if o.start, err = startTime(o.pid); err != nil {
		return o, err
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return o, fmt.Errorf("stat own pid namespace: %w", err)
	}
	o.pidNS = st.Ino
	return o, nil
})

var sequence atomic.Uint64

// newName returns a fresh group name owned by the calling process.
func newName() (string, error) {
	o, err := self()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%d-%d-%d-%d", namePrefix, o.pid, o.start, o.pidNS, sequence.Add(1)), nil
}

// alive reports whether the owner still runs. It can only judge owners in
// the caller's pid namespace; for others it returns true, so that Cleanup
// never removes a group whose owner it cannot see.
func (o owner) alive(me owner) bool {
	if o.pidNS != me.pidNS {
		return true
	}
	start, err := startTime(o.pid)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return false
	}
	if err != nil {
		return true // unreadable: assume alive rather than kill a stranger's group
	}
	return start == o.start
}

// startTime returns the start time of process pid in clock ticks after
// boot.
func startTime(pid int) (uint64, error) {
	b, err := readFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses itself; the fields after the last ')' are plain.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 (starttime) is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: start time: %w", pid, err)
	}
	return v, nil
}
