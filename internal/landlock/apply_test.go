//go:build linux

package landlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// TestApply enforces a domain on one locked thread, which then ends, and
// checks what that thread may still do and that the rest of the process
// is not restricted.
func TestApply(t *testing.T) {
	var err error
	if ABI() < 2 {
		err = fmt.Errorf("this kernel's Landlock ABI is %d", ABI())
	}
	testutil.RequireFeature(t, "Landlock ABI 2", err, "boot a kernel with landlock in the lsm= list")
	ro, rw := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ro, "f"), []byte("data"), 0o644))

	want, _, ok := Ruleset{
		HandledFS: AllFS,
		Paths: []PathRule{
			{Path: ro, Access: Read},
			{Path: rw, Access: Read | Write},
			{Path: filepath.Join(ro, "f"), Access: Read}, // a file: only file rights apply
			{Path: filepath.Join(ro, "missing"), Access: Read},
		},
	}.ForABI(ABI())
	require.True(t, ok)

	type outcome struct{ apply, read, writeRO, writeRW, outside error }
	done := make(chan outcome)
	go func() {
		// Never unlocked: the restricted thread ends with this goroutine.
		runtime.LockOSThread()
		var o outcome
		if o.apply = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); o.apply == nil {
			o.apply = Apply(&want)
		}
		if o.apply == nil {
			_, o.read = os.ReadFile(filepath.Join(ro, "f"))
			o.writeRO = os.WriteFile(filepath.Join(ro, "g"), nil, 0o644)
			o.writeRW = os.WriteFile(filepath.Join(rw, "g"), nil, 0o644)
			_, o.outside = os.ReadFile("/etc/hostname")
		}
		done <- o
	}()
	o := <-done
	require.NoError(t, o.apply)
	assert.NoError(t, o.read)
	assert.True(t, errors.Is(o.writeRO, unix.EACCES), "write beneath a read-only rule: %v", o.writeRO)
	assert.NoError(t, o.writeRW)
	assert.True(t, errors.Is(o.outside, unix.EACCES), "read outside every rule: %v", o.outside)
	// This thread, and the process, are not in the domain.
	assert.NoError(t, os.WriteFile(filepath.Join(ro, "h"), nil, 0o644))
}
