package sandbox

import (
	"strconv"
	"time"
)

// Observer is told of the starts and ends of sandboxes, for metrics (see
// ExampleObserver). Observe is called synchronously: it must be safe for
// concurrent use, quick, and not call the Sandbox.
type Observer interface {
	Observe(Event)
}

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event.
const (
	EventStarted     EventKind = iota + 1 // Start succeeded
	EventStartFailed                      // Start failed
	EventEnded                            // a started sandbox ended
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
	Kind    EventKind
	Sandbox uint64        // Sandbox.ID
	Latency time.Duration // EventStarted: from Start to running
	// Stage, for EventStartFailed, is the failed step: a SetupError's
	// Stage, "config", "feature", "context" or "other".
	Stage  string
	Result *Result // EventEnded: the Result, nil when none was made
	Err    error   // what Start or Wait returns
}
