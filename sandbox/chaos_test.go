//go:build linux

package sandbox

// The chaos suite: rounds of random interleavings of the Sandbox's and the
// Pool's methods, context cancellations and faults from outside (signals to
// the init and the command, a frozen or removed cgroup, stalled readers,
// blocked or failing writers). Every operation must return within a bound
// derived from its Timeout, with a typed error or a correct verdict, and
// leave nothing behind.
//
// Each round has a seed of its own, printed with every failure; run one
// round again with
//
//	STOCKADE_CHAOS_SEED=0x… go test ./sandbox -run TestChaos -v
//
// The environment sets the size of a run:
//
//	STOCKADE_CHAOS_ROUNDS   rounds to run (default 2000, 200 with -short; 0 skips the suite)
//	STOCKADE_CHAOS_TIME     the cap on the run's wall time (default 150s)
//	STOCKADE_CHAOS_WORKERS  rounds run at once (default 4)
//	STOCKADE_CHAOS_ONLY     a regular expression: only scenarios it matches
//	STOCKADE_CHAOS_STRICT   1: run the scenarios of known bugs, and fail on them
//
// A scenario that reproduces a bug that is known and not fixed yet is
// guarded by knownBug: it is skipped (and counted) unless
// STOCKADE_CHAOS_STRICT=1. Remove the guard once the fix is merged.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
)

// chaosSettings are a run's parameters, read from the environment.
type chaosSettings struct {
	rounds  int
	budget  time.Duration
	workers int
	only    *regexp.Regexp
	seed    uint64 // non-zero: replay this one round
	strict  bool
}

func chaosFromEnv(t *testing.T) chaosSettings {
	t.Helper()
	s := chaosSettings{rounds: 2000, budget: 150 * time.Second, workers: 4}
	if testing.Short() {
		s.rounds = 200
	}
	if v := os.Getenv("STOCKADE_CHAOS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("STOCKADE_CHAOS_ROUNDS=%q: want a count", v)
		}
		s.rounds = n
	}
	if v := os.Getenv("STOCKADE_CHAOS_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("STOCKADE_CHAOS_TIME=%q: want a duration", v)
		}
		s.budget = d
	}
	if v := os.Getenv("STOCKADE_CHAOS_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("STOCKADE_CHAOS_WORKERS=%q: want a positive count", v)
		}
		s.workers = n
	}
	if v := os.Getenv("STOCKADE_CHAOS_ONLY"); v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			t.Fatalf("STOCKADE_CHAOS_ONLY: %v", err)
		}
		s.only = re
	}
	if v := os.Getenv("STOCKADE_CHAOS_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 0, 64)
		if err != nil || seed == 0 {
			t.Fatalf("STOCKADE_CHAOS_SEED=%q: want a non-zero number such as 0x1f2e", v)
		}
		s.seed, s.rounds, s.workers = seed, 1, 1
	}
	s.strict = os.Getenv("STOCKADE_CHAOS_STRICT") == "1"
	return s
}

// chaosRun is the state a run's rounds share.
type chaosRun struct {
	t        *testing.T
	set      chaosSettings
	bb       string
	failures atomic.Int64

	mu      sync.Mutex // guards the fields below
	done    map[string]int
	skipped map[string]int // by known bug
	known   map[string]int // tolerated results, by known bug
	ops     int
	// quiet is set once enough failures were reported; later ones are
	// counted only.
	quiet bool
}

// chaosCheckEvery is how many rounds run between two checks of the whole
// process (descriptors, goroutines, children, cgroups), with no round
// under way.
const chaosCheckEvery = 250

func TestChaos(t *testing.T) {
	set := chaosFromEnv(t)
	if set.rounds == 0 {
		t.Skip("STOCKADE_CHAOS_ROUNDS=0")
	}
	testutil.RequireRoot(t)
	testutil.RequireUserNamespaces(t)
	c := &chaosRun{
		t: t, set: set, bb: testutil.Busybox(t),
		done: map[string]int{}, skipped: map[string]int{}, known: map[string]int{},
	}
	scenarios := c.scenarios()
	// Show every guard in the test's output, whether or not a round drew
	// its scenario.
	for _, sc := range scenarios {
		if sc.bug != "" && !set.strict {
			t.Run("known-bug/"+sc.name, func(t *testing.T) {
				t.Skipf("known bug: %s (STOCKADE_CHAOS_STRICT=1 runs it)", sc.bug)
			})
		}
	}
	pick := c.weighted(scenarios)
	if len(pick) == 0 {
		t.Skip("STOCKADE_CHAOS_ONLY matches no scenario")
	}

	// A first round warms up what a process keeps for good (the runtime's
	// poller, probes, the spawner threads) before the baseline is taken.
	c.round(1, 0x5eed, chaosScenarioByName(scenarios, "run-true"))
	base := c.snapshot()

	master := rand.Uint64() | 1
	if set.seed == 0 {
		t.Logf("chaos: master seed %#x, %d rounds, %d at once, cap %v", master, set.rounds, set.workers, set.budget)
	}
	start := time.Now()
	deadline := start.Add(set.budget)
	rounds := 0
	for rounds < set.rounds && time.Now().Before(deadline) && !c.stopped() {
		batch := min(chaosCheckEvery, set.rounds-rounds)
		next := atomic.Int64{}
		var wg sync.WaitGroup
		for range set.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= batch || time.Now().After(deadline) || c.stopped() {
						return
					}
					n := rounds + i + 1
					seed := set.seed
					if seed == 0 {
						seed = chaosSeed(master, n)
					}
					rng := rand.New(rand.NewPCG(seed, seed>>1|1))
					sc := pick[rng.IntN(len(pick))]
					c.round(n, seed, sc)
				}
			}()
		}
		wg.Wait()
		rounds += min(batch, int(next.Load()))
		c.checkProcess(base, rounds)
	}
	elapsed := time.Since(start)
	c.report(rounds, elapsed)
	if rounds < set.rounds && !c.stopped() {
		t.Logf("chaos: the time cap of %v ended the run after %d of %d rounds", set.budget, rounds, set.rounds)
	}
}

