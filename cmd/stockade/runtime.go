//go:build linux

// The OCI runtime command line: stockade as the runc binary of containerd's
// runc shim (io.containerd.runc.v2) and of ctr.
//
//	stockade [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...
//	  create --bundle DIR [--pid-file FILE] ID   make the container, its command not yet started
//	  start ID                                   start its command
//	  state ID                                   print the runtime-spec state as JSON
//	  kill [--all] ID [SIGNAL]                   signal the command (SIGTERM unless named)
//	  delete [--force] ID                        remove a stopped container (--force: any)
//	  exec [--detach] [--pid-file FILE] --process FILE ID | ID COMMAND...
//	  ps [--format table|json] ID                list the container's host pids
//	  features                                   what this runtime supports, as JSON
//	  spec [--bundle DIR]                        write a config.json stockade accepts
//
// Every failure prints "stockade: MESSAGE" on standard error (and in the
// --log file, as {"level":"error","msg":...} with --log-format json, where
// the shim looks for it) and exits 1, as runc does.
//
// # The monitor
//
// A runc container outlives "runc create": runc's init waits in the new
// namespaces on a fifo until "runc start". A stockade sandbox dies with the
// process that owns it, so "stockade create" re-executes stockade as a
// monitor (stockade runtime-monitor, in a session of its own) that owns the
// container for the rest of its life, and returns once the monitor is
// ready. The monitor
//
//   - holds the container's Config (the bundle's config.json through package
//     oci) and the standard streams create was given, which become the
//     container process's;
//   - writes the state, --root/ID/state.json, always whole (written beside
//     it and renamed) and under an flock of the directory, which delete takes
//     too;
//   - serves start, kill, exec and delete on a seqpacket socket,
//     --root/ID/sock, one request per connection;
//   - makes the sandbox at create (sandbox.Start with no command of its
//     own: namespaces, mounts, control group, and its pid 1 waiting), runs
//     the container's process in it at start (Sandbox.Command), passes
//     kill's signals to that process (Cmd.Signals), runs processes at exec
//     (Sandbox.Exec), and when the container's process ends closes the
//     sandbox, writes the exit status to the state, removes the socket and
//     exits with that status: the process's exit code, or 128 plus the
//     signal that killed it (for SIGKILL, SIGTERM, SIGINT and SIGHUP the
//     monitor kills itself with the signal, so that even the wait status is
//     the process's).
//
// A created container is therefore there to inspect, as runc's is: its
// control group at linux.cgroupsPath with its limits, and its namespaces
// at /proc/PID/ns of the pid state prints, which createRuntime and
// prestart hooks read too (a network hook may enter the namespace). The
// container's process is not the sandbox's pid 1, which only reaps, but
// a process in its namespaces like any Exec'd one; when it ends, the
// container ends, and the sandbox's other processes with it.
//
// # The pid
//
// The pid create writes to --pid-file is the monitor's; the pid state
// prints is the sandbox's pid 1 (its host pid), in the container's
// namespaces. The shim is a child subreaper: when create exits, the
// monitor, its orphaned grandchild, becomes the shim's child, and the shim
// waits for it as it waits for runc's container init. Its exit status is
// the process's (above), so what the shim reports is what runc's would
// be. A signal sent to the monitor's pid directly (SIGTERM, SIGINT,
// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) is passed on to the process, as it
// would reach runc's init; SIGKILL kills the monitor, and with it the
// whole sandbox (the sandbox dies with its owner). The sandbox's own
// processes are the monitor's descendants, and ps lists them (their host
// pids).
//
// exec works the same way: "stockade exec" connects to the monitor, hands it
// its standard streams and the process, and waits for the process to end,
// exiting with its status; with --detach it re-executes itself in a session
// of its own, writes that copy's pid to --pid-file and returns once the
// monitor has taken the request and the copy passes signals on, so the
// shim waits for that copy. A signal that copy receives (SIGTERM, SIGINT,
// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) goes to the process
// (sandbox.Cmd.Signals); SIGKILL kills the copy and with it the process.
// A process that could not be started shows as an exit status of 126 or
// 127.
//
// # After the monitor
//
// The state of a container whose monitor has gone is "stopped", whether
// the monitor exited with the command or was killed: state compares the
// recorded pid's start time with /proc, so a reused pid is not taken for
// it. delete then runs the poststop hooks, removes the state directory and
// calls sandbox.Cleanup, which removes the control group a killed monitor
// left; the sandbox's processes died with the monitor.
//
// # Hooks
//
// createRuntime and prestart run at create, once the monitor is ready,
// poststart after start, poststop at delete; each gets the state on its
// standard input and is killed at its timeout. A createRuntime or prestart
// hook that fails makes create fail and removes the container; a failing
// poststart or poststop hook is logged, and the hooks after it run, as the
// spec asks.
// createContainer and startContainer hooks run inside the container's
// namespaces, which stockade does not do: create refuses them.
//
// # Terminals
//
// A process with process.terminal (create --console-socket, exec --tty
// --console-socket) gets a terminal of the sandbox's own, which the
// monitor relays to a pseudo-terminal of the host's whose master goes to
// the console socket: see runtime_console.go.
//
// # Not supported
//
// Checkpoints, pause and resume, update, events, --preserve-fds, and the systemd cgroup
// driver: these are refused with a message naming them. runc's "run ID"
// (create, start and wait in one) is not here: "stockade run --bundle DIR"
// runs a bundle in the foreground without a container id.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/oci"
	"github.com/stockade/stockade/sandbox"
)

