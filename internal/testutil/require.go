//go:build linux

// Package testutil holds the helpers that stockade's tests share: guards
// that skip a test when the machine lacks a privilege or a kernel feature
// (and fail it instead under STOCKADE_REQUIRE_PRIVILEGED=1, so that CI can
// never pass by skipping), and a test main that fails when a package's tests
// leave file descriptors, child processes, mounts or cgroups behind.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// RequirePrivilegedEnv is the environment variable that turns every skip of
// this package into a failure. CI sets it to 1.
const RequirePrivilegedEnv = "STOCKADE_REQUIRE_PRIVILEGED"

// Strict reports whether missing privileges or features fail tests instead
// of skipping them.
func Strict() bool { return os.Getenv(RequirePrivilegedEnv) == "1" }

// Skip skips the test with the reason and what would fix it, or fails the
// test when Strict is true.
func Skip(tb testing.TB, reason, remedy string) {
	tb.Helper()
	msg := reason
	if remedy != "" {
		msg += " (" + remedy + ")"
	}
	if Strict() {
		tb.Fatalf("%s; this test must run because %s=1", msg, RequirePrivilegedEnv)
	}
	recordSkip(msg)
	tb.Skip(msg)
}

// RootlessEnv is the environment variable that marks the rootless run of
// the tests, as an ordinary user: .ci/run sets it to 1 there, where tests
// that need host root skip even under RequirePrivilegedEnv, since the run
// as root covers them.
const RootlessEnv = "STOCKADE_TEST_ROOTLESS"

// RequireRoot skips the test unless the process runs as host root. Under
// STOCKADE_REQUIRE_PRIVILEGED=1 it fails instead, but for the rootless run
// (RootlessEnv).
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RootlessEnv) == "1" {
		const msg = "needs host root; the run of the tests as root covers it"
		recordSkip(msg)
		tb.Skip(msg)
	}
	Skip(tb, "needs host root", "run the tests as root, e.g. sudo go test ./...")
}

// RequireNonRoot skips the test unless the process runs as an ordinary user
// (the rootless tests). As root it always skips, even under
// STOCKADE_REQUIRE_PRIVILEGED=1: .ci/run runs these tests again as an
// ordinary user, with RootlessEnv set.
func RequireNonRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		const msg = "needs an ordinary user; .ci/run runs the rootless tests as one"
		recordSkip(msg)
		tb.Skip(msg)
	}
}

// RequireFeature skips the test when err says that a kernel or host feature
// is missing. A nil err means the feature is present.
func RequireFeature(tb testing.TB, feature string, err error, remedy string) {
	tb.Helper()
	if err != nil {
		Skip(tb, feature+" is not available: "+err.Error(), remedy)
	}
}

// RequireUserNamespaces skips the test unless this process may create a
// user namespace.
func RequireUserNamespaces(tb testing.TB) {
	tb.Helper()
	RequireFeature(tb, "user namespaces", userNSErr(),
		"enable user namespaces (sysctl user.max_user_namespaces>0, kernel.unprivileged_userns_clone=1)")
}

var userNS = sync.OnceValue(func() error {
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
	return cmd.Run()
})

func userNSErr() error { return userNS() }

// Busybox returns the path of a statically linked busybox, or skips the
// test. Tests use it to build small root file systems.
func Busybox(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isStaticELF(p) {
			return p
		}
	}
	Skip(tb, "needs a static busybox", "apt-get install busybox-static")
	return ""
}

func isStaticELF(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 4 || string(b[:4]) != "\x7fELF" {
		return false
	}
	// A dynamically linked ELF names its interpreter; a static one does not.
	return !strings.Contains(string(b[:min(len(b), 4096)]), "ld-linux")
}

// BusyboxRoot builds a minimal root directory holding a static busybox and
// its applet links for the commands the tests use, and returns its path. It
// is removed when the test ends.
func BusyboxRoot(tb testing.TB) string {
	tb.Helper()
	bb := Busybox(tb)
	root := tb.TempDir()
	for _, d := range []string{"bin", "proc", "dev", "tmp", "etc", "work"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, applet := range []string{"sh", "true", "false", "cat", "echo", "ls", "id", "sleep", "hostname", "mount", "touch", "ip"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}
