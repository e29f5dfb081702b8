package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stockade/stockade/sandbox"
)

// errUsage marks an error in how the command was called; main prints it with
// a pointer to --help and exits with status 2.
var errUsage = errors.New("usage")

// usageError is a bad flag or argument, named in the message.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Is(t error) bool {
	return t == errUsage
}

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// parser wraps a pflag.FlagSet with what pflag lacks: flags that take two
// arguments (pairValue).
type parser struct {
	fs           *pflag.FlagSet
	pending      *pairValue // a pair flag that has its first argument only
	pendingFirst string
}

func newParser(name string) *parser {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned and printed by main
	fs.SetInterspersed(false)
	fs.SortFlags = false
	return &parser{fs: fs}
}

// pair defines a flag that takes two arguments.
func (p *parser) pair(name, args, usage string, add func(a, b string) error) {
	p.fs.Var(&pairValue{name: name, usage: args, p: p, add: add}, name, usage)
}

// parse parses args up to the first argument that is not a flag, or "--",
// and returns the rest. pflag stops at the second argument of a pair flag,
// since it does not know about it; parse takes it and goes on.
func (p *parser) parse(args []string) ([]string, error) {
	for {
		err := p.fs.ParseAll(args, func(f *pflag.Flag, value string) error {
			if v := p.pending; v != nil {
				return fmt.Errorf("flag --%s needs two arguments (%s), but --%s follows %q", v.name, v.usage, f.Name, p.pendingFirst)
			}
			return p.fs.Set(f.Name, value)
		})
		if err != nil {
			return nil, &usageError{err.Error()}
		}
		rest := p.fs.Args()
		v := p.pending
		if v == nil {
			return rest, nil
		}
		p.pending = nil
		n := len(args) - len(rest) // the arguments pflag consumed
		if len(rest) == 0 || n > 0 && args[n-1] == "--" {
			return nil, usagef("flag --%s needs two arguments (%s), got %q only", v.name, v.usage, p.pendingFirst)
		}
		if err := v.add(p.pendingFirst, rest[0]); err != nil {
			return nil, usagef("invalid arguments %q %q for --%s: %v", p.pendingFirst, rest[0], v.name, err)
		}
		args = rest[1:]
	}
}

// runOptions are the flags of "stockade run", and what they make of a
// sandbox.Config.
type runOptions struct {
	cfg      sandbox.Config
	root     bool // --root
	user     bool // --user was given
	clearenv bool
	env      []string
	// mountFlags records, for each of cfg.Mounts, the flag and arguments
	// that made it, to name them in errors.
	mountFlags []string
	json       bool
	// jsonTo is where --json writes: "fd:2" (stderr, the default), "fd:N"
	// or a file name; jsonW is it opened, set by openJSON.
	jsonTo  string
	jsonW   io.Writer
	verbose bool
	// cleanups undo what the flags left on the host (the files of --file
	// and --bind-data); runCommand runs them at the end.
	cleanups []func()
	tty      bool // -t
	help     bool
	// bundle and specFile are --bundle and --config; fs is the flag set,
	// to tell which flags were given with them.
	bundle, specFile string
	fs               *pflag.FlagSet
	img              imageRun // --image and its flags: image_run_linux.go
}

// The fields of sandbox.Config that the flags set, for naming the flag in a
// *sandbox.ConfigError. Mounts are named by mountFlags.
var fieldFlags = []struct{ field, flag string }{
	{"Args", "the command"},
	{"TTY", "--tty"},
	{"Env", "--env"},
	{"Dir", "--chdir"},
	{"Hostname", "--hostname"},
	{"Timeout", "--time-limit"},
	{"UID", "--user"},
	{"GID", "--user"},
	{"IDMap", "--user"},
	{"SubordinateIDs", "--subordinate-ids"},
	{"RootDir", "--rootfs"},
	{"WritableRoot", "--writable-rootfs"},
	{"TmpfsSize", "--tmpfs-size"},
	{"TimeNamespace", "--time-namespace"},
	{"Limits.Memory", "--memory"},
	{"Limits.Swap", "--memory"},
	{"Limits.CPU", "--cpus"},
	{"Limits.Pids", "--pids"},
	{"Limits.CPUTime", "--cpu-time"},
	{"Limits.Output", "--output-limit"},
	{"Limits.CgroupParent", "--cgroup-parent"},
	{"Network", "--net"},
	{"Network.Join", "--net"},
	{"Security.SeccompProfile", "--seccomp"},
	{"Security.Capabilities", "--cap-add"},
}

