//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

func TestDiagnoseUserNamespaces(t *testing.T) {
	open := userNSSettings{maxUserNS: 15000, unprivClone: -1, apparmorRestrict: -1}
	with := func(f func(*userNSSettings)) userNSSettings {
		s := open
		f(&s)
		return s
	}
	tests := []struct {
		name     string
		s        userNSSettings
		root     bool
		errno    unix.Errno
		mentions string // empty: no error
	}{
		{"open host", open, false, 0, ""},
		{"open host, root", open, true, 0, ""},
		{"unrelated errno", open, false, unix.EINVAL, ""},
		{"max zero", with(func(s *userNSSettings) { s.maxUserNS = 0 }), false, unix.ENOSPC, "sysctl -w user.max_user_namespaces=15000"},
		{"max zero, root", with(func(s *userNSSettings) { s.maxUserNS = 0 }), true, unix.ENOSPC, "user.max_user_namespaces is 0"},
		{"max zero, no attempt", with(func(s *userNSSettings) { s.maxUserNS = 0 }), false, 0, "user.max_user_namespaces is 0"},
		{"limit reached", open, false, unix.ENOSPC, "limit user.max_user_namespaces (15000 here) is reached"},
		{"unprivileged clone off", with(func(s *userNSSettings) { s.unprivClone = 0 }), false, unix.EPERM, "sysctl -w kernel.unprivileged_userns_clone=1"},
		{"unprivileged clone off, root", with(func(s *userNSSettings) { s.unprivClone = 0 }), true, 0, ""},
		{"unprivileged clone on", with(func(s *userNSSettings) { s.unprivClone = 1 }), false, 0, ""},
		{"apparmor restricts", with(func(s *userNSSettings) { s.apparmorRestrict = 1 }), false, unix.EPERM, "kernel.apparmor_restrict_unprivileged_userns is 1"},
		{"apparmor restricts, no attempt", with(func(s *userNSSettings) { s.apparmorRestrict = 1 }), false, 0, "\"userns,\" rule"},
		{"apparmor restricts, root", with(func(s *userNSSettings) { s.apparmorRestrict = 1 }), true, 0, ""},
		{"apparmor allows", with(func(s *userNSSettings) { s.apparmorRestrict = 0 }), false, 0, ""},
		{"refused, no setting", open, false, unix.EPERM, "seccomp filter or security module"},
		{"refused, no setting, root", open, true, unix.EACCES, "seccomp filter or security module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.diagnose(tt.root, tt.errno)
			if tt.mentions == "" {
				assert.NoError(t, err)
				return
			}
			var fe *FeatureError
			require.ErrorAs(t, err, &fe)
			assert.ErrorIs(t, err, ErrNotSupported)
			assert.Equal(t, "user namespaces", fe.Feature)
			assert.Contains(t, err.Error(), tt.mentions)
			if tt.errno != 0 {
				assert.Contains(t, err.Error(), unix.ErrnoName(tt.errno))
			}
		})
	}
}

func TestDeniedInside(t *testing.T) {
	restricted := userNSSettings{maxUserNS: 100, unprivClone: -1, apparmorRestrict: 1}
	open := userNSSettings{maxUserNS: 100, unprivClone: -1, apparmorRestrict: 0}
	err := deniedInside("make-private", unix.EPERM, restricted, false)
	assert.ErrorIs(t, err, ErrNotSupported)
	assert.Contains(t, fmt.Sprint(err), "kernel.apparmor_restrict_unprivileged_userns is 1")
	assert.Contains(t, fmt.Sprint(err), "setup step make-private failed")
	assert.NoError(t, deniedInside("make-private", unix.EPERM, restricted, true), "root is not restricted")
	assert.NoError(t, deniedInside("make-private", unix.EPERM, open, false))
	assert.NoError(t, deniedInside("bind", unix.EACCES, restricted, false), "a bind source the user may not read is its own error")
	assert.NoError(t, deniedInside("make-private", unix.ENOENT, restricted, false))
}

// usernsHelperEnv starts the test binary as usernsHelper.
const usernsHelperEnv = testutil.HelperEnv

// TestBlockedUserNamespaces lowers user.max_user_namespaces to 0 for real,
// in a user namespace of the test's own (the limit is per namespace and
// its owner may set it), and checks that a sandbox started there fails
// with a *FeatureError that names the setting and the fix. The helper
// first starts a sandbox with the limit untouched, so the failure cannot
// come from anything else.
func TestBlockedUserNamespaces(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	helper := exec.Command("/proc/self/exe")
	helper.Env = append(os.Environ(), usernsHelperEnv+"=userns", "STOCKADE_TEST_BUSYBOX="+bb)
	helper.Stderr = os.Stderr
	// uid 1000 in its own user namespace, with CAP_SYS_RESOURCE there to
	// write the namespace's limit: an ordinary user as far as the sandbox
	// package can tell.
	helper.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 1000, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 1000, HostID: os.Getegid(), Size: 1}},
		Credential:  &syscall.Credential{Uid: 1000, Gid: 1000, NoSetGroups: true},
		AmbientCaps: []uintptr{unix.CAP_SYS_RESOURCE},
		Pdeathsig:   unix.SIGKILL,
	}
	out, err := helper.Output()
	require.NoError(t, err, "helper output:\n%s", out)
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		got[k] = v
	}
	t.Logf("the error: %s", got["error"])
	assert.Equal(t, "ok", got["control"], "a sandbox must start before the limit is lowered")
	assert.Equal(t, "0", got["limit"])
	assert.Equal(t, "true", got["feature-error"], "error: %s", got["error"])
	assert.Equal(t, "true", got["not-supported"])
	assert.Equal(t, "true", got["enospc"])
	assert.Equal(t, "true", got["nothing-started"])
	assert.Contains(t, got["error"], "user.max_user_namespaces is 0")
	assert.Contains(t, got["error"], "sysctl -w user.max_user_namespaces=")
}

// usernsHelper, in the helper process of TestBlockedUserNamespaces, runs a
// sandbox, lowers its namespace's limit to 0, runs another and prints what
// happened. It reports whether this process is such a helper.
func usernsHelper() bool {
	if os.Getenv(usernsHelperEnv) != "userns" {
		return false
	}
	bb := os.Getenv("STOCKADE_TEST_BUSYBOX")
	cfg := Config{Args: []string{bb, "true"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := New(cfg).Run(ctx); err != nil {
		fmt.Println("control", strings.ReplaceAll(err.Error(), "\n", " "))
	} else {
		fmt.Println("control ok")
	}
	if err := os.WriteFile(maxUserNSFile, []byte("0"), 0); err != nil {
		fmt.Println("write", err)
		return true
	}
	b, _ := os.ReadFile(maxUserNSFile)
	fmt.Println("limit", strings.TrimSpace(string(b)))
	sb := New(cfg)
	err := sb.Start(ctx)
	var fe *FeatureError
	fmt.Println("error", strings.ReplaceAll(fmt.Sprint(err), "\n", " "))
	fmt.Println("feature-error", errors.As(err, &fe))
	fmt.Println("not-supported", errors.Is(err, ErrNotSupported))
	fmt.Println("enospc", errors.Is(err, unix.ENOSPC))
	fmt.Println("nothing-started", pid1(sb) == 0)
	return true
}
