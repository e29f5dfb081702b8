//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// The helpers of os/exec, on the same terms: Output, CombinedOutput,
// StdinPipe, StdoutPipe and StderrPipe, for a sandbox's own command and
// for a process of a running sandbox (a Cmd made by Sandbox.Command).

// Output runs the command and returns its standard output, as in os/exec.
func (s *Sandbox) Output(ctx context.Context) ([]byte, error) {
	var stdout lockedBuffer
	var stderr *headTail
	s.mu.Lock()
	err := s.runnableLocked()
	if err == nil && s.cfg.Stdout != nil {
		err = configErr("Stdout", "already set; Output collects it")
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.cfg.Stdout = &stdout
	if s.cfg.Stderr == nil {
		stderr = &headTail{}
		s.cfg.Stderr = stderr
	}
	s.mu.Unlock()
	_, err = s.Run(ctx)
	return stdout.Bytes(), withStderr(err, stderr)
}

// CombinedOutput is Output with standard error in the same stream.
func (s *Sandbox) CombinedOutput(ctx context.Context) ([]byte, error) {
	var out lockedBuffer
	s.mu.Lock()
	err := s.runnableLocked()
	switch {
	case err != nil:
	case s.cfg.Stdout != nil:
		err = configErr("Stdout", "already set; CombinedOutput collects it")
	case s.cfg.Stderr != nil:
		err = configErr("Stderr", "already set; CombinedOutput collects it")
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.cfg.Stdout, s.cfg.Stderr = &out, &out
	s.mu.Unlock()
	_, err = s.Run(ctx)
	return out.Bytes(), err
}

// StdinPipe returns a pipe to the command's standard input, as in os/exec.
func (s *Sandbox) StdinPipe() (io.WriteCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.notStartedLocked(); err != nil {
		return nil, err
	}
	if s.cfg.Stdin != nil {
		return nil, configErr("Stdin", "already set; StdinPipe connects it")
	}
	r, w, err := s.pipes.stdin()
	if err != nil {
		return nil, err
	}
	s.cfg.Stdin = r
	return w, nil
}

// StdoutPipe returns a pipe from the command's standard output, as in os/exec.
func (s *Sandbox) StdoutPipe() (io.ReadCloser, error) {
	return s.outputPipe("Stdout", &s.cfg.Stdout)
}

// StderrPipe is StdoutPipe for the command's standard error.
func (s *Sandbox) StderrPipe() (io.ReadCloser, error) {
	return s.outputPipe("Stderr", &s.cfg.Stderr)
}

func (s *Sandbox) outputPipe(field string, w *io.Writer) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.notStartedLocked(); err != nil {
		return nil, err
	}
	if *w != nil {
		return nil, configErr(field, "already set; %sPipe connects it", field)
	}
	pw, r, err := s.pipes.output()
	if err != nil {
		return nil, err
	}
	*w = pw
	return r, nil
}

func (s *Sandbox) notStartedLocked() error {
	if s.started {
		return ErrStarted
	}
	return nil
}

// runnableLocked is notStartedLocked for Output and CombinedOutput, which
// run the command: a sandbox without one is refused as Run refuses it,
// before its config is touched.
func (s *Sandbox) runnableLocked() error {
	if err := s.notStartedLocked(); err != nil {
		return err
	}
	if len(s.cfg.Args) == 0 {
		return configErr("Args", "Output and CombinedOutput need a command")
	}
	return nil
}

// Command returns a Cmd to run in the sandbox, as exec.Command does.
func (s *Sandbox) Command(name string, arg ...string) *Cmd {
	return &Cmd{Args: append([]string{name}, arg...), sb: s, run: &cmdRun{}}
}

// cmdRun is the state of a Cmd made by Command.
type cmdRun struct {
	mu      sync.Mutex // guards started, pipes and tty
	started bool
	pipes   stdPipes
	tty     *os.File      // the master of the process's terminal (Cmd.TTY)
	done    chan struct{} // closed once res and err are final
	res     *Result
	err     error
}

// errNoSandbox is returned by the methods of a Cmd that Sandbox.Command
// did not make.
var errNoSandbox = errors.New("stockade: Cmd not made by Sandbox.Command: use Sandbox.Exec")

// Start returns once the process runs; cancelling ctx kills it.
func (c *Cmd) Start(ctx context.Context) error {
	if c.sb == nil || c.run == nil {
		return errNoSandbox
	}
	r := c.run
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return ErrStarted
	}
	r.started = true
	r.done = make(chan struct{})
	r.mu.Unlock()
	x := *c
	started := make(chan struct{})
	var once sync.Once
	x.onStart = func(tty *os.File) {
		once.Do(func() {
			r.mu.Lock()
			r.tty = tty
			r.mu.Unlock()
			close(started)
		})
	}
	go func() {
		r.res, r.err = c.sb.exec(ctx, x)
		close(r.done)
	}()
	select {
	case <-started:
	case <-r.done:
		// Ended before it was seen to run: a Result (a process killed
		// before its exec) counts as run; no Result is a start that failed.
		if r.res == nil {
			r.mu.Lock()
			r.pipes.afterStart(r.err)
			r.mu.Unlock()
			return r.err
		}
	}
	r.mu.Lock()
	r.pipes.afterStart(nil)
	r.mu.Unlock()
	return nil
}

