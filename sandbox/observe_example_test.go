//go:build linux

package sandbox_test

import (
	"context"
	"expvar"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/stockade/stockade/sandbox"
)

// sandboxVars counts sandboxes in expvar, which serves them as JSON at
// /debug/vars of net/http's DefaultServeMux: starts, failed starts by
// stage, ends by reason, and a histogram of start latency.
type sandboxVars struct {
	starts, failures, ends, latency *expvar.Map
}

func newSandboxVars(name string) *sandboxVars {
	root := expvar.NewMap(name)
	v := &sandboxVars{new(expvar.Map), new(expvar.Map), new(expvar.Map), new(expvar.Map)}
	root.Set("starts", v.starts)
	root.Set("startFailures", v.failures)
	root.Set("ends", v.ends)
	root.Set("startLatency", v.latency)
	return v
}

// latencyBuckets are the upper bounds of the histogram's buckets.
var latencyBuckets = []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond}

func (v *sandboxVars) Observe(ev sandbox.Event) {
	switch ev.Kind {
	case sandbox.EventStarted:
		v.starts.Add("total", 1)
		bucket := "inf"
		for _, b := range latencyBuckets {
			if ev.Latency <= b {
				bucket = b.String()
				break
			}
		}
		v.latency.Add("le "+bucket, 1)
		v.latency.AddFloat("sumSeconds", ev.Latency.Seconds())
	case sandbox.EventStartFailed:
		v.failures.Add(ev.Stage, 1)
	case sandbox.EventEnded:
		reason := "no-result"
		if ev.Result != nil {
			reason = ev.Result.Reason.String()
		}
		v.ends.Add(reason, 1)
	}
}

// An Observer feeds a service's metrics, here expvar; the Logger gets a
// record per start (debug) and end (info), each with the sandbox's id.
func ExampleObserver() {
	vars := newSandboxVars("sandboxes") // once per process
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	for range 3 {
		_, err := sandbox.New(sandbox.Config{
			Args:     []string{"true"},
			Logger:   logger,
			Observer: vars,
		}).Run(context.Background())
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(expvar.Get("sandboxes"))
	// {"ends": {"exited": 3}, "startFailures": {}, "startLatency": {"le 5ms": 3, "sumSeconds": 0.0061}, "starts": {"total": 3}}
	// and on stderr, for each:
	// time=... level=INFO msg="sandbox ended" sandbox=1 reason=exited exitCode=0 wall=2.1ms user=0s system=1ms maxRSS=1572864
}
