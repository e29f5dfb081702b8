//go:build linux

package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// SkipsFileEnv is the environment variable that names a file to which
// the test main of each package appends its line of skips (see
// skipSummary), so that one run of `go test ./...`, which shows the output
// of a package only when it fails or with -v, can still tell them all.
const SkipsFileEnv = "STOCKADE_TEST_SKIPS"

// skips counts the tests that this package's guards (Skip, RequireRoot,
// RequireNonRoot, RequireFeature and the rest) skipped, by reason. A test
// that calls t.Skip itself is not counted.
var skips struct {
	sync.Mutex
	count map[string]int
}

func recordSkip(reason string) {
	skips.Lock()
	defer skips.Unlock()
	if skips.count == nil {
		skips.count = map[string]int{}
	}
	skips.count[reason]++
}

// skipSummary is the line the test main prints after the tests: "N tests
// skipped: reason (count); ...", the most frequent reason first, or "" when
// no guard skipped a test.
func skipSummary() string {
	skips.Lock()
	defer skips.Unlock()
	type entry struct {
		reason string
		n      int
	}
	var list []entry
	total := 0
	for r, n := range skips.count {
		list = append(list, entry{r, n})
		total += n
	}
	if total == 0 {
		return ""
	}
	slices.SortFunc(list, func(a, b entry) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.reason, b.reason)
	})
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = fmt.Sprintf("%s (%d)", e.reason, e.n)
	}
	noun := "tests"
	if total == 1 {
		noun = "test"
	}
	return fmt.Sprintf("%d %s skipped: %s", total, noun, strings.Join(parts, "; "))
}

// reportSkips prints the summary of skips on standard output and appends
// it, named by the package's test binary, to the file SkipsFileEnv names;
// there a package with no skips gets a line too, so that the file lists
// every package that ran. A run of the tests that a test of the same
// binary started (TestSharedHostMounts does) adds no line: its tests are
// part of that test.
func reportSkips() {
	line := skipSummary()
	if line != "" {
		fmt.Println(line)
	}
	name := os.Getenv(SkipsFileEnv)
	if name == "" || nestedRun() {
		return
	}
	if line == "" {
		line = "no tests skipped"
	}
	pkg := packageDir()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", SkipsFileEnv, err)
		return
	}
	defer f.Close()
	// One write, so that packages running at once do not mix their lines.
	fmt.Fprint(f, pkg+": "+line+"\n")
}

// packageDir names the package under test by its directory relative to
// the module's root ("cmd/stockade"): go test runs a test binary in its
// package's directory. It falls back to the binary's name.
func packageDir() string {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	wd, err := os.Getwd()
	if err != nil {
		return name
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil && rel != "." {
				return rel
			}
			return name
		}
		if dir == filepath.Dir(dir) {
			return name
		}
	}
}

// nestedRun reports whether the parent process runs this same test
// binary: the run is one that a test started.
func nestedRun() bool {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return false
	}
	parent, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", os.Getppid()))
	return err == nil && parent == self
}