// Wait waits for the process, as Exec does, and closes its pipes.
func (c *Cmd) Wait() (*Result, error) {
	if c.sb == nil || c.run == nil {
		return nil, errNoSandbox
	}
	r := c.run
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return nil, ErrNotStarted
	}
	<-r.done
	r.mu.Lock()
	r.pipes.afterWait()
	r.mu.Unlock()
	return r.res, r.err
}

// Run starts the process and waits for it: Exec.
func (c *Cmd) Run(ctx context.Context) (*Result, error) {
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c.Wait()
}

// Output is Sandbox.Output for the process.
func (c *Cmd) Output(ctx context.Context) ([]byte, error) {
	if err := c.notStarted(); err != nil {
		return nil, err
	}
	if c.Stdout != nil {
		return nil, configErr("Cmd.Stdout", "already set; Output collects it")
	}
	var stdout lockedBuffer
	var stderr *headTail
	c.Stdout = &stdout
	if c.Stderr == nil {
		stderr = &headTail{}
		c.Stderr = stderr
	}
	_, err := c.Run(ctx)
	return stdout.Bytes(), withStderr(err, stderr)
}

// CombinedOutput is Sandbox.CombinedOutput for the process.
func (c *Cmd) CombinedOutput(ctx context.Context) ([]byte, error) {
	if err := c.notStarted(); err != nil {
		return nil, err
	}
	if c.Stdout != nil {
		return nil, configErr("Cmd.Stdout", "already set; CombinedOutput collects it")
	}
	if c.Stderr != nil {
		return nil, configErr("Cmd.Stderr", "already set; CombinedOutput collects it")
	}
	var out lockedBuffer
	c.Stdout, c.Stderr = &out, &out
	_, err := c.Run(ctx)
	return out.Bytes(), err
}

// StdinPipe is Sandbox.StdinPipe for the process.
func (c *Cmd) StdinPipe() (io.WriteCloser, error) {
	if err := c.notStarted(); err != nil {
		return nil, err
	}
	if c.Stdin != nil {
		return nil, configErr("Cmd.Stdin", "already set; StdinPipe connects it")
	}
	c.run.mu.Lock()
	r, w, err := c.run.pipes.stdin()
	c.run.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c.Stdin = r
	return w, nil
}

// StdoutPipe is Sandbox.StdoutPipe for the process.
func (c *Cmd) StdoutPipe() (io.ReadCloser, error) { return c.outputPipe("Stdout", &c.Stdout) }

// StderrPipe is StdoutPipe for the process's standard error.
func (c *Cmd) StderrPipe() (io.ReadCloser, error) { return c.outputPipe("Stderr", &c.Stderr) }

func (c *Cmd) outputPipe(field string, w *io.Writer) (io.ReadCloser, error) {
	if err := c.notStarted(); err != nil {
		return nil, err
	}
	if *w != nil {
		return nil, configErr("Cmd."+field, "already set; %sPipe connects it", field)
	}
	c.run.mu.Lock()
	pw, r, err := c.run.pipes.output()
	c.run.mu.Unlock()
	if err != nil {
		return nil, err
	}
	*w = pw
	return r, nil
}

