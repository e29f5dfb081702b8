//go:build linux

package sandboxtest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stockade/stockade/sandbox"
	"github.com/stockade/stockade/sandbox/sandboxtest"
)

// testGreeting is a test of a program run in a sandbox: in your package,
// name it TestGreeting and go test runs it. The sandbox's working
// directory is the test's t.TempDir(), so the test reads what the
// program wrote; when the test fails, its log says how the sandbox ended
// and what it wrote to standard error.
func testGreeting(t *testing.T) {
	sb := sandboxtest.Start(t, sandbox.Config{})
	out, err := sb.Command("sh", "-c", "echo hello > greeting; wc -c < greeting").Output(t.Context())
	if err != nil {
		t.Fatal(err) // an *sandbox.ExitError holds the Result and stderr
	}
	if string(out) != "6\n" {
		t.Errorf("wc says %q", out)
	}
	data, err := os.ReadFile(filepath.Join(sb.Dir, "greeting"))
	if err != nil || string(data) != "hello\n" {
		t.Errorf("greeting: %q, %v", data, err)
	}
}

// Run a program in a sandbox from a test, and read what it wrote.
func Example() {
	// See testGreeting above: go test runs it (here as TestExample).
}
