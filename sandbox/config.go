package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stockade/stockade/mount"
)

// Config describes a sandbox and the command it runs: plain data whose zero
// fields are the safe choice; json:"-" fields stay in the calling process.
type Config struct {
	Args []string // the command, looked up in Env's PATH; empty: a long-lived sandbox
	Env  []string // nil means DefaultEnv, nothing of the caller's
	Dir  string   // a fresh tmpfs; empty means /work, or / for a RootDir without it

	Stdin      io.Reader  `json:"-"` // as in os/exec, as are Stdout, Stderr and ExtraFiles
	Stdout     io.Writer  `json:"-"`
	Stderr     io.Writer  `json:"-"`
	ExtraFiles []*os.File `json:"-"` // fds 3, 4 …
	TTY        *TTY       // a terminal as stdio, for Sandbox.Terminal; allows Cmd.TTY

	Hostname  string            // empty means "sandbox"
	Sysctl    map[string]string // settings of its own net and IPC namespaces; see sysctl.go
	Timeout   time.Duration     // kills the whole run (Reason Timeout)
	WaitDelay time.Duration     // for output after the end; zero: DefaultWaitDelay
	Limits    Limits

	UID, GID       int          // inside; zero means 1000, "sandbox"
	RunAsRoot      bool         // root inside: never host root, no capabilities
	Groups         []int        // supplementary, also of Exec's; needs host root or SubordinateIDs
	Umask          *fs.FileMode // nil: the caller's
	IDMap          IDMap
	SubordinateIDs bool // an ordinary user's /etc/subuid ranges (newuidmap): none of its files

	RootDir      string   // a host directory as the root, holding the mount points
	WritableRoot bool     // RootDir writable; else read-only
	RootIDMap    bool     // RootDir's files keep their on-disk ids inside (host root; see the internals doc)
	Overlay      *Overlay // image layers under an upper layer; not with RootDir
	Mounts       []Mount  // after the standard ones; no link leads out of the root (Symlink: see there)
	TmpfsSize    int64    // of /tmp, Dir and /dev/shm; zero: DefaultTmpfsSize
	TmpfsInodes  int64    // zero: DefaultTmpfsInodes
	Ptys         int64    // most ptys of its devpts; zero: DefaultPtys
	Mqueue       bool     // the IPC namespace's mqueue file system at /dev/mqueue

	RootPropagation string // of the root's own mount, inside only: "shared" or "unbindable"; "": private

	Network       Network
	TimeNamespace bool // hides the host's uptime from its clocks; Linux 5.6
	Security      Security

	Logger   *slog.Logger `json:"-"` // told of starts and ends, as is Observer
	Observer Observer     `json:"-"`
}

// IDMap maps ids 0 to Size-1 onto the host's from HostUID and HostGID; zero:
// for root, ids no running sandbox shares; else the caller's own.
type IDMap struct {
	HostUID uint32
	HostGID uint32
	Size    uint32
	GIDSize uint32 // group ids mapped, if not Size (OCI gidMappings)
}

// gidSize is the number of group ids m maps.
func (m IDMap) gidSize() uint32 {
	if m.GIDSize != 0 {
		return m.GIDSize
	}
	return m.Size
}

// The defaults of zero fields, DefaultEnv's PATH, and a Pool's most.
const (
	DefaultDir              = "/work"
	DefaultHostname         = "sandbox"
	DefaultUID              = 1000
	DefaultTmpfsSize        = 64 << 20
	DefaultTmpfsInodes      = 16384
	DefaultPtys             = 64
	DefaultHostID           = 1 << 30
	DefaultIDPoolSize       = 1 << 30 // 16384 slots
	DefaultIDMapSize        = 65536
	DefaultOverlaySize      = 256 << 20 // Overlay.Size
	DefaultWaitDelay        = time.Second
	DefaultPath             = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	DefaultNetworkPoolSize  = 2
	MaxPoolSize             = 1 << 16
	DefaultInotifyInstances = 128
	DefaultInotifyWatches   = 8192
	DefaultSignalsPending   = 1024
)

// DefaultEnv returns the environment a command gets when Config.Env is nil.
func DefaultEnv(user, home string) []string {
	return []string{
		"PATH=" + DefaultPath,
		"HOME=" + home,
		"USER=" + user,
		"LOGNAME=" + user,
	}
}

// clone returns a copy of c that shares no slices with it.
func (c *Config) clone() Config {
	d := *c
	d.Args = slices.Clone(c.Args)
	d.Env = slices.Clone(c.Env)
	d.ExtraFiles = slices.Clone(c.ExtraFiles)
	d.Mounts = slices.Clone(c.Mounts)
	d.Network = c.Network.clone()
	d.Security = c.Security.clone()
	if c.TTY != nil {
		t := *c.TTY
		d.TTY = &t
	}
	if c.Overlay != nil {
		o := *c.Overlay
		o.Layers = slices.Clone(o.Layers)
		d.Overlay = &o
	}
	return d
}