// runtimeCommands are the subcommands of the runtime command line.
var runtimeCommands = []string{"create", "start", "state", "kill", "delete", "exec", "ps", "features", "spec"}

// The files of a container's state directory, --root/ID.
const (
	stateFile  = "state.json"
	socketFile = "sock"
)

// The status of a container, as the runtime-spec names it.
const (
	statusCreated = "created"
	statusRunning = "running"
	statusStopped = "stopped"
)

// rtOptions are the global flags of the runtime command line.
type rtOptions struct {
	root      string
	log       string
	logFormat string
	io        stdio
}

// rtError is a failure of a runtime command; the command exits 1.
type rtError struct{ msg string }

func (e *rtError) Error() string { return e.msg }

func rtErrorf(format string, args ...any) error { return &rtError{fmt.Sprintf(format, args...)} }

// isRuntimeCommand reports whether args call the runtime command line: a
// runtime subcommand, or global flags before one.
func isRuntimeCommand(args []string) bool {
	return len(args) > 0 && (slices.Contains(runtimeCommands, args[0]) || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help")
}

// runtimeCommand runs the runtime command line args and returns the exit
// status.
func runtimeCommand(args []string, io stdio) int {
	o := &rtOptions{io: io}
	fs := rtFlags("stockade")
	fs.StringVar(&o.root, "root", "/run/stockade", "the state directory")
	fs.StringVar(&o.log, "log", "", "write errors to `FILE` too")
	fs.StringVar(&o.logFormat, "log-format", "text", "the log's format: text or json")
	systemd := fs.Bool("systemd-cgroup", false, "refused: stockade manages its own cgroups")
	fs.Bool("debug", false, "ignored")
	fs.String("criu", "", "ignored: no checkpoints")
	fs.String("rootless", "auto", "ignored: stockade decides from the caller's ids")
	if err := fs.Parse(args); err != nil {
		return o.fail(err)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o.fail(rtErrorf("--log-format: %q is neither text nor json", o.logFormat))
	}
	if *systemd {
		return o.fail(rtErrorf("--systemd-cgroup: the systemd cgroup driver is not supported; stockade makes its own cgroups (use the cgroupfs driver)"))
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return o.fail(rtErrorf("a command is needed: one of %s", strings.Join(runtimeCommands, ", ")))
	}
	var err error
	status := 0
	switch rest[0] {
	case "create":
		err = o.create(rest[1:])
	case "start":
		err = o.start(rest[1:])
	case "state":
		err = o.state(rest[1:])
	case "kill":
		err = o.kill(rest[1:])
	case "delete":
		err = o.delete(rest[1:])
	case "exec":
		status, err = o.exec(rest[1:])
	case "ps":
		err = o.ps(rest[1:])
	case "features":
		err = o.features(rest[1:])
	case "spec":
		err = o.spec(rest[1:])
	case "runtime-monitor":
		return o.monitor(rest[1:])
	default:
		err = rtErrorf("unknown command %q", rest[0])
	}
	if err != nil {
		return o.fail(err)
	}
	return status
}

func rtFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false)
	return fs
}

