//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrWaitDelay comes with the Result when output outlived Config.WaitDelay.
var ErrWaitDelay = errors.New("stockade: output not copied within WaitDelay")

// OutputError comes with the Result when writing the output failed.
type OutputError struct {
	Err error
}

func (e *OutputError) Error() string { return "stockade: copy output: " + e.Err.Error() }
func (e *OutputError) Unwrap() error { return e.Err }

// outputPipes connects a process's standard output and error to the
// caller's writers, the same way for the sandbox's command and for Exec:
// an *os.File is passed as it is and nil becomes /dev/null, unless an
// output limit needs every byte counted; any other writer gets a pipe
// whose read end a goroutine copies from. Stdout and Stderr that are the
// same writer share one pipe, as in os/exec, so that the writer is never
// called from two goroutines at once.
type outputPipes struct {
	stdout, stderr *os.File   // the process's ends
	own            []*os.File // ends we opened, closed once the process has its copies
	copies         sync.WaitGroup
	done           chan struct{} // closed once every copy reached the end
	// abandoned is set when the caller stopped waiting: the copies then
	// pass nothing more to the writers and only drain the pipes.
	abandoned atomic.Bool
	mu        sync.Mutex // guards err
	err       error      // the first write error
}

// newOutputPipes prepares the process's output for stdout and stderr;
// with c, every byte is counted against an output limit first.
func newOutputPipes(stdout, stderr io.Writer, c *outputCounter) (*outputPipes, error) {
	o := &outputPipes{done: make(chan struct{})}
	var err error
	if o.stdout, err = o.stream(stdout, c); err != nil {
		o.closeChildEnds()
		return nil, err
	}
	if sameWriter(stdout, stderr) {
		o.stderr = o.stdout
	} else if o.stderr, err = o.stream(stderr, c); err != nil {
		o.closeChildEnds()
		return nil, err
	}
	go func() {
		o.copies.Wait()
		close(o.done)
	}()
	return o, nil
}

func (o *outputPipes) stream(w io.Writer, c *outputCounter) (*os.File, error) {
	// The write end of a StdoutPipe or StderrPipe is closed as soon as
	// nothing more is written to it: once the process has its copy, or
	// once the copy counting its bytes ends.
	var closeAfter *os.File
	if c != nil && c.copiedOnly {
		switch w.(type) {
		case nil, *os.File, *pipeWriter:
			c = nil // written to directly: the default limit leaves it alone
		}
	}
	if p, ok := w.(*pipeWriter); ok {
		if c == nil {
			o.own = append(o.own, p.f)
			return p.f, nil
		}
		closeAfter = p.f
	}
	if c == nil {
		switch f := w.(type) {
		case nil:
			null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				return nil, err
			}
			o.own = append(o.own, null)
			return null, nil
		case *os.File:
			return f, nil
		}
	} else {
		w = &limitWriter{c: c, w: w}
	}
	pr, pw, err := newPipe()
	if err != nil {
		return nil, err
	}
	o.own = append(o.own, pw)
	o.copies.Add(1)
	go o.copy(w, pr, closeAfter)
	return pw, nil
}

// copy passes what the process writes on to w until every writer of the
// pipe closed it, and then closes closeAfter, if not nil. After a write
// error, or once the caller stopped waiting, it goes on reading and
// discards, so that the process never blocks on a full pipe.
func (o *outputPipes) copy(w io.Writer, r, closeAfter *os.File) {
	defer o.copies.Done()
	defer r.Close()
	if closeAfter != nil {
		defer closeAfter.Close()
	}
	buf := make([]byte, 32<<10)
	failed := false
	for {
		n, rerr := r.Read(buf)
		if n > 0 && !failed && !o.abandoned.Load() {
			m, werr := w.Write(buf[:n])
			if werr == nil && m < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				failed = true
				o.mu.Lock()
				if o.err == nil {
					o.err = werr
				}
				o.mu.Unlock()
			}
		}
		if rerr != nil {
			return
		}
	}
}

// closeChildEnds closes the ends that the process holds its own copies of
// now (or that it will never get).
func (o *outputPipes) closeChildEnds() {
	for _, f := range o.own {
		f.Close()
	}
	o.own = nil
}

// wait waits until the output has been copied, but no longer than until
// deadline: then the copies are abandoned (a writer blocked in Write is
// left to return on its own, and nothing more is passed to the writers)
// and it returns ErrWaitDelay. It returns an *OutputError when a write
// failed.
func (o *outputPipes) wait(deadline time.Time) error {
	select {
	case <-o.done:
	default:
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-o.done:
		case <-t.C:
			o.abandoned.Store(true)
			return ErrWaitDelay
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return &OutputError{Err: o.err}
	}
	return nil
}

// waitDelay returns d, or DefaultWaitDelay for zero.
func waitDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultWaitDelay
	}
	return d
}

// outputVerdict returns the error of a run whose Result is res and whose
// output ended with outErr: an *ExitError when the command did not succeed
// (the verdict comes first), else outErr.
func outputVerdict(res *Result, cause, outErr error) error {
	if !res.Success() {
		return &ExitError{Result: res, cause: cause}
	}
	return outErr
}

// newPipe returns a pipe for a process's standard stream whose inode
// anyone may open (mode 0666): the command may then reopen its end by
// name, as /dev/stdin, /dev/stdout, /dev/stderr or /dev/fd/N, which go
// through /proc/self/fd. Such a reopen checks the inode's permissions, and
// a pipe is made 0600 for its creator, the owner, whose uid the sandbox's
// user never is. The mode opens nothing else: a pipe has no name, and only
// a process that may read another's /proc/PID/fd (one that may ptrace it)
// can reach the ends that process holds.
func newPipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	// Through the raw connection, as f.Fd() would turn the pipe blocking.
	sc, err := r.SyscallConn()
	if err == nil {
		cerr := sc.Control(func(fd uintptr) { err = unix.Fchmod(int(fd), 0o666) })
		err = errors.Join(cerr, err)
	}
	if err != nil {
		r.Close()
		w.Close()
		return nil, nil, fmt.Errorf("chmod pipe: %w", err)
	}
	return r, w, nil
}