// defineRun defines the flags of "stockade run" on p. Each flag sets one
// field of o.cfg; a new sandbox feature is a new line here and one in
// fieldFlags.
func (o *runOptions) define(p *parser) {
	fs := p.fs
	c := &o.cfg
	fs.StringVar(&c.RootDir, "rootfs", "", "use host directory `DIR` as the root, read-only (it must hold /proc, /dev, /tmp, the working directory and every mount point); default: read-only host /usr, /bin, /sbin, /lib* and a generated /etc")
	fs.BoolVar(&c.WritableRoot, "writable-rootfs", false, "make the --rootfs directory writable")
	p.pair("bind", "SRC DST", "bind host path SRC read-write at DST; what the command writes there is SRC's owner's (as root, root's: set-user-ID programs too)", func(src, dst string) error {
		return o.addBind("--bind", src, dst, true)
	})
	p.pair("ro-bind", "SRC DST", "bind host path SRC read-only at DST", func(src, dst string) error {
		return o.addBind("--ro-bind", src, dst, false)
	})
	p.pair("dev-bind", "SRC DST", "bind host path SRC read-write at DST with its device nodes usable (not nodev), as bwrap's --dev-bind; the sandbox's Landlock rules let it write to device nodes under /dev only", func(src, dst string) error {
		if err := o.addBind("--dev-bind", src, dst, true); err != nil {
			return err
		}
		c.Mounts[len(c.Mounts)-1].Device = true
		return nil
	})
	p.pair("symlink", "SRC DST", "make a symbolic link at DST whose text is SRC, as bwrap's --symlink; DST is in the sandbox's own memory (the generated root, /tmp, the working directory or a --tmpfs), never in a host directory", func(src, dst string) error {
		c.Mounts = append(c.Mounts, sandbox.Mount{Kind: sandbox.Symlink, Source: src, Target: dst})
		o.mountFlags = append(o.mountFlags, "--symlink "+src+" "+dst)
		return nil
	})
	p.pair("file", "FD DST", "copy what descriptor FD holds to a writable file at DST, as bwrap's --file (stockade keeps the copy in a private host directory until the end of the run, mode 0666)", func(fd, dst string) error {
		return o.addData("--file", fd, dst, true)
	})
	p.pair("bind-data", "FD DST", "copy what descriptor FD holds to a read-only file at DST, as bwrap's --bind-data", func(fd, dst string) error {
		return o.addData("--bind-data", fd, dst, false)
	})
	fs.Func("tmpfs", "mount an empty tmpfs at `DST`, owned by the command's user, of --tmpfs-size", func(dst string) error {
		c.Mounts = append(c.Mounts, sandbox.Mount{Kind: sandbox.Tmpfs, Target: dst, Mode: 0o755})
		o.mountFlags = append(o.mountFlags, "--tmpfs "+dst)
		return nil
	})
	fs.Var(sizeValue{&c.TmpfsSize}, "tmpfs-size", "size of each tmpfs: /tmp, the working directory, /dev/shm and --tmpfs (default 64m)")
	fs.StringVar(&c.Dir, "chdir", "", "working directory `DIR`, a fresh tmpfs unless a mount targets it (default /work)")
	fs.StringArrayVar(&o.env, "env", nil, "set environment variable `K=V` (repeatable)")
	p.pair("setenv", "VAR VALUE", "set environment variable VAR to VALUE, as bwrap does", func(k, v string) error {
		o.env = append(o.env, k+"="+v)
		return nil
	})
	fs.BoolVar(&o.clearenv, "clearenv", false, "start from an empty environment instead of PATH, HOME, USER and LOGNAME (nothing of the caller's environment is ever passed)")
	fs.StringVar(&c.Hostname, "hostname", "", "host `NAME` inside the sandbox (default sandbox)")
	fs.Var(userValue{&c.UID, &c.GID, &o.user}, "user", "run the command as UID and GID inside (default 1000:1000)")
	fs.BoolVar(&o.root, "root", false, "run the command as root inside the sandbox (never host root; no capabilities)")
	fs.BoolVar(&c.SubordinateIDs, "subordinate-ids", false, "for an ordinary user: map ids through /etc/subuid and /etc/subgid with newuidmap")
	fs.BoolVar(&c.TimeNamespace, "time-namespace", false, "give the sandbox a time namespace whose clocks start near zero")
	fs.Var(durationValue{&c.Timeout}, "time-limit", "wall-clock limit; the sandbox is killed after it")
	fs.Var(sizeValue{&c.Limits.Memory}, "memory", "memory limit, swap off; the command is OOM-killed beyond it")
	fs.Float64Var(&c.Limits.CPU, "cpus", 0, "CPU bandwidth of `N` CPUs (0.5 is half of one)")
	fs.Int64Var(&c.Limits.Pids, "pids", 0, "allow at most `N` processes and threads at once, the init stage's included (N >= 8)")
	fs.Var(durationValue{&c.Limits.CPUTime}, "cpu-time", "CPU time limit of the whole sandbox; it is killed beyond it")
	fs.Var(sizeValue{&c.Limits.Output}, "output-limit", "most bytes the command may write to stdout and stderr together")
	fs.StringVar(&c.Limits.CgroupParent, "cgroup-parent", "", "create the sandbox's cgroup under `PATH`, relative to stockade's own cgroup or absolute (default stockade)")
	fs.BoolVar(&c.Limits.BestEffort, "best-effort-limits", false, "for an ordinary user without a delegated cgroup: apply rlimits instead of failing")
	fs.Func("net", "network: `none` (default: only loopback), host (the host's network, NOT isolated), link (a veth link to the host; the sandbox reaches only its gateway) or the path of a network namespace to join (/run/netns/NAME; as root)", func(v string) error {
		n := &c.Network
		n.ShareHost, n.Link, n.Join = false, nil, ""
		switch {
		case v == "none":
		case v == "host":
			n.ShareHost = true
		case v == "link":
			n.Link = &sandbox.Link{}
		case strings.HasPrefix(v, "/"):
			n.Join = v
		default:
			return fmt.Errorf("want none, host, link or a namespace's path, not %q", v)
		}
		return nil
	})
	fs.Func("seccomp", "use the Docker-format seccomp profile in `FILE` instead of the default filter", func(file string) error {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		c.Security.SeccompProfile = b
		return nil
	})
	fs.Func("cap-add", "keep capability `CAP` (such as CAP_NET_BIND_SERVICE or net_bind_service; repeatable) in the sandbox's user namespace; each one opens more of the kernel to the command", func(name string) error {
		c.Security.Capabilities = append(c.Security.Capabilities, capName(name))
		return nil
	})
	o.fs = fs
	o.defineBundle(p)
	o.img.define(p)
	fs.BoolVarP(&o.tty, "tty", "t", false, "give the command a terminal of the sandbox's own, connected to stockade's, which is in raw mode meanwhile (TERM=xterm unless --env sets it); standard input must be a terminal")
	fs.Var(jsonValue{o}, "json", "print the result as one JSON object on stderr; --json=FILE writes it to FILE, --json=fd:N to descriptor N, apart from the command's output")
	fs.Lookup("json").NoOptDefVal = "true"
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print a summary of the result on stderr")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
}