// fail reports err on standard error and in the log, and returns 1.
func (o *rtOptions) fail(err error) int {
	msg := strings.TrimPrefix(err.Error(), "stockade: ")
	fmt.Fprintf(o.io.err, "stockade: %s\n", msg)
	o.logf("error", "%s", msg)
	return 1
}

// logf appends a message to the --log file, if there is one.
func (o *rtOptions) logf(level, format string, args ...any) {
	if o.log == "" {
		return
	}
	f, err := os.OpenFile(o.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	msg := fmt.Sprintf(format, args...)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if o.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		f.Write(append(b, '\n'))
		return
	}
	fmt.Fprintf(f, "time=%q level=%s msg=%q\n", now, level, msg)
}

// validID is what runc accepts as a container id.
var validID = regexp.MustCompile(`^[\w+.-]+$`)

// containerDir checks id and returns its state directory.
func (o *rtOptions) containerDir(id string) (string, error) {
	if !validID.MatchString(id) || id == "." || id == ".." {
		return "", rtErrorf("invalid container id format: %q", id)
	}
	return filepath.Join(o.root, id), nil
}

// oneID parses fs from args and returns the one container id that must
// follow the flags.
func oneID(cmd string, fs *pflag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", rtErrorf("%s: %v", cmd, err)
	}
	if fs.NArg() != 1 {
		return "", rtErrorf("%s: exactly one container id is needed, got %d arguments", cmd, fs.NArg())
	}
	return fs.Arg(0), nil
}

// containerState is what the state directory records of a container.
type containerState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     time.Time         `json:"created"`
	// ContainerPid is the host pid of the sandbox's pid 1, in the
	// container's namespaces: the pid state prints and hooks read.
	ContainerPid int `json:"containerPid"`
	// PidStart is the monitor's start time (field 22 of /proc/PID/stat),
	// which tells it from a later process with the same pid.
	PidStart uint64 `json:"pidStart"`
	// Closed says the monitor closed the sandbox before it exited: nothing
	// of it is left on the host for delete to look for.
	Closed bool `json:"closed,omitempty"`
	// ExitStatus is the command's, once Status is stopped with the
	// monitor's knowledge: the exit code, or 128 plus the signal.
	ExitStatus *int `json:"exitStatus,omitempty"`
}

// publicState is the state as runc prints it.
type publicState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// specState is the runtime-spec State, which hooks read on stdin.
func (st *containerState) specState() []byte {
	ss := specs.State{Version: specs.Version, ID: st.ID, Status: specs.ContainerState(st.Status), Pid: st.ContainerPid, Bundle: st.Bundle, Annotations: st.Annotations}
	if st.Status == statusStopped {
		ss.Pid = 0
	}
	b, _ := json.Marshal(ss)
	return b
}

// load reads the state of container id, with its status brought up to
// date: a container whose monitor has gone is stopped.
func (o *rtOptions) load(id string) (*containerState, string, error) {
	dir, err := o.containerDir(id)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, dir, rtErrorf("container %q does not exist", id)
	}
	if err != nil {
		return nil, dir, err
	}
	var st containerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, dir, fmt.Errorf("read the state of %q: %w", id, err)
	}
	if st.Status != statusStopped && !alive(st.Pid, st.PidStart) {
		st.Status = statusStopped
	}
	return &st, dir, nil
}

// alive reports whether pid is still the process that started at start.
func alive(pid int, start uint64) bool {
	s, err := procStart(pid)
	return err == nil && s == start
}

