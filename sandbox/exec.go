//go:build linux

package sandbox

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	xterm "golang.org/x/term"

	"github.com/stockade/stockade/internal/proto"
)

// Cmd is a process to Exec in a running sandbox; zero fields take its Config.
type Cmd struct {
	Args       []string // required; looked up like Config.Args
	Env        []string
	Dir        string
	UID, GID   int
	RunAsRoot  bool
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	ExtraFiles []*os.File
	Timeout    time.Duration         // kills the process (Reason Timeout), not the sandbox
	Signals    <-chan syscall.Signal // each is sent to the process alone
	TTY        *TTY                  // a terminal (Cmd.Terminal); needs Sandbox.Command and Config.TTY

	sb  *Sandbox // the sandbox of a Cmd made by Sandbox.Command
	run *cmdRun  // its Start and Wait (see outputhelpers.go)
	// onStart, set by Cmd.Start, is called once the process runs, with
	// the master of its terminal (Cmd.TTY), else nil.
	onStart func(tty *os.File)
}

// Exec runs cmd in the running sandbox and waits for it; ctx ends only cmd.
func (s *Sandbox) Exec(ctx context.Context, cmd Cmd) (*Result, error) {
	cmd.onStart = nil
	return s.exec(ctx, cmd)
}

// exec is Exec, which calls cmd.onStart, if set, once the process runs.
func (s *Sandbox) exec(ctx context.Context, cmd Cmd) (*Result, error) {
	start := time.Now()
	s.mu.Lock()
	if err := s.runningLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	cfg, id := s.cfg.withDefaults(), s.id
	raw := s.raw != nil
	s.mu.Unlock()
	x, err := cmd.request(&cfg, id)
	if err != nil {
		return nil, err
	}
	if err := cmd.checkTerminals(&cfg); err != nil {
		return nil, err
	}
	if raw {
		return s.rawExec(ctx, cmd, x, &cfg, start)
	}
	lim := s.execLimits(&cfg)
	st, err := newStdio(&cmd, lim.output)
	if err != nil {
		return nil, setupErr("exec", x.Path, err)
	}

	s.mu.Lock()
	err = s.runningLocked()
	select {
	case <-s.readDone:
		// The init is gone, and watch closes its socket under s.mu.
		err = ErrFinished
	default:
	}
	if err != nil {
		s.mu.Unlock()
		st.closeChildEnds()
		return nil, err
	}
	s.nextExec++
	x.ID = s.nextExec
	reports := make(chan *proto.Report, 2) // Started or Failed, then Exited
	s.execs[x.ID] = reports
	fds := st.childFDs()
	if x.TTY {
		fds = fds[3:] // the init gives it the terminal instead
	}
	err = s.sendFiles(&proto.Request{Exec: x}, fds)
	s.mu.Unlock()
	st.closeChildEnds() // the init has its own copies now
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return nil, ErrFinished // the init is gone
	}
	if err != nil {
		return nil, setupErr("exec", x.Path, err)
	}

	// The init answers Started or Failed, then Exited. Every wait, the
	// first too, ends with ctx, the timeout or the end of the sandbox, which
	// closes reports. A kill sent before Started reaches the process all
	// the same: the init serves requests in order.
	var timer <-chan time.Time
	if cmd.Timeout > 0 {
		t := time.NewTimer(cmd.Timeout - time.Since(start))
		defer t.Stop()
		timer = t.C
	}
	var killed Reason
	var cause error
	var rep *proto.Report
	started := false
	ended := false // the sandbox ended first, and the process with it
	hit := lim.hit
	sigs := cmd.Signals
	for rep == nil {
		select {
		case sig := <-sigs:
			s.signal(x.ID, sig)
		case r, ok := <-reports:
			switch {
			case !ok && !started:
				return nil, ErrFinished
			case !ok:
				ended = true
				rep = &proto.Report{Kind: proto.Exited, Status: int(unix.SIGKILL)}
			case r.Kind == proto.Failed && r.Errno == int(unix.ESHUTDOWN):
				return nil, ErrFinished // the init refused: the sandbox is ending
			case r.Kind == proto.Failed:
				return nil, &SetupError{Stage: r.Stage, Path: r.Path, Errno: unix.Errno(r.Errno), Err: errors.New(r.Message)}
			case r.Kind == proto.Started:
				started = true
				s.mu.Lock()
				tty, ok := s.execTTYs[x.ID]
				delete(s.execTTYs, x.ID)
				s.mu.Unlock()
				var m *os.File
				if ok {
					m, _ = masterFile(tty) // nil when it fails, as without
				}
				if cmd.onStart != nil {
					cmd.onStart(m)
				} else if m != nil {
					m.Close()
				}
			case r.Kind == proto.Exited:
				rep = r
			}
		case r := <-hit:
			if killed == 0 {
				killed = r
			}
			hit = nil
			s.signal(x.ID, unix.SIGKILL)
		case <-ctx.Done():
			if killed == 0 {
				killed, cause = Cancelled, context.Cause(ctx)
			}
			ctx = context.Background()
			s.signal(x.ID, unix.SIGKILL)
		case <-timer:
			if killed == 0 {
				killed = Timeout
			}
			timer = nil
			s.signal(x.ID, unix.SIGKILL)
		}
	}
	outErr := st.out.wait(time.Now().Add(waitDelay(cfg.WaitDelay)))
	res := &Result{ExitCode: -1, Wall: time.Since(start)}
	fillStatus(res, rep)
	s.filterVerdict(res)
	if killed == 0 && ended {
		killed, cause = s.endReason(time.Now().Add(waitDelay(cfg.WaitDelay)))
	}
	lim.verdict(res, killed)
	return res, outputVerdict(res, cause, outErr)
}