// chaosSeed derives round n's seed from the run's master seed.
func chaosSeed(master uint64, n int) uint64 {
	x := master + uint64(n)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x | 1
}

// stopped reports whether the run gave up: after many failures, rounds
// only add noise.
func (c *chaosRun) stopped() bool { return c.failures.Load() >= 50 }

// weighted lists the scenarios that run, each as often as its weight.
func (c *chaosRun) weighted(scenarios []chaosScenario) []chaosScenario {
	var out []chaosScenario
	for _, sc := range scenarios {
		if c.set.only != nil && !c.set.only.MatchString(sc.name) {
			continue
		}
		for range sc.weight {
			out = append(out, sc)
		}
	}
	return out
}

func chaosScenarioByName(scenarios []chaosScenario, name string) chaosScenario {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc
		}
	}
	panic("no chaos scenario " + name)
}

// report logs the rounds run, by scenario, and the guards in force, in a
// form like a benchmark's.
func (c *chaosRun) report(rounds int, elapsed time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	per := time.Duration(0)
	if rounds > 0 {
		per = elapsed / time.Duration(rounds)
	}
	c.t.Logf("chaos: %d rounds in %v, %d operations: %.0f rounds/s, %.1f ms/round (wall, %d at once)",
		rounds, elapsed.Round(time.Millisecond), c.ops, float64(rounds)/elapsed.Seconds(),
		float64(per.Microseconds())/1000, c.set.workers)
	c.t.Logf("BenchmarkChaos\t%d\t%d ns/op\t%d failures", rounds, per.Nanoseconds(), c.failures.Load())
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range c.done {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, " %s=%d", n, c.done[n])
	}
	c.t.Logf("chaos: rounds by scenario:%s", b.String())
	for bug, n := range c.skipped {
		c.t.Logf("chaos: skipped %d rounds for the known bug %q", n, bug)
	}
	for bug, n := range c.known {
		c.t.Logf("chaos: tolerated %d results of the known bug %q", n, bug)
	}
}

// chaosGoroutines counts the goroutines but the spawners, which the
// package keeps for good, one for each start that ran at once with others
// (see spawn.go).
func chaosGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "sandbox.(*spawner).loop") {
			n++
		}
	}
	return n
}

// processState is what the whole test process holds between rounds.
type processState struct {
	fds        []string
	goroutines int
}

func (c *chaosRun) snapshot() processState {
	// The namespaces kept ready for sandboxes without a network, and the
	// pool's goroutine, are the process's: closed before each count.
	closeIsolatedPool()
	fds, _ := chaosFDs()
	return processState{fds: fds, goroutines: chaosGoroutines()}
}

// checkProcess checks, with no round under way, that the rounds left
// nothing behind: no descriptor, child process, sandbox cgroup or
// goroutine more than before them. Things being torn down get a moment.
func (c *chaosRun) checkProcess(base processState, rounds int) {
	if c.t.Failed() {
		return // a hang leaves things behind on purpose; it was reported
	}
	var problems []string
	for attempt := 0; attempt < 100; attempt++ {
		problems = problems[:0]
		closeIsolatedPool()
		fds, err := chaosFDs()
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, fd := range fds {
			if !slices.Contains(base.fds, fd) {
				problems = append(problems, "descriptor "+fd)
			}
		}
		if n := chaosGoroutines(); n > base.goroutines+2 {
			problems = append(problems, fmt.Sprintf("%d goroutines, %d before the rounds", n, base.goroutines))
		}
		kids, err := chaosChildren()
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, k := range kids {
			problems = append(problems, "child process "+k)
		}
		groups, err := testutil.OwnCgroups()
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, g := range groups {
			problems = append(problems, "cgroup "+g)
		}
		if len(problems) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Errorf("chaos: after %d rounds the process holds what the rounds left:\n  %s\n%s",
		rounds, strings.Join(problems, "\n  "), chaosStacks([]string{"*"}))
	c.failures.Add(1)
}