// procStart returns the start time of process pid, in clock ticks since
// boot, and fails for a process that is gone or a zombie.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// save writes st whole into dir under the directory's lock.
func save(dir string, st *containerState) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	return writeFileAtomic(filepath.Join(dir, stateFile), mustJSON(st))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// writeFileAtomic writes data beside name and renames it over name, so a
// reader sees the old content or the new, never a part.
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// lockDir takes an exclusive flock of dir, bounded in time.
func lockDir(dir string) (unlock func(), err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if err != unix.EWOULDBLOCK || time.Now().After(deadline) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readSpec reads the bundle's config.json, with its hooks taken out (the
// runtime runs them; package oci refuses them), and maps it to a Config.
func readSpec(bundle string) (*specs.Spec, *specs.Hooks, sandbox.Config, error) {
	file := filepath.Join(bundle, oci.ConfigFile)
	spec, err := oci.ReadSpec(file)
	if err != nil {
		return nil, nil, sandbox.Config{}, rtErrorf("%s", specError(file, err))
	}
	hooks := spec.Hooks
	spec.Hooks = nil
	if hooks != nil {
		if len(hooks.CreateContainer) > 0 {
			return nil, nil, sandbox.Config{}, rtErrorf("%s: hooks.createContainer: not supported: stockade runs no hook inside the container's namespaces", file)
		}
		if len(hooks.StartContainer) > 0 {
			return nil, nil, sandbox.Config{}, rtErrorf("%s: hooks.startContainer: not supported: stockade runs no hook inside the container", file)
		}
	}
	cfg, err := oci.FromSpec(spec, bundle)
	if err != nil {
		return nil, nil, sandbox.Config{}, rtErrorf("%s", specError(file, err))
	}
	return spec, hooks, cfg, nil
}

// runHooks runs hooks in order with the state on their standard input and
// stops at the first that fails.
func runHooks(kind string, hooks []specs.Hook, state []byte) error {
	for i, h := range hooks {
		if err := runHook(h, state); err != nil {
			return fmt.Errorf("hooks.%s[%d] (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// warnHooks runs hooks in order as runHooks does, but past a failure: a
// poststart or poststop hook that fails is logged as a warning and "the
// remaining hooks and lifecycle continue as if the hook had succeeded"
// (runtime-spec, config.md).
func (o *rtOptions) warnHooks(kind string, hooks []specs.Hook, state []byte) {
	for i, h := range hooks {
		if err := runHook(h, state); err != nil {
			o.logf("warning", "hooks.%s[%d] (%s): %v", kind, i, h.Path, err)
		}
	}
}

func runHook(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return errors.New("timeout must be positive")
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// parseSignal reads a signal as a number or a name, with or without SIG.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, rtErrorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, rtErrorf("invalid signal %q", s)
}

// statusOf is the exit status the shim sees for a command that ran: its
// exit code, or 128 plus the signal that killed it, or SIGKILL's for a
// sandbox killed for a limit, its timeout or its end.
func statusOf(res *sandbox.Result) int {
	switch {
	case res == nil:
		return 128 + int(unix.SIGKILL)
	case res.Signal != 0:
		return 128 + int(res.Signal)
	case res.Reason == sandbox.Exited:
		return res.ExitCode
	}
	return 128 + int(unix.SIGKILL)
}

// startStatus is the exit status of a command that could not be started:
// 127 when it was not found, 126 when it could not be executed, else 125.
func startStatus(err error) int {
	var se *sandbox.SetupError
	if errors.As(err, &se) && se.Stage == "exec" {
		if se.Errno == syscall.ENOENT {
			return exitNotFound
		}
		return exitNoExec
	}
	return exitSetup
}

// exitWith ends this process with status. A status of 128 plus SIGKILL,
// SIGTERM, SIGINT or SIGHUP ends it by that signal, so that its parent
// sees the wait status the command had (Go's runtime dies by these three
// when nothing catches them); any other status is the exit status, which
// containerd's shim reads the same (it reports a signal as 128 plus its
// number).
func exitWith(status int) {
	switch sig := syscall.Signal(status - 128); sig {
	case unix.SIGKILL, unix.SIGTERM, unix.SIGINT, unix.SIGHUP:
		signal.Reset(sig)
		unix.Kill(os.Getpid(), sig)
		time.Sleep(time.Second) // the signal is on its way
	}
	os.Exit(status)
}