// withDefaults returns a copy of c with every zero field that has a default
// filled in. The id map is filled in separately, since it depends on who
// the caller is.
func (c *Config) withDefaults() Config {
	d := c.clone()
	if d.Dir == "" {
		d.Dir = d.defaultDir()
	}
	if d.Hostname == "" {
		d.Hostname = DefaultHostname
	}
	if !d.RunAsRoot {
		if d.UID == 0 {
			d.UID = DefaultUID
		}
		if d.GID == 0 {
			d.GID = DefaultUID
		}
	}
	if d.Env == nil {
		d.Env = DefaultEnv(d.userName(), d.Dir)
	}
	if d.TmpfsSize == 0 {
		d.TmpfsSize = DefaultTmpfsSize
	}
	if d.TmpfsInodes == 0 {
		d.TmpfsInodes = DefaultTmpfsInodes
	}
	if d.Ptys == 0 {
		d.Ptys = DefaultPtys
	}
	if d.Overlay != nil && d.Overlay.Dir == "" && d.Overlay.Size == 0 {
		d.Overlay.Size = DefaultOverlaySize
	}
	return d
}

func (c *Config) userName() string {
	if c.RunAsRoot {
		return "root"
	}
	return "sandbox"
}

// Validate checks the config without changing the system; Start calls it.
func (c *Config) Validate() error {
	d := c.withDefaults()
	return d.validate()
}

// defaultDir is the working directory of a Config without Dir:
// DefaultDir, or the root itself when RootDir has no directory DefaultDir
// to mount the working directory's tmpfs on.
func (c *Config) defaultDir() string {
	if c.RootDir != "" {
		fi, err := os.Lstat(filepath.Join(c.RootDir, DefaultDir))
		if err != nil || !fi.IsDir() {
			return "/"
		}
	}
	if c.Overlay != nil && !c.Overlay.hasDir(DefaultDir) {
		return "/"
	}
	return DefaultDir
}

