package sandbox

import xterm "golang.org/x/term"

// TTY asks for a terminal of the size in cells (zero: unknown).
type TTY struct {
	Rows, Cols uint16
}

// validate checks a Config's TTY against the rest of c: the terminal is
// the command's standard streams, so c gives none of its own, and only a
// sandbox with a command has one to give it to.
func (t *TTY) validate(c *Config) error {
	if t == nil {
		return nil
	}
	if c.Stdin != nil || c.Stdout != nil || c.Stderr != nil {
		return configErr("TTY", "the terminal is the command's standard input, output and error: Stdin, Stdout and Stderr must be nil")
	}
	if c.Limits.Output > 0 {
		return configErr("TTY", "Limits.Output counts what the command writes to Stdout and Stderr; the caller reads a terminal itself, so nothing would count")
	}
	// With a terminal of its own, the seccomp filter lets the sandbox set
	// terminals (job control, raw mode): any other it held would be
	// changed for good.
	for i, f := range c.ExtraFiles {
		if f != nil && xterm.IsTerminal(int(f.Fd())) {
			return configErr(fmtIndex("ExtraFiles", i), "is a terminal: a sandbox with TTY may change the settings of the terminals it holds, so it holds none but its own")
		}
	}
	return nil
}
