//go:build linux

package seccomp

import (
	"os"
	"testing"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) {
	if runHelper() {
		return
	}
	// The Go runtime opens its network poller's epoll and eventfd
	// descriptors the first time a pipe is used (the kernel tests use
	// os/exec) and keeps them for good; open them before the leak check
	// takes its first snapshot.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	testutil.Main(m)
}