func (c *Config) validate() error {
	if len(c.Args) > 0 && c.Args[0] == "" {
		return configErr("Args", "must name a command")
	}
	if err := validateProcess("", c.Args, c.Env, c.Dir); err != nil {
		return err
	}
	if c.Dir == "/" && c.RootDir == "" && c.Overlay == nil {
		return configErr("Dir", "must not be the root without RootDir or Overlay")
	}
	if len(c.Args) == 0 && (c.Stdin != nil || len(c.ExtraFiles) > 0) {
		return configErr("Stdin", "a sandbox without Args has no command to give it to")
	}
	if err := c.TTY.validate(c); err != nil {
		return err
	}
	if err := checkHostname(c.Hostname); err != nil {
		return &ConfigError{Field: "Hostname", Err: err}
	}
	if c.Timeout < 0 {
		return configErr("Timeout", "must not be negative")
	}
	if c.WaitDelay < 0 {
		return configErr("WaitDelay", "must not be negative")
	}
	if c.RunAsRoot && (c.UID != 0 || c.GID != 0) {
		return configErr("UID", "must be zero when RunAsRoot is set")
	}
	if c.UID < 0 || c.GID < 0 {
		return configErr("UID", "must not be negative")
	}
	if uint64(c.UID) > maxID || uint64(c.GID) > maxID {
		return configErr("UID", "ids run from 0 to %d, not %d:%d", int64(maxID), c.UID, c.GID)
	}
	for i, g := range c.Groups {
		if g < 0 || uint64(g) > maxID {
			return configErr(fmtIndex("Groups", i), "ids run from 0 to %d, not %d", int64(maxID), g)
		}
	}
	if c.Umask != nil && *c.Umask&^fs.ModePerm != 0 {
		return configErr("Umask", "must hold permission bits only, not %v", *c.Umask)
	}
	if err := c.validateSysctl(); err != nil {
		return err
	}
	if c.IDMap != (IDMap{}) {
		if err := c.IDMap.validate(c.UID, c.GID); err != nil {
			return err
		}
	}
	if c.RootDir != "" && (!path.IsAbs(c.RootDir) || path.Clean(c.RootDir) != c.RootDir || strings.IndexByte(c.RootDir, 0) >= 0) {
		return configErr("RootDir", "must be an absolute, clean path, not %q", c.RootDir)
	}
	if err := c.Overlay.validate(c); err != nil {
		return err
	}
	if err := mount.Propagation(c.RootPropagation).Validate(); err != nil {
		return &ConfigError{Field: "RootPropagation", Err: err}
	}
	if c.RootDir == "" && c.WritableRoot {
		return configErr("WritableRoot", "needs RootDir")
	}
	if c.RootIDMap && c.RootDir == "" {
		return configErr("RootIDMap", "needs RootDir")
	}
	if c.RootIDMap && os.Geteuid() != 0 {
		return configErr("RootIDMap", "needs host root: an ordinary user's sandbox may not idmap the host's file systems")
	}
	if c.TmpfsSize < 0 {
		return configErr("TmpfsSize", "must not be negative")
	}
	if c.Ptys < 0 || c.Ptys > mount.MaxPtys {
		return configErr("Ptys", "must be from 0 to %d, not %d", mount.MaxPtys, c.Ptys)
	}
	if c.TmpfsInodes < 0 || c.TmpfsInodes > mount.MaxInodes {
		return configErr("TmpfsInodes", "must be from 0 to %d, not %d", int64(mount.MaxInodes), c.TmpfsInodes)
	}
	for i := range c.Mounts {
		m := &c.Mounts[i]
		field := fmtIndex("Mounts", i)
		switch m.Kind {
		case Bind, Tmpfs, Mask, ReadOnlyPath, Symlink:
		case Node:
			if os.Geteuid() != 0 {
				return configErr(field+".Kind", "a device node is made by host root only")
			}
		default:
			return configErr(field+".Kind", "must be %q, %q, %q, %q, %q or %q, not %q", Bind, Tmpfs, Mask, ReadOnlyPath, Symlink, Node, m.Kind)
		}
		pm := c.planMount(*m)
		if err := pm.Validate(); err != nil {
			var fe *ConfigError
			if errors.As(err, &fe) {
				return &ConfigError{Field: field + "." + fe.Field, Err: fe.Err}
			}
			return &ConfigError{Field: field, Err: err}
		}
	}
	if err := c.validateSymlinks(); err != nil {
		return err
	}
	for i, f := range c.ExtraFiles {
		if f == nil {
			return configErr(fmtIndex("ExtraFiles", i), "must not be nil")
		}
	}
	if err := c.validateNetwork(); err != nil {
		return err
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	return c.Limits.validate()
}

// validateProcess checks the fields a Config and a Cmd share; prefix is
// prepended to the field names.
// Each string must also fit execve's limit on one string; the limit on all
// of them together depends on the stack rlimit, and execve itself reports
// it (E2BIG) as a *SetupError.
func validateProcess(prefix string, args, env []string, dir string) error {
	// Dir first: the default environment's HOME holds it.
	if !path.IsAbs(dir) || path.Clean(dir) != dir || strings.IndexByte(dir, 0) >= 0 {
		return configErr(prefix+"Dir", "must be an absolute, clean path, not %q", truncate(dir))
	}
	for i, a := range args {
		if err := checkExecString(a); err != nil {
			return &ConfigError{Field: prefix + fmtIndex("Args", i), Err: err}
		}
	}
	for i, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return configErr(prefix+fmtIndex("Env", i), "must have the form KEY=value, not %q", truncate(kv))
		}
		if err := checkExecString(kv); err != nil {
			return &ConfigError{Field: prefix + fmtIndex("Env", i), Err: err}
		}
	}
	return nil
}

// maxArgStrlen is the kernel's MAX_ARG_STRLEN: the longest string execve
// takes, its terminating NUL included.
const maxArgStrlen = 32 * 4096

// maxID is the largest user or group id: (uid_t)-1 means "no id".
const maxID = 1<<32 - 2

func checkExecString(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("must not contain a NUL byte")
	}
	if len(s) >= maxArgStrlen {
		return fmt.Errorf("is %d bytes long; execve takes at most %d (MAX_ARG_STRLEN)", len(s), maxArgStrlen-1)
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (m IDMap) validate(uid, gid int) error {
	switch {
	case m.Size == 0:
		return configErr("IDMap.Size", "must be positive")
	case m.HostUID == 0:
		return configErr("IDMap.HostUID", "must not map host root (0)")
	case m.HostGID == 0:
		return configErr("IDMap.HostGID", "must not map host root (0)")
	case uint64(m.HostUID)+uint64(m.Size) > 1<<32-1:
		return configErr("IDMap.Size", "runs past the last host uid")
	case uint64(m.HostGID)+uint64(m.gidSize()) > 1<<32-1:
		return configErr("IDMap.GIDSize", "runs past the last host gid")
	case uint64(uid) >= uint64(m.Size):
		return configErr("IDMap.Size", "must cover the command's uid %d", uid)
	case uint64(gid) >= uint64(m.gidSize()):
		return configErr("IDMap.GIDSize", "must cover the command's gid %d", gid)
	}
	return nil
}

func checkHostname(h string) error {
	if len(h) > 64 {
		return fmt.Errorf("must be at most 64 bytes long")
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("must hold only letters, digits, '-' and '.', not %q", r)
		}
	}
	return nil
}
