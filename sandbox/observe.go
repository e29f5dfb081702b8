package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Observer is told of the starts and ends of sandboxes, for a caller's
// counters and histograms (see Config.Observer, and the package's
// ExampleObserver for expvar). Observe is called synchronously, by Start
// and by the goroutine that ends a sandbox before Wait returns, a
// sandbox's start always before its end: it must be safe for concurrent
// use, return quickly, and not call the Sandbox's methods.
type Observer interface {
	Observe(Event)
}

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event.
const (
	// EventStarted: Start succeeded; Latency is how long it took.
	EventStarted EventKind = iota + 1
	// EventStartFailed: Start failed; Stage says where, Err why.
	EventStartFailed
	// EventEnded: a started sandbox ended; Result is its Result (nil when
	// none could be built) and Err what Wait returns.
	EventEnded
)

var eventNames = map[EventKind]string{
	EventStarted:     "started",
	EventStartFailed: "start-failed",
	EventEnded:       "ended",
}

func (k EventKind) String() string {
	if s, ok := eventNames[k]; ok {
		return s
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one start or end of a sandbox.
type Event struct {
	Kind EventKind
	// Sandbox is the sandbox's id, unique in this process: the "sandbox"
	// attribute of the records of Config.Logger.
	Sandbox uint64
	// Latency, for EventStarted, is the time from Start's call (after the
	// config was checked) to the command running, or the sandbox ready.
	Latency time.Duration
	// Stage, for EventStartFailed, is the step that failed: a
	// *SetupError's Stage, or "config" (a *ConfigError), "feature" (a
	// *FeatureError), "context" (ctx ended first) or "other".
	Stage string
	// Result, for EventEnded, is the sandbox's Result.
	Result *Result
	// Err is the error Start or Wait returns.
	Err error
}

// ID returns the sandbox's id, unique in this process and given by New:
// the "sandbox" attribute of its records in Config.Logger, and
// Event.Sandbox.
func (s *Sandbox) ID() uint64 { return s.seq }

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
