package vmtest

import (
	"os"
	"testing"
)

// Env is the environment variable that .ci/vm/run sets inside the VM, and
// Cgroup2 its value there.
const (
	Env     = "STOCKADE_VM"
	Cgroup2 = "cgroup2"
)

// InVM reports whether the process runs inside the cgroup v2 test VM.
func InVM() bool { return os.Getenv(Env) == Cgroup2 }

// Require skips the test unless it runs inside the cgroup v2 test VM. The
// skip is never turned into a failure: on the host such a test has nothing
// to test, and .ci/vm/run is what runs it.
func Require(tb testing.TB) {
	tb.Helper()
	if !InVM() {
		tb.Skipf("runs only inside the cgroup v2 test VM, where %s=%s; run it there with .ci/vm/run PKG_DIR", Env, Cgroup2)
	}
}
