package sandbox

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stockade/stockade/mount"
)

// Mount is one extra mount of a Config: a bind of a host path (read-only
// unless Writable) or a tmpfs of a given size. See package mount.
type Mount = mount.Mount

// Config describes a sandbox and the command it runs. It is plain data: the
// zero value of every field is the safe choice, and a Config holding only
// Args is ready to run untrusted code. Fields marked "parent only" stay in
// the calling process and are not sent to the sandbox.
type Config struct {
	// Args is the command and its arguments. Args[0] is looked up in the
	// PATH of Env inside the sandbox unless it holds a slash. Empty makes a
	// long-lived sandbox with no command of its own: Start prepares it,
	// Exec runs processes in it, and Close ends it.
	Args []string
	// Env is the command's environment. Nil means DefaultEnv: a PATH,
	// HOME, USER and LOGNAME, and nothing from the caller's environment.
	Env []string
	// Dir is the command's working directory inside the sandbox. A fresh
	// tmpfs owned by the command's user is mounted there unless one of
	// Mounts targets it or it is "/". Empty means "/work", except with a
	// RootDir that has no directory /work: then the root itself, "/", with
	// no tmpfs, since no mount point can be made in a read-only root (and
	// none is made in a writable one). "/" is accepted only with RootDir.
	Dir string

	// Stdin, Stdout and Stderr are the command's standard streams, as in
	// os/exec: nil means /dev/null, an *os.File is passed as it is, and any
	// other reader or writer is connected through a pipe. Parent only.
	// The command may reopen the pipes by name (/dev/stdin, /dev/stdout,
	// /dev/stderr); an *os.File only if the sandbox's user may open it,
	// as with ExtraFiles.
	Stdin  io.Reader `json:"-"`
	Stdout io.Writer `json:"-"`
	Stderr io.Writer `json:"-"`
	// ExtraFiles are open files the command receives as descriptors 3,
	// 4, and so on. Nothing else of the caller's is inherited. Parent only.
	// Reading or writing the descriptors needs no permission, but opening
	// one by name, as /dev/fd/3 (a link to /proc/self/fd/3), checks the
	// file's owner and mode against the sandbox's user, who is not the
	// caller: a pipe from os.Pipe is 0600 for the caller until it is
	// given another mode with Fchmod.
	ExtraFiles []*os.File `json:"-"`
	// TTY, when set, gives the command a pseudo-terminal of the sandbox's
	// own devpts as its standard input, output and error and its
	// controlling terminal; Stdin, Stdout, Stderr and Limits.Output must
	// then be unset, and the caller talks to the command through
	// Sandbox.Terminal. Nil: no terminal. See the package documentation's
	// section on terminals.
	TTY *TTY

	// Hostname is the host name inside the sandbox. Empty means "sandbox".
	Hostname string
	// Timeout, if positive, is how long the sandbox may run, counted from
	// Start. When it expires every process of the sandbox is killed and the
	// Result's Reason is Timeout; when it expires before the command has
	// started, Start fails with a *SetupError.
	Timeout time.Duration
	// WaitDelay bounds how long Run, Wait and Exec wait for output to be
	// copied to Stdout and Stderr once the command (or the Exec'd process)
	// has ended, as in os/exec: a writer that blocks, or a process left
	// behind that keeps the output open, holds them no longer. What was
	// not copied by then is discarded, and a command that ended well
	// returns its Result with ErrWaitDelay. So with a Timeout, Run returns
	// within Timeout plus WaitDelay. Zero means DefaultWaitDelay (1s).
	WaitDelay time.Duration
	// Limits are the sandbox's resource limits: memory, CPU, tasks, CPU
	// time, output and the per-process rlimits. The zero value limits
	// nothing but core files. See Limits.
	Limits Limits

	// UID and GID are the user and group the command runs as, inside the
	// sandbox. Zero means 1000, the unprivileged user "sandbox". To run as
	// root inside, set RunAsRoot instead.
	UID, GID int
	// RunAsRoot runs the command as uid and gid 0 inside the sandbox. That
	// root is never host root, and it holds no capabilities.
	RunAsRoot bool
	// IDMap is the range of host ids onto which the sandbox's ids 0 to
	// Size-1 map. The zero value picks one: for host root, the caller's
	// entry in /etc/subuid and /etc/subgid when there is one, else 65536 ids
	// from DefaultHostID; for an ordinary user, just the caller's own uid
	// and gid, seen inside as the command's ids. The range can never include
	// host id 0.
	IDMap IDMap
	// SubordinateIDs, for a caller that is not host root, maps the
	// sandbox's ids through the caller's ranges in /etc/subuid and
	// /etc/subgid, with the setuid helpers newuidmap and newgidmap (Debian
	// package uidmap): id 0 inside is the caller, and ids 1 and up are the
	// caller's subordinate ids, so the command (uid 1000 by default)
	// runs as a host id of its own (100999 for a range that starts at
	// 100000), owns no file of the caller, and loses the caller's
	// supplementary groups. The helpers cost 1 to 2 ms per start. False
	// maps only the caller's own uid and gid, seen inside as the command's.
	// Start fails with a *FeatureError when the caller has no range or the
	// helpers are missing; both are looked up once per process. Host root
	// always maps onto a range of its own (see IDMap); the field changes
	// nothing for it.
	SubordinateIDs bool

	// RootDir, if set, is a host directory to use as the sandbox's root
	// instead of the default view (read-only host /usr, /bin, /sbin and
	// /lib*, and a generated /etc). It is mounted read-only unless
	// WritableRoot is set, so it must already hold the directories that
	// /proc, /dev, /tmp and the working directory are mounted on; without
	// /work, and with Dir unset, the working directory is "/" (see Dir).
	RootDir string
	// WritableRoot makes RootDir writable from inside the sandbox.
	WritableRoot bool
	// Mounts are extra mounts, placed in order after the standard ones, so
	// that they may go inside /tmp or the working directory. Only mount.Bind
	// and mount.Tmpfs entries are accepted. Every target is resolved inside
	// the sandbox's root without following a link out of it. When the
	// caller is root, a symbolic link in a Bind's Source (or in RootDir) is
	// followed only when root owns it: a link that a sandbox planted in a
	// writable bind, or another user made, fails Start with an error
	// wrapping mount.ErrUntrustedLink, rather than bind what it points at
	// with root's rights. Give the resolved path instead.
	Mounts []Mount
	// TmpfsSize is the size limit in bytes of each writable tmpfs the
	// sandbox gets: /tmp, the working directory and /dev/shm. Zero means
	// 64 MiB.
	TmpfsSize int64
	// TmpfsInodes is the inode limit of each of those tmpfs. Zero means
	// 16384.
	TmpfsInodes int64
	// Ptys is the most pseudo-terminals the sandbox's own devpts (its
	// /dev/pts and /dev/ptmx) holds at once, a terminal given by TTY
	// included: opening /dev/ptmx beyond it fails with ENOSPC. Zero means
	// DefaultPtys; the most is mount.MaxPtys. The ptys of every devpts
	// also count against the host's kernel.pty.max (4096 by default), of
	// which kernel.pty.reserve (1024) only the host's own /dev/pts may
	// take: Ptys bounds one sandbox, but enough sandboxes together may
	// still use up the rest, so a host running many raises
	// kernel.pty.max.
	Ptys int64

	// Network is the sandbox's network. The zero value is a network
	// namespace of its own with only lo up. See Network.
	Network Network

	// TimeNamespace gives the sandbox a time namespace whose monotonic and
	// boot-time clocks start near zero, so that it cannot read how long the
	// host has been up. Linux 5.6.
	TimeNamespace bool

	// Security holds the defences beyond the namespaces: capabilities
	// kept, the seccomp policy, Landlock and /sys. The zero value is the
	// safe choice. See Security.
	Security Security

	// Logger, if set, receives the sandbox's records, each with the
	// attribute "sandbox", its id (see Event.Sandbox): at debug level one
	// when it has started, with the duration of every setup stage; at info
	// level one when it has ended, with its Result's reason, exit code or
	// signal, wall and CPU times and memory; warnings for degradations.
	// Parent only.
	Logger *slog.Logger `json:"-"`
	// Observer, if set, is told of the sandbox's start (or failed start)
	// and end, for counters and histograms. Parent only.
	Observer Observer `json:"-"`
}

