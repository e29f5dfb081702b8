package main

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/stockade/stockade/oci"
	"github.com/stockade/stockade/sandbox"
)

// bundleFlags are the flags that may go with --bundle or --config: what a
// runtime-spec configuration cannot say, and how stockade reports.
var bundleFlags = []string{
	"bundle", "config", "time-limit", "cpu-time", "output-limit", "cgroup-parent",
	"best-effort-limits", "json", "verbose", "help",
}

func (o *runOptions) defineBundle(p *parser) {
	p.fs.StringVar(&o.bundle, "bundle", "", "run the OCI bundle in `DIR`: its config.json gives the root, command, user, mounts, namespaces, limits and defences, and what stockade cannot honour is refused by name (see package oci); COMMAND, if given, replaces the command")
	p.fs.StringVar(&o.specFile, "config", "", "like --bundle, with the OCI configuration in `FILE` and paths relative to its directory")
}

// bundleConfig makes the Config of --bundle or --config: the spec's, with
// the flags that a spec cannot express on top.
func (o *runOptions) bundleConfig(fs *pflag.FlagSet, args []string) (sandbox.Config, error) {
	var bad error
	fs.Visit(func(f *pflag.Flag) {
		if bad == nil && !slices.Contains(bundleFlags, f.Name) {
			bad = usagef("--%s cannot be combined with --bundle or --config: the configuration decides it", f.Name)
		}
	})
	if bad != nil {
		return sandbox.Config{}, bad
	}
	file, dir := o.specFile, filepath.Dir(o.specFile)
	switch {
	case o.bundle != "" && o.specFile != "":
		return sandbox.Config{}, usagef("--bundle and --config exclude each other")
	case o.bundle != "":
		file, dir = filepath.Join(o.bundle, oci.ConfigFile), o.bundle
	}
	spec, err := oci.ReadSpec(file)
	if err != nil {
		return sandbox.Config{}, usagef("%s", specError(file, err))
	}
	c, err := oci.FromSpec(spec, dir)
	if err != nil {
		return sandbox.Config{}, usagef("%s", specError(file, err))
	}
	if len(args) > 0 {
		c.Args = args
	}
	c.Timeout = o.cfg.Timeout
	c.Limits.CPUTime = o.cfg.Limits.CPUTime
	c.Limits.Output = o.cfg.Limits.Output
	c.Limits.CgroupParent = o.cfg.Limits.CgroupParent
	c.Limits.BestEffort = o.cfg.Limits.BestEffort
	return c, nil
}

// specError writes each field of file that err refuses on a line of its
// own: "config.json: process.terminal: ...".
func specError(file string, err error) string {
	var lines []string
	var walk func(error)
	walk = func(e error) {
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range u.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *sandbox.ConfigError
		if errors.As(e, &ce) {
			lines = append(lines, file+": "+ce.Field+": "+ce.Err.Error())
		} else {
			lines = append(lines, e.Error())
		}
	}
	walk(err)
	return strings.Join(lines, "\n")
}
