//go:build linux

package sandbox

import (
	"context"
	"os/signal"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// A sandbox's processes start with every signal at its default action,
// whatever the owner ignores (as under nohup, or as a background job of
// a script: SIGINT and SIGQUIT): the command and a process of Exec, on
// both start paths. Before, they inherited the owner's ignored signals,
// and a Ctrl-C typed at a sandbox's terminal killed nothing.
func TestSignalsStartDefault(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	ignored := []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
		syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1}
	for _, sig := range ignored {
		signal.Ignore(sig)
	}
	t.Cleanup(func() {
		for _, sig := range ignored {
			signal.Reset(sig)
		}
	})
	status := []string{"/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"}
	want := "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
	bothStarts(t, func(t *testing.T) {
		ctx := context.Background()
		out, err := New(testConfig(Config{Args: status})).Output(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, string(out), "the command")

		s := New(testConfig(Config{}))
		require.NoError(t, s.Start(ctx))
		defer s.Close()
		out, err = s.Command(status[0], status[1:]...).Output(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, string(out), "a process of Exec")
	})
}

func TestSigIgnMask(t *testing.T) {
	for _, c := range []struct {
		status string
		want   uint64
	}{
		{"Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001006\nSigCgt:\t0\n", 0x1006},
		{"SigIgn:\t8000000000000000", 1 << 63},
		{"Name:\tx\n", 0},
		{"SigIgn:\tnot hex\n", 0},
	} {
		assert.Equal(t, c.want, sigIgnMask(c.status), "%q", c.status)
	}
	// What this process ignores is at least what the runtime says it does.
	signal.Ignore(syscall.SIGUSR2)
	defer signal.Reset(syscall.SIGUSR2)
	assert.NotZero(t, ignoredSignals()&(1<<(syscall.SIGUSR2-1)))
}
