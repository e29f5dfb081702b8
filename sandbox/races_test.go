//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// raceRounds is how many rounds the race tests run: STOCKADE_RACE_ROUNDS
// when set, fewer with -short.
func raceRounds(t *testing.T, n int) int {
	t.Helper()
	if v := os.Getenv("STOCKADE_RACE_ROUNDS"); v != "" {
		r, err := strconv.Atoi(v)
		require.NoError(t, err, "STOCKADE_RACE_ROUNDS")
		return r
	}
	if testing.Short() {
		return n / 10
	}
	return n
}

// raceTimeout is the Timeout of every sandbox and Exec of the race tests.
// Whatever races, each sandbox has ended by then, so no operation on it may
// take much longer: opBound is twice that.
const (
	raceTimeout = 5 * time.Second
	opBound     = 2 * raceTimeout
)

// op is one operation of a race round and what it returned.
type op struct {
	name string
	err  error
	res  *Result
}

// race runs every function of fns at once and returns what they returned;
// it fails the test, with every goroutine's stack, when one of them has not
// returned within opBound.
func race(t *testing.T, round int, fns map[string]func() (*Result, error)) map[string]op {
	t.Helper()
	results := make(chan op, len(fns))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for name, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := f()
			results <- op{name, err, res}
		}()
	}
	close(start)
	timer := time.NewTimer(opBound)
	defer timer.Stop()
	got := map[string]op{}
	for len(got) < len(fns) {
		select {
		case o := <-results:
			got[o.name] = o
		case <-timer.C:
			var pending []string
			for name := range fns {
				if _, ok := got[name]; !ok {
					pending = append(pending, name)
				}
			}
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("round %d: %v did not return within %v\n%s", round, pending, opBound, buf)
		}
	}
	wg.Wait()
	return got
}

// checkEnd fails the test unless res and err are a verdict a sandbox that
// Close, Kill and its own end raced for may give: never a setup error.
func checkEnd(t *testing.T, round int, what string, res *Result, err error, ok ...Reason) {
	t.Helper()
	var ee *ExitError
	switch {
	case err == nil && res != nil && res.Success():
		return
	case errors.As(err, &ee) && ee.Result == res:
		for _, r := range ok {
			if res.Reason == r && (r != Signaled || res.Signal == syscall.SIGKILL) {
				return
			}
		}
	}
	t.Fatalf("round %d: %s: %v (%T), result %v", round, what, err, err, res)
}

// TestRaceCloseKillExec races Close, Kill, Exec and Wait on short-lived
// sandboxes, with and without a command of their own: every call returns
// within a bound, and Wait always gives a verdict, never a setup error.
func TestRaceCloseKillExec(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	rounds := raceRounds(t, 400)
	for round := range rounds {
		cfg := Config{Timeout: raceTimeout}
		if round%2 == 1 {
			cfg.Args = []string{bb, "true"}
		}
		sb := New(testConfig(cfg))
		require.NoError(t, sb.Start(context.Background()), "round %d", round)
		fns := map[string]func() (*Result, error){
			"Close": func() (*Result, error) { return nil, sb.Close() },
			"Kill":  func() (*Result, error) { return nil, sb.Kill(syscall.SIGKILL) },
			"Exec": func() (*Result, error) {
				return sb.Exec(context.Background(), Cmd{Args: []string{bb, "true"}, Timeout: raceTimeout})
			},
			"Wait": sb.Wait,
		}
		if round%4 >= 2 {
			delete(fns, "Kill")
		}
		got := race(t, round, fns)
		if err := got["Close"].err; err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		if o, ok := got["Kill"]; ok && o.err != nil && !errors.Is(o.err, ErrFinished) && !errors.Is(o.err, os.ErrProcessDone) {
			t.Fatalf("round %d: Kill: %v (%T)", round, o.err, o.err)
		}
		if o := got["Exec"]; !errors.Is(o.err, ErrFinished) {
			checkEnd(t, round, "Exec", o.res, o.err, Signaled)
		}
		w := got["Wait"]
		checkEnd(t, round, "Wait", w.res, w.err, Signaled)
	}
	t.Logf("%d rounds", rounds)
}

// TestRacePoolClose races Pool.Run with Pool.Close: every call returns
// within a bound, a run gives its verdict or ErrPoolClosed, and nothing is
// left behind.
func TestRacePoolClose(t *testing.T) {
	testutil.RequireRoot(t)
	bb := testutil.Busybox(t)
	rounds := raceRounds(t, 150)
	for round := range rounds {
		p, err := NewPool(Config{Timeout: raceTimeout}, 1)
		require.NoError(t, err)
		fns := map[string]func() (*Result, error){
			"Close": func() (*Result, error) { return nil, p.Close() },
		}
		for i := range 2 {
			fns[fmt.Sprint("Run", i)] = func() (*Result, error) {
				return p.Run(context.Background(), Cmd{Args: []string{bb, "true"}})
			}
		}
		got := race(t, round, fns)
		if err := got["Close"].err; err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		for i := range 2 {
			o := got[fmt.Sprint("Run", i)]
			if !errors.Is(o.err, ErrPoolClosed) {
				checkEnd(t, round, fmt.Sprint("Run", i), o.res, o.err)
			}
		}
	}
	assertNoChildren(t)
	t.Logf("%d rounds", rounds)
}
