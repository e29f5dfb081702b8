package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// procWatch follows the host's process events (the kernel's proc
// connector: a netlink multicast of every fork, exec and exit, with the
// kernel's timestamp) and keeps the execs whose command line holds a
// marker, with their exits: the runtime calls of the ctr rows, whose
// command lines name the harness's scratch directory. It costs the
// processes it watches nothing: the kernel sends the events whether
// anyone listens or not.
type procWatch struct {
	fd     int
	marker string
	done   chan struct{}
	ending atomic.Bool

	mu     sync.Mutex
	execs  []procExec
	byPid  map[int]int // pid -> index in execs, until its exit
	missed bool        // the socket's buffer overflowed: events are missing
}

// procExec is a process that exec'd a command line with the marker: when
// (CLOCK_MONOTONIC, ns) and, once it ended, when it ended.
type procExec struct {
	pid       int
	args      []string
	exec, end int64
}

const (
	cnIdxProc          = 1
	cnValProc          = 1
	procCnMcastListen  = 1
	procCnMcastIgnore  = 2
	procEventExec      = 0x00000002
	procEventExit      = 0x80000000
	cnMsgLen           = 20 // struct cn_msg without its data
	procEventHeaderLen = 16 // what, cpu, timestamp_ns
)

// watchProcs subscribes to the process events.
func watchProcs(marker string) (*procWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("proc connector: %w", err)
	}
	w := &procWatch{fd: fd, marker: marker, done: make(chan struct{}), byPid: map[int]int{}}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("proc connector: bind: %w", err)
	}
	// A busy host forks a lot: room for a burst while this reads.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	// Reads wake up now and then to see whether to stop.
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000})
	if err := w.control(procCnMcastListen); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("proc connector: listen: %w", err)
	}
	go w.read()
	return w, nil
}

// control sends op (listen or ignore) to the proc connector.
func (w *procWatch) control(op uint32) error {
	msg := make([]byte, unix.NLMSG_HDRLEN+cnMsgLen+4)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.NLMSG_DONE)
	cn := msg[unix.NLMSG_HDRLEN:]
	binary.NativeEndian.PutUint32(cn[0:], cnIdxProc)
	binary.NativeEndian.PutUint32(cn[4:], cnValProc)
	binary.NativeEndian.PutUint16(cn[16:], 4)
	binary.NativeEndian.PutUint32(cn[cnMsgLen:], op)
	return unix.Sendto(w.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

func (w *procWatch) read() {
	defer close(w.done)
	buf := make([]byte, 1<<16)
	for !w.ending.Load() {
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			w.mu.Lock()
			w.missed = true
			w.mu.Unlock()
			continue
		case err != nil:
			return
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				break
			}
			if l >= unix.NLMSG_HDRLEN+cnMsgLen+procEventHeaderLen+8 {
				w.event(b[unix.NLMSG_HDRLEN+cnMsgLen : l])
			}
			b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		}
	}
}

// event records an exec of a command line with the marker, and the exit
// of such a process (of its last thread: pid == tgid).
func (w *procWatch) event(ev []byte) {
	what := binary.NativeEndian.Uint32(ev[0:])
	ts := int64(binary.NativeEndian.Uint64(ev[8:]))
	data := ev[procEventHeaderLen:]
	pid, tgid := int(binary.NativeEndian.Uint32(data[0:])), int(binary.NativeEndian.Uint32(data[4:]))
	switch what {
	case procEventExec:
		cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", tgid))
		if err != nil || !strings.Contains(string(cl), w.marker) {
			return
		}
		args := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		w.mu.Lock()
		w.byPid[tgid] = len(w.execs)
		w.execs = append(w.execs, procExec{pid: tgid, args: args, exec: ts})
		w.mu.Unlock()
	case procEventExit:
		if pid != tgid {
			return
		}
		w.mu.Lock()
		if i, ok := w.byPid[tgid]; ok {
			w.execs[i].end = ts
			delete(w.byPid, tgid)
		}
		w.mu.Unlock()
	}
}

// between returns the execs that began in [from, to] (CLOCK_MONOTONIC,
// ns), and whether events may be missing.
func (w *procWatch) between(from, to int64) ([]procExec, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []procExec
	for _, e := range w.execs {
		if e.exec >= from && e.exec <= to {
			out = append(out, e)
		}
	}
	return out, w.missed
}

// stop ends the subscription.
func (w *procWatch) stop() {
	w.control(procCnMcastIgnore)
	w.ending.Store(true)
	select {
	case <-w.done:
		unix.Close(w.fd)
	case <-time.After(time.Second):
		// The reader is stuck: leave it the fd, which it may still use.
	}
}

// monotonicNow is CLOCK_MONOTONIC in ns, the clock of the events'
// timestamps.
func monotonicNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
