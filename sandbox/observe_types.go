package sandbox

import (
	"strconv"
	"time"
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
