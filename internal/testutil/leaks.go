//go:build linux

package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
)

// LeakCheck is one kind of host state that tests must leave as they found
// it. Snapshot returns a sorted list of items; an item present after the
// tests and absent before is a leak.
type LeakCheck struct {
	Name     string
	Snapshot func() ([]string, error)
}

// DefaultLeakChecks are the checks Main runs: open file descriptors of the
// test process, its child processes, the host mount table, and the sandbox
// cgroups that the test process owns.
var DefaultLeakChecks = []LeakCheck{
	{"file descriptor", openFDs},
	{"child process", childProcesses},
	{"mount", hostMounts},
	{"cgroup", OwnCgroups},
}

// Main runs the package's tests and then fails the run if any of checks
// (DefaultLeakChecks when none are given) finds state that was not there
// before. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testutil.Main(m) }
func Main(m *testing.M, checks ...LeakCheck) { Run(m, Options{Checks: checks}) }

// MainThen is Main with a function run after the tests and before the
// checks (see Options.After).
func MainThen(m *testing.M, after func(), checks ...LeakCheck) {
	Run(m, Options{After: after, Checks: checks})
}

// HelperEnv is the environment variable that makes a test binary one of
// its package's helper processes instead of running its tests: Run calls
// Options.Helper with its value, the helper's mode. A test starts a
// helper by running its own binary with HelperEnv=mode in the
// environment (see HelperCommand).
const HelperEnv = "STOCKADE_TEST_HELPER"

// Options is how a package's test main differs from the default.
type Options struct {
	// Helper is the main of the package's helper processes, called with
	// the mode HelperEnv names; its result is the exit status. Nil means
	// the package starts none.
	Helper func(mode string) int
	// Setup runs before the first snapshot of the checks, in the process
	// that runs the tests only: what the process keeps for its life (a
	// locked main thread, a subreaper flag, the runtime's poller) is then
	// no leak. An error ends the run.
	Setup func() error
	// After runs after the tests and before the checks, to release what
	// the package keeps for the life of the process (a pool, say), which
	// is not a leak either.
	After func()
	// Checks are the leak checks; nil means DefaultLeakChecks.
	Checks []LeakCheck
}

// HelperCommand returns a command that runs this test binary as the
// package's helper in mode, with args, in the test's environment.
func HelperCommand(mode string, args ...string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = append(os.Environ(), HelperEnv+"="+mode)
	return cmd
}

// Run is the test main of every package: a helper process runs its
// helper and exits; the tests run between two snapshots of the leak
// checks, and the run fails if the second finds what the first did not.
// After the tests it prints how many the guards of this package skipped
// and why (see SkipsFileEnv). It never returns.
func Run(m *testing.M, o Options) {
	if mode := os.Getenv(HelperEnv); mode != "" {
		if o.Helper == nil {
			fmt.Fprintf(os.Stderr, "%s=%s: this package has no helpers\n", HelperEnv, mode)
			os.Exit(2)
		}
		os.Exit(o.Helper(mode))
	}
	checks, after := o.Checks, o.After
	if len(checks) == 0 {
		checks = DefaultLeakChecks
	}
	if o.Setup != nil {
		if err := o.Setup(); err != nil {
			fmt.Fprintln(os.Stderr, "test main:", err)
			os.Exit(1)
		}
	}
	// The runtime's poller keeps an epoll and an eventfd open once anything
	// uses it; start it now so that they are in the first snapshot.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := make([][]string, len(checks))
	for i, c := range checks {
		s, err := c.Snapshot()
		if err != nil {
			fmt.Fprintf(os.Stderr, "leak check %s: %v\n", c.Name, err)
			os.Exit(1)
		}
		before[i] = s
	}
	code := m.Run()
	reportSkips()
	if after != nil {
		after()
	}
	// Processes killed at the end of a test may take a moment to be reaped.
	var leaks []string
	for attempt := 0; attempt < 50; attempt++ {
		leaks = leaks[:0]
		for i, c := range checks {
			after, err := c.Snapshot()
			if err != nil {
				leaks = append(leaks, fmt.Sprintf("%s: %v", c.Name, err))
				continue
			}
			for _, item := range after {
				if !slices.Contains(before[i], item) {
					leaks = append(leaks, c.Name+": "+item)
				}
			}
		}
		if len(leaks) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left state behind on the host:\n  %s\n", strings.Join(leaks, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func openFDs() ([]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var fds []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the fd ReadDir itself used
		}
		if target == "/memfd:stockade-reaper (deleted)" {
			continue // made once, kept for the life of the process
		}
		fds = append(fds, e.Name()+" -> "+target)
	}
	slices.Sort(fds)
	return fds, nil
}

// childProcesses lists the processes whose parent is this process, zombies
// included.
func childProcesses() ([]string, error) {
	var out []string
	// Children of every thread count, not only of the main thread.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, pid := range strings.Fields(string(b)) {
			if !seen[pid] {
				seen[pid] = true
				comm, _ := os.ReadFile("/proc/" + pid + "/comm")
				out = append(out, pid+" "+strings.TrimSpace(string(comm)))
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func hostMounts() ([]string, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint+" ("+m.FSType+" "+m.Source+")")
	}
	slices.Sort(out)
	return out, nil
}
