//go:build linux

package testutil

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	Run(m, Options{Helper: func(mode string) int {
		switch mode {
		case "echo":
			fmt.Println(strings.Join(os.Args[1:], " "))
			return 0
		case "exit":
			return 7
		}
		return 2
	}})
}

// TestHelperCommand runs this test binary as its own helper: the mode
// picks the helper's code, the arguments reach it, its result is the exit
// status, and no test runs in it.
func TestHelperCommand(t *testing.T) {
	out, err := HelperCommand("echo", "a", "b c").Output()
	require.NoError(t, err)
	assert.Equal(t, "a b c\n", string(out), "the helper prints its arguments, and nothing of a test run")

	err = HelperCommand("exit").Run()
	var ee interface{ ExitCode() int }
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 7, ee.ExitCode())

	out, err = HelperCommand("no-such-mode").CombinedOutput()
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode(), "%s", out)
}