// request checks cmd and turns it into an Exec request, with the sandbox's
// defaults filled in.
func (cmd *Cmd) request(cfg *Config, id identity) (*proto.Exec, error) {
	x := &proto.Exec{Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir, UID: cmd.UID, GID: cmd.GID}
	if len(x.Args) == 0 || x.Args[0] == "" {
		return nil, configErr("Cmd.Args", "must name a command")
	}
	x.Path = x.Args[0]
	if x.Env == nil {
		x.Env = cfg.Env
	}
	if x.Dir == "" {
		x.Dir = cfg.Dir
	}
	switch {
	case cmd.RunAsRoot && (cmd.UID != 0 || cmd.GID != 0):
		return nil, configErr("Cmd.UID", "must be zero when RunAsRoot is set")
	case cmd.RunAsRoot:
	default:
		if x.UID == 0 {
			x.UID = cfg.UID
		}
		if x.GID == 0 {
			x.GID = cfg.GID
		}
	}
	if err := validateProcess("Cmd.", x.Args, x.Env, x.Dir); err != nil {
		return nil, err
	}
	if !id.maps(x.UID, x.GID) {
		return nil, configErr("Cmd.UID", "ids %d:%d are not mapped in this sandbox", x.UID, x.GID)
	}
	for i, f := range cmd.ExtraFiles {
		if f == nil {
			return nil, configErr(fmtIndex("Cmd.ExtraFiles", i), "must not be nil")
		}
	}
	if len(cmd.ExtraFiles) > maxExecFiles {
		return nil, configErr("Cmd.ExtraFiles", "%d files are more than the %d one request carries", len(cmd.ExtraFiles), maxExecFiles)
	}
	if cmd.Timeout < 0 {
		return nil, configErr("Cmd.Timeout", "must not be negative")
	}
	if t := cmd.TTY; t != nil {
		x.TTY, x.TTYRows, x.TTYCols = true, int(t.Rows), int(t.Cols)
	}
	return x, nil
}