func (c *Cmd) notStarted() error {
	if c.sb == nil || c.run == nil {
		return errNoSandbox
	}
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	if c.run.started {
		return ErrStarted
	}
	return nil
}

// stdPipes holds the ends of the pipes made by StdinPipe, StdoutPipe and
// StderrPipe until they are to be closed.
type stdPipes struct {
	// inEnds are the read ends of stdin pipes, passed to the process as
	// they are: closed once it has started, or failed to.
	inEnds []*os.File
	// outEnds are the write ends of output pipes, which outputPipes closes
	// once nothing more is written to them; closed here when Start fails.
	outEnds []*os.File
	// callerEnds are the caller's: closed by Wait, or when Start fails.
	callerEnds []io.Closer
}

func (p *stdPipes) stdin() (*os.File, io.WriteCloser, error) {
	r, w, err := newPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("stockade: stdin pipe: %w", err)
	}
	wc := &closeOnce{File: w}
	p.inEnds = append(p.inEnds, r)
	p.callerEnds = append(p.callerEnds, wc)
	return r, wc, nil
}

func (p *stdPipes) output() (*pipeWriter, *os.File, error) {
	r, w, err := newPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("stockade: output pipe: %w", err)
	}
	p.outEnds = append(p.outEnds, w)
	p.callerEnds = append(p.callerEnds, r)
	return &pipeWriter{w}, r, nil
}

// afterStart closes what a start, done or failed with err, no longer
// needs.
func (p *stdPipes) afterStart(err error) {
	closeAll(p.inEnds)
	p.inEnds = nil
	if err != nil {
		closeAll(p.outEnds)
		p.afterWait()
	}
	p.outEnds = nil
}

func (p *stdPipes) afterWait() {
	for _, c := range p.callerEnds {
		c.Close()
	}
	p.callerEnds = nil
}

// pipeWriter is the write end of a pipe made by StdoutPipe or StderrPipe,
// which outputPipes passes on to the process and closes (see stream).
type pipeWriter struct{ f *os.File }

func (w *pipeWriter) Write(b []byte) (int, error) { return w.f.Write(b) }

// closeOnce is the caller's end of a stdin pipe, which both the caller and
// Wait may close.
type closeOnce struct {
	*os.File
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.File.Close() })
	return c.err
}

// withStderr adds what stderr collected to an *ExitError.
func withStderr(err error, stderr *headTail) error {
	var ee *ExitError
	if stderr != nil && errors.As(err, &ee) {
		ee.Stderr = stderr.Bytes()
	}
	return err
}

// lockedBuffer is a bytes.Buffer safe for a copy that may still write
// after its caller stopped waiting (see Config.WaitDelay).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// headTailSize is how much of each end of a standard error headTail
// keeps.
const headTailSize = 32 << 10

// headTail keeps the first and the last headTailSize bytes written to it,
// and counts those in between: the standard error that Output puts in an
// *ExitError, bounded however much the command writes.
type headTail struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte // a ring of headTailSize bytes once full; next is its start
	next    int
	omitted int64
}

func (h *headTail) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(p)
	if room := headTailSize - len(h.head); room > 0 {
		k := min(room, len(p))
		h.head = append(h.head, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		if len(h.tail) < headTailSize {
			k := min(headTailSize-len(h.tail), len(p))
			h.tail = append(h.tail, p[:k]...)
			p = p[k:]
			continue
		}
		// Full: overwrite the oldest bytes.
		k := min(headTailSize-h.next, len(p))
		copy(h.tail[h.next:], p[:k])
		h.omitted += int64(k)
		h.next = (h.next + k) % headTailSize
		p = p[k:]
	}
	return n, nil
}

func (h *headTail) Bytes() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := bytes.Clone(h.head)
	if h.omitted > 0 {
		out = fmt.Appendf(out, "\n... omitting %d bytes ...\n", h.omitted)
	}
	out = append(out, h.tail[h.next:]...)
	return append(out, h.tail[:h.next]...)
}
