//go:build linux

package sandbox

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
)

// socketPair returns the two ends of a SOCK_SEQPACKET socket pair, both
// close-on-exec. The child's end reaches the init only as an ExtraFile.
// The parent's end is non-blocking, so that as an *os.File it goes through
// the runtime's poller and has deadlines.
func socketPair() (parent, child int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return -1, -1, err
	}
	return fds[0], fds[1], nil
}

// send writes m as one packet.
func send(c *os.File, m proto.Message) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

// writeFiles writes the encoded message b on the socket c, with fds as
// SCM_RIGHTS, packed into a memory file when it is too long for a packet
// (see proto.Pack). It waits while the socket is full, until c's write
// deadline.
func writeFiles(c *os.File, b []byte, fds []int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return packed(b, fds, func(pkt, oob []byte) error {
		var sendErr error
		err := rc.Write(func(fd uintptr) bool {
			sendErr = unix.Sendmsg(int(fd), pkt, oob, nil, unix.MSG_NOSIGNAL)
			return sendErr != unix.EAGAIN
		})
		if err != nil {
			return err
		}
		return sendErr
	})
}

// packed packs the encoded message b (see proto.Pack) and has write send
// the packet and its descriptors, fds after the memory file if there is
// one.
func packed(b []byte, fds []int, write func(pkt, oob []byte) error) error {
	pkt, mfd, err := proto.Pack(b)
	if err != nil {
		return err
	}
	if mfd >= 0 {
		defer unix.Close(mfd) // the packet holds its own reference
		fds = append([]int{mfd}, fds...)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	return write(pkt, oob)
}

// maxReport bounds the size of a report from the init.
const maxReport = 64 << 10

func (s *Sandbox) readReport() (*proto.Report, error) {
	rep, fds, err := s.readReportFiles()
	closeFDs(fds)
	return rep, err
}

// readReportFiles reads a report and the descriptors that came with it.
func (s *Sandbox) readReportFiles() (*proto.Report, []int, error) {
	buf := make([]byte, maxReport)
	n, fds, err := readPacket(s.conn, buf)
	if errors.Is(err, unix.ECONNRESET) {
		// The init exited with requests of ours unread (a Close or an Exec
		// racing its end). The kernel says so once, ahead of the reports
		// it sent before, which are still queued.
		n, fds, err = readPacket(s.conn, buf)
	}
	rep, err := decodeReport(buf, n, err)
	if err != nil {
		closeFDs(fds)
		return nil, nil, err
	}
	return rep, fds, nil
}

func decodeReport(buf []byte, n int, err error) (*proto.Report, error) {
	if errors.Is(err, io.EOF) || err == nil && n == 0 {
		return nil, proto.ErrClosed
	}
	if err != nil {
		return nil, err // a deadline, say: readLoop tells them apart
	}
	var rep proto.Report
	if err := rep.UnmarshalBinary(buf[:n]); err != nil {
		return nil, err
	}
	return &rep, nil
}

// startTimes are the CLOCK_MONOTONIC readings of one start: the parent's
// own and the init's marks.
type startTimes struct {
	begin, prepared, forked, ready int64
	init                           []int64 // see proto.Mark
	// cgroup is what the sandbox's control group cost the calling process
	// (create, limit, place, kill, remove), spread over the stages.
	cgroup time.Duration
	// netPrepare is how long preparing the sandbox's managed network
	// took, netLinks how long making its links took while the init
	// started, and netDone when that ended; see network.
	netPrepare, netLinks time.Duration
	netDone              int64
}

// stage is one timed step of a start.
type stage struct {
	name string
	d    time.Duration
}

// stages splits a start into its steps; see proto.Mark for the init's.
func (t *startTimes) stages() []stage {
	st := []stage{
		{"prepare", time.Duration(t.prepared - t.begin)},
		{"fork", time.Duration(t.forked - t.prepared)},
	}
	if len(t.init) == int(proto.NumMarks) {
		m := t.init
		st = append(st,
			stage{"boot", time.Duration(m[proto.MarkEntry] - t.forked)},
			stage{"spec", time.Duration(m[proto.MarkSpec] - m[proto.MarkEntry])},
			stage{"mounts", time.Duration(m[proto.MarkMounts] - m[proto.MarkSpec])},
			stage{"system", time.Duration(m[proto.MarkSystem] - m[proto.MarkMounts])},
			stage{"go", time.Duration(m[proto.MarkGo] - m[proto.MarkSystem])},
			stage{"place", time.Duration(m[proto.MarkPlaced] - m[proto.MarkGo])},
			stage{"confine", time.Duration(m[proto.MarkConfined] - m[proto.MarkPlaced])},
			stage{"exec", time.Duration(m[proto.MarkStarted] - m[proto.MarkConfined])},
			stage{"report", time.Duration(t.ready - m[proto.MarkStarted])},
		)
	}
	st = append(st, stage{"total", time.Duration(t.ready - t.begin)})
	if t.cgroup > 0 {
		st = append(st, stage{"cgroup", t.cgroup})
	}
	if t.netDone > 0 {
		st = append(st, stage{"network", t.network()}, stage{"network-links", t.netLinks})
	}
	return st
}

func (s *Sandbox) logStages(cfg Config) {
	if cfg.Logger == nil {
		return
	}
	path := "init"
	if s.raw != nil {
		path = "raw"
	}
	attrs := []any{slog.String("path", path)}
	for _, st := range s.times.stages() {
		attrs = append(attrs, slog.Duration(st.name, st.d))
	}
	cfg.Logger.Debug("sandbox started", attrs...)
}
