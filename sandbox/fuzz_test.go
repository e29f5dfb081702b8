//go:build linux

package sandbox

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fuzz targets check validation only: they start no sandbox and so
// leave nothing on the host (the test main checks). Whatever the input,
// validation must not panic, must answer with a *ConfigError naming a field
// (or a *FeatureError naming a feature), and must never pass a string with
// a NUL byte on to a system call.

func FuzzConfig(f *testing.F) {
	f.Add("/bin/true", "x", "A=1", "/work", "sandbox", "bind", "/usr", "/usr", int64(1<<20), int64(0), int64(0), int64(0), int64(0), "", "", int64(0))
	f.Add("", "", "", "", "", "tmpfs", "", "/t", int64(-1), int64(-1), int64(-1), int64(-1), int64(-1), "a/b", "/tmp", int64(-1))
	f.Add("sh", "a\x00b", "A=\x00", "/w\x00", "h\x00", "bind", "/s\x00", "/t\x00", int64(1<<62), int64(1<<62), int64(1<<62), int64(1<<62), int64(1<<40), "\x00", "/tmp/\x00", int64(1<<62))
	f.Fuzz(func(t *testing.T, arg0, arg1, env, dir, hostname, kind, source, target string,
		size, inodes, pids, tmpfsInodes, uid int64, cgroupParent, writable string, timeout int64) {
		cfg := Config{
			Dir:         dir,
			Hostname:    hostname,
			Timeout:     time.Duration(timeout),
			UID:         int(uid),
			GID:         int(uid),
			TmpfsInodes: tmpfsInodes,
			Mounts:      []Mount{{Kind: MountKind(kind), Source: source, Target: target, Size: size, Inodes: inodes}},
			Limits:      Limits{Pids: pids, CgroupParent: cgroupParent},
		}
		if arg0 != "" || arg1 != "" {
			cfg.Args = []string{arg0, arg1}
		}
		if env != "" {
			cfg.Env = []string{env}
		}
		if writable != "" {
			cfg.Security.Landlock.WritablePaths = []string{writable}
		}
		err := cfg.Validate()
		if err != nil {
			checkValidationError(t, err, "")
			return
		}
		d := cfg.withDefaults()
		strs := []string{d.Dir, d.Hostname, d.RootDir, d.Limits.CgroupParent}
		strs = append(strs, d.Args...)
		strs = append(strs, d.Env...)
		strs = append(strs, d.Security.Landlock.WritablePaths...)
		for _, m := range d.Mounts {
			strs = append(strs, m.Source, m.Target)
		}
		for _, s := range strs {
			if strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("Validate passed a NUL byte in %q", s)
			}
		}
		if d.Limits.Pids > 1<<22 {
			t.Fatalf("Validate passed Limits.Pids %d, above what pids.max takes", d.Limits.Pids)
		}
	})
}

func FuzzCmd(f *testing.F) {
	f.Add("true", "x", "A=1", "/work", 0, 0, false, int64(0), uint8(0))
	f.Add("", "", "=", "", -1, -1, true, int64(-1), uint8(200))
	f.Add("\x00", "\x00", "A\x00=b", "/\x00", 1<<40, 70000, false, int64(1<<62), uint8(61))
	cfg := Config{}
	cfg = cfg.withDefaults()
	id := identity{uidMap: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}}
	id.gidMap = id.uidMap
	null, err := os.Open(os.DevNull)
	if err != nil {
		f.Fatal(err)
	}
	defer null.Close()
	f.Fuzz(func(t *testing.T, arg0, arg1, env, dir string, uid, gid int, root bool, timeout int64, files uint8) {
		cmd := Cmd{Dir: dir, UID: uid, GID: gid, RunAsRoot: root, Timeout: time.Duration(timeout)}
		if arg0 != "" || arg1 != "" {
			cmd.Args = []string{arg0, arg1}
		}
		if env != "" {
			cmd.Env = []string{env}
		}
		for range files {
			cmd.ExtraFiles = append(cmd.ExtraFiles, null)
		}
		x, err := cmd.request(&cfg, id)
		if err != nil {
			checkValidationError(t, err, "Cmd.")
			return
		}
		for _, s := range append(append([]string{x.Path, x.Dir}, x.Args...), x.Env...) {
			if strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("request passed a NUL byte in %q", s)
			}
		}
		switch {
		case x.Path == "" || len(x.Args) == 0:
			t.Fatal("request passed a command without a path")
		case !id.maps(x.UID, x.GID):
			t.Fatalf("request passed unmapped ids %d:%d", x.UID, x.GID)
		case len(cmd.ExtraFiles) > maxExecFiles:
			t.Fatalf("request passed %d extra files", len(cmd.ExtraFiles))
		}
	})
}

// checkValidationError fails unless err is a *ConfigError naming a field
// that starts with prefix, or a *FeatureError naming a feature.
func checkValidationError(t *testing.T, err error, prefix string) {
	t.Helper()
	var ce *ConfigError
	var fe *FeatureError
	switch {
	case errors.As(err, &ce):
		if ce.Field == "" || !strings.HasPrefix(ce.Field, prefix) || ce.Err == nil {
			t.Fatalf("a ConfigError that names no field of %q: %v", prefix, err)
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%v does not match ErrInvalidConfig", err)
		}
	case errors.As(err, &fe):
		if fe.Feature == "" {
			t.Fatalf("a FeatureError that names no feature: %v", err)
		}
	default:
		t.Fatalf("an untyped error: %T %v", err, err)
	}
}
