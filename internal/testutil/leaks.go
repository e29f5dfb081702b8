//go:build linux

package testutil

import (
	"fmt"
	"os"
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
func Main(m *testing.M, checks ...LeakCheck) { MainThen(m, nil, checks...) }

// MainThen is Main with a function run after the tests and before the
// checks, to release what a package keeps for the life of the process (a
// pool, say), which is not a leak. After the tests it prints how many the
// guards of this package skipped and why (see SkipsFileEnv).
func MainThen(m *testing.M, after func(), checks ...LeakCheck) {
	if len(checks) == 0 {
		checks = DefaultLeakChecks
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