// checkTerminals checks cmd's terminal (Cmd.TTY) against the sandbox's
// Config cfg, and keeps every other terminal out of a sandbox whose filter
// lets it set terminals (Config.TTY): what a process changed on a
// terminal of the caller would stay changed.
func (cmd *Cmd) checkTerminals(cfg *Config) error {
	if cmd.TTY != nil {
		switch {
		case cmd.onStart == nil:
			return configErr("Cmd.TTY", "only a Cmd made by Sandbox.Command and run with Start hands out its terminal; Exec cannot")
		case cfg.TTY == nil:
			return configErr("Cmd.TTY", "the sandbox has no Config.TTY: only a sandbox with terminals of its own lets its processes set them")
		case cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil:
			return configErr("Cmd.TTY", "the terminal is the process's standard input, output and error: Stdin, Stdout and Stderr must be nil")
		}
	}
	if cfg.TTY == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"Cmd.Stdin", cmd.Stdin}, {"Cmd.Stdout", cmd.Stdout}, {"Cmd.Stderr", cmd.Stderr}} {
		if isTerminal(f.v) {
			return configErr(f.name, "is a terminal: a sandbox with TTY may change the settings of the terminals it holds, so it holds none but its own")
		}
	}
	for i, f := range cmd.ExtraFiles {
		if isTerminal(f) {
			return configErr(fmtIndex("Cmd.ExtraFiles", i), "is a terminal: a sandbox with TTY may change the settings of the terminals it holds, so it holds none but its own")
		}
	}
	return nil
}

// isTerminal reports whether v is an *os.File open on a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && f != nil && xterm.IsTerminal(int(f.Fd()))
}

// maxExecFiles is the most ExtraFiles an Exec request carries: the
// packet's descriptors less the standard streams and a packed request's
// memory file.
const maxExecFiles = proto.MaxFiles - 4

// signal asks the init to send sig to the process of an Exec request.
func (s *Sandbox) signal(id int64, sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runningLocked() == nil {
		send(s.conn, &proto.Request{Signal: int(sig), Target: id})
		if sig == unix.SIGKILL {
			// The init must run to deliver it, and so must the target to
			// die of it, in a group frozen from outside too.
			s.lim.thaw(s.cfg.Logger)
		}
	}
}

// sendFiles writes a request with descriptors on the init's socket. The
// caller holds s.mu.
func (s *Sandbox) sendFiles(req *proto.Request, fds []int) error {
	b, err := req.MarshalBinary()
	if err != nil {
		return err
	}
	return writeFiles(s.conn, b, fds)
}

// stdio holds the standard streams and extra files of an Exec'd process:
// the ends the process gets, and its output's pipes (see outputPipes).
type stdio struct {
	stdinW  *os.File   // the write end of a stdin pipe fed by a goroutine, or nil
	child   []*os.File // standard input, output, error, then extra files
	closeIn []*os.File // child ends the parent opened and closes once sent
	out     *outputPipes
}

// newStdio prepares cmd's streams; with c, its output counts against an
// output limit.
func newStdio(cmd *Cmd, c *outputCounter) (*stdio, error) {
	st := &stdio{}
	if err := st.input(cmd.Stdin); err != nil {
		st.closeChildEnds()
		return nil, err
	}
	out, err := newOutputPipes(cmd.Stdout, cmd.Stderr, c)
	if err != nil {
		st.closeChildEnds()
		return nil, err
	}
	st.out = out
	st.child = append(st.child, out.stdout, out.stderr)
	st.closeIn = append(st.closeIn, out.own...)
	st.child = append(st.child, cmd.ExtraFiles...)
	return st, nil
}

func (st *stdio) input(r io.Reader) error {
	switch f := r.(type) {
	case nil:
		return st.null()
	case *os.File:
		st.child = append(st.child, f)
	default:
		pr, pw, err := newPipe()
		if err != nil {
			return err
		}
		st.child, st.closeIn = append(st.child, pr), append(st.closeIn, pr)
		st.stdinW = pw
		// Not waited for, as in Sandbox.Start: a reader that blocks forever
		// must not hold up the result.
		go func() {
			io.Copy(pw, r)
			pw.Close()
		}()
	}
	return nil
}

// null gives the process /dev/null.
func (st *stdio) null() error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	st.child, st.closeIn = append(st.child, null), append(st.closeIn, null)
	return nil
}

func (st *stdio) childFDs() []int {
	fds := make([]int, len(st.child))
	for i, f := range st.child {
		fds[i] = int(f.Fd())
	}
	return fds
}

// abandon closes what st holds for a process that never started: the
// child ends and the feed of its standard input. The output's copies then
// reach their end.
func (st *stdio) abandon() {
	st.closeChildEnds()
	if st.stdinW != nil {
		st.stdinW.Close()
	}
}

func (st *stdio) closeChildEnds() {
	for _, f := range st.closeIn {
		f.Close()
	}
	st.closeIn = nil
}
