package sandbox

import (
	"strconv"
	"time"
)

// Observer is told of starts and ends at once; quick, concurrency-safe.
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
	Stage   string        // EventStartFailed: a SetupError's Stage, "config", "feature", "context" or "other"
	Result  *Result       // EventEnded; nil when none was made
	Err     error         // what Start or Wait returns
}
