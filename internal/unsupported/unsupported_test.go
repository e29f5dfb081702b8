package unsupported

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestErrorMatches(t *testing.T) {
	own := errors.New("not supported by this host")
	for _, tc := range []struct {
		err      error
		matchOwn bool
		text     string
	}{
		{New("cgroup: Create", own), true, "cgroup: Create: stockade needs Linux, and this is " + runtime.GOOS + "/" + runtime.GOARCH},
		{New("mount: Apply", nil), false, "mount: Apply: stockade needs Linux, and this is "},
		{&Error{}, false, "stockade needs Linux, and this is "},
		{fmt.Errorf("wrapped: %w", New("netns: New", nil)), false, "wrapped: netns: New: "},
	} {
		if !errors.Is(tc.err, ErrNotSupported) {
			t.Errorf("%v does not match ErrNotSupported", tc.err)
		}
		if got := errors.Is(tc.err, own); got != tc.matchOwn {
			t.Errorf("%v matches the package's own sentinel: %v, want %v", tc.err, got, tc.matchOwn)
		}
		if !strings.HasPrefix(tc.err.Error(), tc.text) {
			t.Errorf("error text %q, want it to start with %q", tc.err, tc.text)
		}
		var e *Error
		if !errors.As(tc.err, &e) {
			t.Errorf("%v is no *Error", tc.err)
		}
	}
	if errors.Is(New("x", nil), own) || errors.Is(errors.New("not supported"), ErrNotSupported) {
		t.Error("a sentinel matched what it should not")
	}
}
