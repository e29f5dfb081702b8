package sandbox

// TTY is the terminal a sandbox's command gets (Config.TTY): its size at
// the start, in character cells. Sandbox.Resize changes it later.
type TTY struct {
	// Rows and Cols are the terminal's height and width. Zero leaves the
	// kernel's zero, which full-screen programs take as unknown.
	Rows, Cols uint16
}

// validate checks a Config's TTY against the rest of c: the terminal is
// the command's standard streams, so c gives none of its own, and only a
// sandbox with a command has one to give it to.
func (t *TTY) validate(c *Config) error {
	if t == nil {
		return nil
	}
	if len(c.Args) == 0 {
		return configErr("TTY", "a sandbox without Args has no command to give a terminal to")
	}
	if c.Stdin != nil || c.Stdout != nil || c.Stderr != nil {
		return configErr("TTY", "the terminal is the command's standard input, output and error: Stdin, Stdout and Stderr must be nil")
	}
	if c.Limits.Output > 0 {
		return configErr("TTY", "Limits.Output counts what the command writes to Stdout and Stderr; the caller reads a terminal itself, so nothing would count")
	}
	return nil
}
