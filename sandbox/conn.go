package sandbox

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
)

// socketPair returns the two ends of a SOCK_SEQPACKET socket pair, both
// close-on-exec. The child's end reaches the init only as an ExtraFile.
func socketPair() (parent, child int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	return fds[0], fds[1], nil
}

// fileConn wraps the parent's end in a *net.UnixConn, which gives it
// deadlines through the runtime's poller. It takes ownership of fd.
func fileConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "stockade-control")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("control socket is not a unix socket")
	}
	return uc, nil
}

func send(c *net.UnixConn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

// maxReport bounds the size of a report from the init.
const maxReport = 64 << 10

func (s *Sandbox) readReport() (*proto.Report, error) {
	buf := make([]byte, maxReport)
	n, err := s.conn.Read(buf)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, proto.ErrClosed
	}
	var rep proto.Report
	if err := proto.Decode(buf[:n], &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// stageNames name the init's timed stages, in the order it reports them.
var stageNames = []string{"namespaces", "mounts", "system", "exec"}

func (s *Sandbox) logStages(cfg Config, rep *proto.Report) {
	if cfg.Logger == nil {
		return
	}
	attrs := []any{slog.Duration("start", time.Since(s.start))}
	for i, ns := range rep.StageNanos {
		if i < len(stageNames) {
			attrs = append(attrs, slog.Duration(stageNames[i], time.Duration(ns)))
		}
	}
	cfg.Logger.Debug("sandbox started", attrs...)
}
