//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is an Observer that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Observe(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// logRecords returns a debug-level JSON logger and a function that
// returns its records so far, decoded.
func logRecords(t *testing.T) (*slog.Logger, func() []map[string]any) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return logger, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		var recs []map[string]any
		dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
		for dec.More() {
			var m map[string]any
			require.NoError(t, dec.Decode(&m))
			recs = append(recs, m)
		}
		return recs
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// record returns the one record with message msg.
func record(t *testing.T, recs []map[string]any, msg string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, r := range recs {
		if r["msg"] == msg {
			found = append(found, r)
		}
	}
	require.Len(t, found, 1, "records %q in %v", msg, recs)
	return found[0]
}

// TestObserveRun: a run logs its start (debug, stage timings) and its end
// (info, the verdict and figures), both with the sandbox's id, and tells
// the Observer the same.
func TestObserveRun(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		logger, records := logRecords(t)
		var obs recorder
		cfg := shell(t, `exit 3`)
		cfg.Logger, cfg.Observer = logger, &obs
		sb := newSandbox(t, cfg)
		res, err := sb.Run(testCtx(t))
		var ee *ExitError
		require.ErrorAs(t, err, &ee)

		ev := obs.take()
		require.Len(t, ev, 2)
		assert.Equal(t, EventStarted, ev[0].Kind)
		assert.Equal(t, EventEnded, ev[1].Kind)
		id := ev[0].Sandbox
		assert.NotZero(t, id)
		assert.Equal(t, sb.ID(), id)
		assert.Equal(t, id, ev[1].Sandbox)
		assert.Positive(t, ev[0].Latency)
		assert.LessOrEqual(t, ev[0].Latency, res.Wall)
		assert.Same(t, res, ev[1].Result)
		assert.Equal(t, err, ev[1].Err)

		recs := records()
		start := record(t, recs, "sandbox started")
		assert.Equal(t, "DEBUG", start["level"])
		assert.Equal(t, float64(id), start["sandbox"])
		assert.Equal(t, map[bool]string{true: "raw", false: "init"}[rawWanted()], start["path"])
		assert.Contains(t, start, "total")
		end := record(t, recs, "sandbox ended")
		assert.Equal(t, "INFO", end["level"])
		assert.Equal(t, float64(id), end["sandbox"])
		assert.Equal(t, "exited", end["reason"])
		assert.Equal(t, float64(3), end["exitCode"])
		assert.Equal(t, float64(res.Wall), end["wall"])
		assert.Equal(t, float64(res.UserTime), end["user"])
		assert.Equal(t, float64(res.MaxRSS), end["maxRSS"])
		assert.NotContains(t, end, "err", "an ExitError is the verdict, said already")

		// A second sandbox has an id of its own.
		_, err = newSandbox(t, cfg).Run(testCtx(t))
		require.Error(t, err)
		ev = obs.take()
		require.Len(t, ev, 2)
		assert.Greater(t, ev[0].Sandbox, id)
	})
}

// TestObserveVerdicts: the end record and event carry the Reason of a
// sandbox killed for its Timeout, with the signal and the memory figures
// of its control group.
func TestObserveVerdicts(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		logger, records := logRecords(t)
		var obs recorder
		cfg := shell(t, `sleep 100`)
		cfg.Logger, cfg.Observer = logger, &obs
		cfg.Timeout = killTimeout(t)
		if os.Geteuid() == 0 {
			cfg.Limits.Memory = 64 << 20 // for the group's figures
		}
		res, err := newSandbox(t, cfg).Run(testCtx(t))
		require.Error(t, err)
		require.Equal(t, Timeout, res.Reason)
		ev := obs.take()
		require.Len(t, ev, 2)
		assert.Equal(t, Timeout, ev[1].Result.Reason)
		end := record(t, records(), "sandbox ended")
		assert.Equal(t, "timeout", end["reason"])
		assert.Equal(t, "SIGKILL", end["signal"])
		assert.NotContains(t, end, "exitCode")
		if res.MemoryPeak > 0 {
			assert.Equal(t, float64(res.MemoryPeak), end["memoryPeak"])
		}
	})
}

// TestObserveStartFailed: a failed start is an event naming its stage,
// and no end follows; nothing is logged as an error (the caller has it).
func TestObserveStartFailed(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		logger, records := logRecords(t)
		var obs recorder
		sb := newSandbox(t, Config{Args: []string{"no-such-command"}, Logger: logger, Observer: &obs})
		err := sb.Start(testCtx(t))
		require.Error(t, err)
		ev := obs.take()
		require.Len(t, ev, 1)
		assert.Equal(t, EventStartFailed, ev[0].Kind)
		assert.Equal(t, "exec", ev[0].Stage)
		assert.Equal(t, err, ev[0].Err)
		for _, r := range records() {
			assert.NotEqual(t, "sandbox ended", r["msg"])
			assert.NotEqual(t, "ERROR", r["level"])
		}

		// A bad config, and Start called twice: the second is not a start.
		sb = New(Config{Args: []string{"true"}, Timeout: -1, Observer: &obs})
		require.Error(t, sb.Start(testCtx(t)))
		assert.ErrorIs(t, sb.Start(testCtx(t)), ErrStarted)
		ev = obs.take()
		require.Len(t, ev, 1)
		assert.Equal(t, "config", ev[0].Stage)
	})
}

// TestObserveLongLived: a sandbox without a command starts and ends with
// Close, Reason Closed.
func TestObserveLongLived(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		var obs recorder
		sb := longLived(t, Config{Observer: &obs})
		_, err := sb.Exec(testCtx(t), Cmd{Args: []string{"true"}})
		require.NoError(t, err)
		require.NoError(t, sb.Close())
		ev := obs.take()
		require.Len(t, ev, 2)
		assert.Equal(t, EventStarted, ev[0].Kind)
		assert.Equal(t, EventEnded, ev[1].Kind)
		assert.Equal(t, Closed, ev[1].Result.Reason)
	})
}

func TestFailedStage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&SetupError{Stage: "pivot_root"}, "pivot_root"},
		{configErr("Args", "x"), "config"},
		{&FeatureError{Feature: "time namespace"}, "feature"},
		{fmt.Errorf("start: %w", context.Canceled), "context"},
		{ErrFinished, "other"},
	} {
		assert.Equal(t, tc.want, failedStage(tc.err), "%v", tc.err)
	}
}