func (o *runOptions) addBind(flag, src, dst string, writable bool) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	o.cfg.Mounts = append(o.cfg.Mounts, sandbox.Mount{Kind: sandbox.Bind, Source: abs, Target: dst, Writable: writable})
	o.mountFlags = append(o.mountFlags, flag+" "+src+" "+dst)
	return nil
}

// config completes the Config from the flags and the command.
func (o *runOptions) config(args []string) (sandbox.Config, error) {
	if o.bundle != "" || o.specFile != "" {
		return o.bundleConfig(o.fs, args)
	}
	c := o.cfg
	if len(args) == 0 && !o.img.given() {
		return c, usagef("missing the command to run")
	}
	c.Args = args
	if c.RootDir != "" {
		abs, err := filepath.Abs(c.RootDir)
		if err != nil {
			return c, usagef("--rootfs: %v", err)
		}
		c.RootDir = abs
	}
	switch {
	case o.root && o.user:
		return c, usagef("--root and --user exclude each other")
	case o.root || o.user && c.UID == 0 && c.GID == 0:
		c.RunAsRoot, c.UID, c.GID = true, 0, 0
	case o.user && c.UID == 0:
		return c, usagef("--user: uid 0 is root; use --root (gid 0 comes with it)")
	case o.user && c.GID == 0:
		return c, usagef("--user: gid 0 is root's group; it comes only with --root")
	}
	uid, gid, home := c.UID, c.GID, c.Dir
	if !c.RunAsRoot && uid == 0 {
		uid, gid = sandbox.DefaultUID, sandbox.DefaultUID
	}
	if home == "" {
		home = sandbox.DefaultDir
	}
	if !o.clearenv {
		name := "sandbox"
		if c.RunAsRoot {
			name = "root"
		}
		c.Env = sandbox.DefaultEnv(name, home)
	} else {
		c.Env = []string{}
	}
	c.Env = mergeEnv(c.Env, o.env)
	for i := range c.Mounts {
		if m := &c.Mounts[i]; m.Kind == sandbox.Tmpfs {
			m.Size = c.TmpfsSize
			if m.Size == 0 {
				m.Size = sandbox.DefaultTmpfsSize
			}
			m.UID, m.GID = uid, gid
		}
	}
	return c, nil
}

// mergeEnv returns base with the K=V entries of set added, replacing an
// entry of base with the same key.
func mergeEnv(base, set []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// flagFor names the flag behind a *sandbox.ConfigError's field.
func (o *runOptions) flagFor(field string) string {
	if rest, ok := strings.CutPrefix(field, "Mounts["); ok {
		n, sub, _ := strings.Cut(rest, "]")
		if i, err := strconv.Atoi(n); err == nil && i < len(o.mountFlags) {
			switch sub {
			case ".Source":
				return o.mountFlags[i] + ": SRC"
			case ".Target":
				return o.mountFlags[i] + ": DST"
			}
			return o.mountFlags[i]
		}
	}
	for _, f := range fieldFlags {
		if field == f.field || strings.HasPrefix(field, f.field+"[") || strings.HasPrefix(field, f.field+".") {
			return f.flag
		}
	}
	return field
}

// durationMS writes d in milliseconds with two decimals.
func durationMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}
