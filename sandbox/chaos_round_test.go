//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// chaosScenario is one kind of round. bug, when set, names the known bug
// that the scenario reproduces: the scenario is skipped unless
// STOCKADE_CHAOS_STRICT=1.
type chaosScenario struct {
	name   string
	weight int
	bug    string
	run    func(r *chaosRound)
}

// chaosGrace is what every operation gets on top of the time its Timeout
// allows: a start on a loaded machine, the kill and the reaping. It is far
// above what they take (milliseconds), so that a round that exceeds it is
// a hang, not a slow machine.
const chaosGrace = 10 * time.Second

// chaosRound is one round: its seed, its random source, what it did and
// the faults it holds until it heals them.
type chaosRound struct {
	c        *chaosRun
	n        int
	seed     uint64
	scenario string
	rng      *rand.Rand
	rngMu    sync.Mutex
	bb       string
	begin    time.Time

	mu    sync.Mutex // guards the fields below
	trace []string
	heals []func()
	// rescues kill the round's sandboxes from outside, the last resort
	// after a hang that healing the faults did not end.
	rescues []func()
	failed  bool
	wg      sync.WaitGroup // operations under way
}

// round runs one round of sc and checks what it left.
func (c *chaosRun) round(n int, seed uint64, sc chaosScenario) {
	r := &chaosRound{
		c: c, n: n, seed: seed, scenario: sc.name, bb: c.bb, begin: time.Now(),
		rng: rand.New(rand.NewPCG(seed^0x5ca1ab1e, seed)),
	}
	if sc.bug != "" && !c.set.strict {
		c.mu.Lock()
		c.skipped[sc.bug]++
		c.mu.Unlock()
		return
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				r.fail("panic: %v\n%s", p, chaosStacks(nil))
			}
		}()
		sc.run(r)
	}()
	r.wg.Wait()
	r.heal()
	c.mu.Lock()
	c.done[sc.name]++
	c.mu.Unlock()
}

// intn, chance and between draw from the round's random source; operations
// running at once may draw.
func (r *chaosRound) intn(n int) int {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.IntN(n)
}

func (r *chaosRound) chance(p float64) bool {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.Float64() < p
}

func (r *chaosRound) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return lo + time.Duration(r.rng.Int64N(int64(hi-lo)))
}

func (r *chaosRound) pick(choices ...string) string { return choices[r.intn(len(choices))] }

// logf records a step of the round, shown when it fails.
func (r *chaosRound) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trace = append(r.trace, fmt.Sprintf("%7.1fms ", float64(time.Since(r.begin).Microseconds())/1000)+fmt.Sprintf(format, args...))
}

// fail reports a failure of the round with its seed, so that it can be
// replayed, and what the round did so far.
func (r *chaosRound) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.failed = true
	trace := strings.Join(r.trace, "\n    ")
	r.mu.Unlock()
	n := r.c.failures.Add(1)
	if n > 20 {
		return // counted; the first ones say enough
	}
	// The seed picks the scenario among those STOCKADE_CHAOS_ONLY lets run.
	only := ""
	if r.c.set.only != nil {
		only = fmt.Sprintf("STOCKADE_CHAOS_ONLY='%s' ", r.c.set.only)
	}
	r.c.t.Errorf("chaos round %d, scenario %s, seed %#x (replay: STOCKADE_CHAOS_SEED=%#x %sSTOCKADE_CHAOS_STRICT=1 go test ./sandbox -run TestChaos):\n  %s\n  steps:\n    %s",
		r.n, r.scenario, r.seed, r.seed, only, msg, trace)
}

// knownBug reports whether a result that shows bug may pass: it does,
// counted, unless STOCKADE_CHAOS_STRICT=1.
func (r *chaosRound) knownBug(bug string) bool {
	if r.c.set.strict {
		return false
	}
	r.c.mu.Lock()
	r.c.known[bug]++
	r.c.mu.Unlock()
	return true
}

// onHeal registers the undoing of a fault, run at the end of the round and
// as soon as an operation hangs.
func (r *chaosRound) onHeal(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heals = append(r.heals, f)
}

func (r *chaosRound) heal() {
	r.mu.Lock()
	heals := r.heals
	r.heals = nil
	r.mu.Unlock()
	for i := len(heals) - 1; i >= 0; i-- {
		heals[i]()
	}
}

