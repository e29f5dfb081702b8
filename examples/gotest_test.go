//go:build linux

package examples

// The example of a go test that runs a program in a sandbox, as a user of
// package sandboxtest writes one: the sandbox's working directory is the
// test's t.TempDir(), a failure's log holds the sandbox's stderr and
// verdict, and a host without user namespaces skips the test (fails it
// under STOCKADE_REQUIRE_PRIVILEGED=1).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stockade/stockade/sandbox"
	"github.com/stockade/stockade/sandbox/sandboxtest"
)

// TestGoTestWithSandboxtest runs a small shell "submission" that writes its
// answer to a file, then reads the file from the test's side.
func TestGoTestWithSandboxtest(t *testing.T) {
	sb := sandboxtest.Start(t, sandbox.Config{})
	out, err := sb.Command("sh", "-c", "seq 1 10 | paste -sd+ | bc > answer || expr 55 > answer; cat answer").CombinedOutput(t.Context())
	if err != nil {
		t.Fatalf("the submission failed: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(sb.Dir, "answer"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != "55" {
		t.Errorf("answer %q, want 55", got)
	}
}