// IDMap maps the sandbox's ids 0 to Size-1 onto the host's HostUID to
// HostUID+Size-1 (and likewise for groups).
type IDMap struct {
	HostUID uint32
	HostGID uint32
	Size    uint32
}

// The defaults a zero Config gets.
const (
	DefaultDir         = "/work"
	DefaultHostname    = "sandbox"
	DefaultUID         = 1000
	DefaultTmpfsSize   = 64 << 20
	DefaultTmpfsInodes = 16384
	DefaultPtys        = 64
	// DefaultHostID is the first host id of the range that host root's
	// sandboxes map onto when /etc/subuid has no entry for root.
	DefaultHostID = 1 << 30
	// DefaultIDMapSize is the number of ids mapped by default.
	DefaultIDMapSize = 65536
)

// DefaultPath is the PATH of DefaultEnv.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
	return d
}

func (c *Config) userName() string {
	if c.RunAsRoot {
		return "root"
	}
	return "sandbox"
}

// Validate checks the config without changing the system and returns a
// *ConfigError naming the first bad field, or nil. Limits that need a
// control group are also checked against this host's cgroups, which are
// probed once per process. Start calls it; a config that fails it never
// creates anything.
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
	return DefaultDir
}

func (c *Config) validate() error {
	if len(c.Args) > 0 && c.Args[0] == "" {
		return configErr("Args", "must name a command")
	}
	if err := validateProcess("", c.Args, c.Env, c.Dir); err != nil {
		return err
	}
	if c.Dir == "/" && c.RootDir == "" {
		return configErr("Dir", "must not be the root without RootDir")
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
	if c.IDMap != (IDMap{}) {
		if err := c.IDMap.validate(c.UID, c.GID); err != nil {
			return err
		}
	}
	if c.RootDir != "" && (!path.IsAbs(c.RootDir) || path.Clean(c.RootDir) != c.RootDir || strings.IndexByte(c.RootDir, 0) >= 0) {
		return configErr("RootDir", "must be an absolute, clean path, not %q", c.RootDir)
	}
	if c.RootDir == "" && c.WritableRoot {
		return configErr("WritableRoot", "needs RootDir")
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
		if m.Kind != mount.Bind && m.Kind != mount.Tmpfs {
			return configErr(field+".Kind", "must be %q or %q, not %q", mount.Bind, mount.Tmpfs, m.Kind)
		}
		if err := m.Validate(); err != nil {
			var fe *ConfigError
			if errors.As(err, &fe) {
				return &ConfigError{Field: field + "." + fe.Field, Err: fe.Err}
			}
			return &ConfigError{Field: field, Err: err}
		}
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
	case uint64(m.HostGID)+uint64(m.Size) > 1<<32-1:
		return configErr("IDMap.Size", "runs past the last host gid")
	case uint64(uid) >= uint64(m.Size) || uint64(gid) >= uint64(m.Size):
		return configErr("IDMap.Size", "must cover the command's uid %d and gid %d", uid, gid)
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