// do runs op and fails the round when it does not return within bound:
// it then dumps the goroutine running it, heals the round's faults and
// waits once more. It returns whether op returned in time.
func (r *chaosRound) do(name string, bound time.Duration, op func()) bool {
	r.c.mu.Lock()
	r.c.ops++
	r.c.mu.Unlock()
	r.logf("%s: begin (bound %v)", name, bound)
	done := make(chan struct{})
	gid := make(chan string, 1)
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				r.fail("%s panicked: %v\n%s", name, p, chaosStacks(nil))
			}
		}()
		gid <- chaosGoroutineID()
		op()
	}()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-done:
		r.logf("%s: end", name)
		return true
	case <-timer.C:
	}
	id := <-gid
	r.fail("%s did not return within %v; its goroutine:\n%s\nthe test's processes:\n%s\nthe package's goroutines:\n%s",
		name, bound, chaosStacks([]string{id}), chaosProcessTree(), chaosStacks(nil))
	r.heal()
	select {
	case <-done:
		r.logf("%s: returned once the faults were healed", name)
		return false
	case <-time.After(time.Second):
	}
	r.mu.Lock()
	rescues := r.rescues
	r.mu.Unlock()
	for _, f := range rescues {
		f()
	}
	select {
	case <-done:
		r.logf("%s: returned once its sandboxes were killed from outside", name)
	case <-time.After(chaosGrace):
		r.fail("%s still blocked %v after the faults were healed and its sandboxes killed", name, chaosGrace)
	}
	return false
}

// async runs op as do does, on its own goroutine, after delay; the round
// waits for it.
func (r *chaosRound) async(name string, delay, bound time.Duration, op func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if delay > 0 {
			time.Sleep(delay)
		}
		r.do(name, bound, op)
	}()
}

// chaosGoroutineID returns the id of the calling goroutine, to find its
// stack in a dump.
func chaosGoroutineID() string {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		return string(b[:i])
	}
	return ""
}

// chaosStacks returns the stacks of the goroutines with the given ids, or
// of every goroutine in the sandbox package's code when ids is empty, or
// of all when ids holds "*".
func chaosStacks(ids []string) string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		keep := false
		for _, id := range ids {
			keep = keep || id == "*" || strings.HasPrefix(g, "goroutine "+id+" ")
		}
		if len(ids) == 0 {
			keep = strings.Contains(g, "stockade/sandbox.(*Sandbox)") || strings.Contains(g, "stockade/sandbox.(*Pool)")
		}
		if keep {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// bound is the time an operation on a sandbox with timeout may take.
func bound(timeout time.Duration) time.Duration {
	return timeout + chaosGrace
}

// expect is what a round knows may have ended a sandbox or a process:
// its verdict must be one of them.
type expect struct {
	mu      sync.Mutex
	reasons map[string]bool // "exited 0", "timeout", "signaled SIGKILL" …
}

func newExpect(verdicts ...string) *expect {
	e := &expect{reasons: map[string]bool{}}
	e.allow(verdicts...)
	return e
}

func (e *expect) allow(verdicts ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range verdicts {
		e.reasons[v] = true
	}
}

func (e *expect) allows(v string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reasons[v]
}

func (e *expect) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var vs []string
	for v := range e.reasons {
		vs = append(vs, v)
	}
	return strings.Join(vs, " | ")
}

// verdict names a Result for expect: "exited N", "signaled SIGNAME", or
// the Reason's name.
func verdict(res *Result) string {
	switch res.Reason {
	case Exited:
		return "exited " + strconv.Itoa(res.ExitCode)
	case Signaled:
		return "signaled " + sigName(res.Signal)
	}
	return res.Reason.String()
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	}
	return "signal " + strconv.Itoa(int(s))
}

// checkResult checks what Wait, Run, Exec or Pool.Run returned: a Result
// whose verdict e allows, with a nil error for a success and an
// *ExitError holding the same Result otherwise; or one of the typed
// errors in also.
func (r *chaosRound) checkResult(op string, res *Result, err error, e *expect, also ...error) {
	if res == nil {
		for _, target := range also {
			if errors.Is(err, target) {
				r.logf("%s: %v (allowed)", op, err)
				return
			}
		}
		r.fail("%s returned no Result but %T %v; want a verdict in {%v} or one of %v", op, err, err, e, also)
		return
	}
	v := verdict(res)
	r.logf("%s: %s, %v", op, v, err)
	if !e.allows(v) {
		r.fail("%s: verdict %q (%v), want one of {%v}", op, v, res, e)
	}
	if res.Success() {
		if err != nil {
			r.fail("%s: a successful Result with the error %v", op, err)
		}
		return
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		r.fail("%s: Result %q with the error %T %v; want an *ExitError", op, v, err, err)
	} else if ee.Result != res {
		r.fail("%s: the *ExitError holds another Result than the one returned", op)
	}
	if res.Reason == Cancelled && !errors.Is(err, context.Canceled) {
		r.fail("%s: Cancelled, but the error %v does not match context.Canceled", op, err)
	}
}

// checkErr checks an error of a method that returns no Result: nil or one
// of the typed errors in allowed.
func (r *chaosRound) checkErr(op string, err error, allowed ...error) {
	r.logf("%s: %v", op, err)
	if err == nil {
		return
	}
	for _, target := range allowed {
		if target != nil && errors.Is(err, target) {
			return
		}
	}
	r.fail("%s returned %T %v; want nil or one of %v", op, err, err, allowed)
}
