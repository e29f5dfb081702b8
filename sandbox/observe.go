//go:build linux

package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ID returns the sandbox's id in this process, as in its log records.
func (s *Sandbox) ID() uint64 { return s.seq }

// Pid returns the host pid of the sandbox's pid 1, in its namespaces (for
// /proc/PID/ns and hooks), while the sandbox runs; else 0.
func (s *Sandbox) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runningLocked() != nil {
		return 0
	}
	pid, _ := s.pid1Locked()
	return pid
}

// sandboxIDs hands out the ids of sandboxes.
var sandboxIDs atomic.Uint64

// failedStage names the step of a failed Start, for Event.Stage.
func failedStage(err error) string {
	var se *SetupError
	var ce *ConfigError
	var fe *FeatureError
	switch {
	case errors.As(err, &se):
		return se.Stage
	case errors.As(err, &ce):
		return "config"
	case errors.As(err, &fe):
		return "feature"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "context"
	}
	return "other"
}

// startEvent is the event of a Start that ended with err. The caller
// holds s.mu.
func (s *Sandbox) startEvent(err error) Event {
	if err != nil {
		return Event{Kind: EventStartFailed, Sandbox: s.seq, Stage: failedStage(err), Err: err}
	}
	return Event{Kind: EventStarted, Sandbox: s.seq, Latency: time.Duration(s.times.ready - s.times.begin)}
}

// observe passes ev to the Config's Observer, if any.
func (s *Sandbox) observe(ev Event) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.Observe(ev)
	}
}

// ended logs the end of the sandbox and tells the Observer, once res and
// err are final and before Wait returns them.
func (s *Sandbox) ended(res *Result, err error) {
	if logger := s.cfg.Logger; logger != nil {
		logger.LogAttrs(context.Background(), slog.LevelInfo, "sandbox ended", endAttrs(res, err)...)
	}
	s.observe(Event{Kind: EventEnded, Sandbox: s.seq, Result: res, Err: err})
}

// endAttrs describes how a sandbox ended, for its log record.
func endAttrs(res *Result, err error) []slog.Attr {
	var ee *ExitError
	var attrs []slog.Attr
	if res != nil {
		attrs = append(attrs, slog.String("reason", res.Reason.String()))
		if res.ExitCode >= 0 {
			attrs = append(attrs, slog.Int("exitCode", res.ExitCode))
		}
		if res.Signal != 0 {
			attrs = append(attrs, slog.String("signal", unix.SignalName(res.Signal)))
		}
		attrs = append(attrs,
			slog.Duration("wall", res.Wall),
			slog.Duration("user", res.UserTime),
			slog.Duration("system", res.SystemTime),
			slog.Int64("maxRSS", res.MaxRSS))
		if res.MemoryPeak > 0 {
			attrs = append(attrs, slog.Int64("memoryPeak", res.MemoryPeak))
		}
		if res.PidsPeak > 0 {
			attrs = append(attrs, slog.Int64("pidsPeak", res.PidsPeak))
		}
	}
	if err != nil && !errors.As(err, &ee) {
		attrs = append(attrs, slog.Any("err", err))
	}
	return attrs
}
