package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stockade/stockade/sandbox"
)

// ConfigFile is the name of a bundle's configuration file.
const ConfigFile = "config.json"

// Load reads bundleDir's config.json and maps it with FromSpec. A field
// config.json holds that the runtime-spec types do not know is refused
// too, as a *sandbox.ConfigError naming the file: a setting this package
// cannot read is one it cannot honour.
func Load(bundleDir string) (sandbox.Config, error) {
	spec, err := ReadSpec(filepath.Join(bundleDir, ConfigFile))
	if err != nil {
		return sandbox.Config{}, err
	}
	return FromSpec(spec, bundleDir)
}

// ReadSpec reads and decodes the runtime-spec configuration in file. A
// field the runtime-spec types do not know, or JSON that does not decode,
// is a *sandbox.ConfigError whose Field is the file's name; a file that
// cannot be read is returned as the *fs.PathError it is.
func ReadSpec(file string) (*specs.Spec, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var spec specs.Spec
	if err := dec.Decode(&spec); err != nil {
		return nil, &sandbox.ConfigError{Field: filepath.Base(file), Err: err}
	}
	if dec.More() {
		return nil, &sandbox.ConfigError{Field: filepath.Base(file), Err: errors.New("holds more than one JSON value")}
	}
	return &spec, nil
}

// FromSpec maps a runtime-spec configuration to a sandbox Config. Relative
// paths in it (root.path, bind sources) are taken relative to bundleDir.
//
// Every field of spec either maps to a Config field, or is ignored for a
// reason the package documentation gives, or is refused. The error lists
// every refusal, each a *sandbox.ConfigError whose Field is the path in the
// spec ("linux.seccomp.syscalls[3].names[2]", "mounts[2].options[1]"), so
// errors.As finds the first and errors.Is(err, sandbox.ErrInvalidConfig)
// matches. When nothing is refused the Config is validated with
// Config.Validate, and its error, if any, is reported the same way, under
// the spec path the bad field came from; all but one: that this host
// cannot apply the spec's cgroup limits for this caller (a
// *sandbox.FeatureError), which Start reports, since the caller may yet
// set Limits.CgroupParent or Limits.BestEffort. FromSpec changes nothing
// on the system; Validate reads (once per process) what the host's control
// groups offer when the spec sets limits.
func FromSpec(spec *specs.Spec, bundleDir string) (sandbox.Config, error) {
	if spec == nil {
		return sandbox.Config{}, &sandbox.ConfigError{Field: "spec", Err: errors.New("is nil")}
	}
	m := &mapper{spec: spec, bundle: bundleDir}
	m.run()
	if len(m.errs) > 0 {
		return sandbox.Config{}, joinErrs(m.errs)
	}
	if err := m.cfg.Validate(); err != nil && !errors.Is(err, sandbox.ErrNotSupported) {
		return sandbox.Config{}, m.translate(err)
	}
	// A *sandbox.FeatureError says that this host cannot apply the limits
	// (Validate checks them last, so the rest is valid): that is for
	// Start to report, once the caller has had a chance to set
	// Limits.CgroupParent or Limits.BestEffort.
	return m.cfg, nil
}

// mapper holds the state of one FromSpec.
type mapper struct {
	spec   *specs.Spec
	bundle string
	cfg    sandbox.Config
	errs   []error
	// origins record which spec path each Config field came from, for
	// reporting Validate's errors in the spec's terms.
	origins []origin
	// mountAt holds the destinations of spec mounts that became Config
	// mounts, and the sandbox's own mounts that a spec entry stood for.
	mountAt []mountOrigin
}

type origin struct {
	field, path string
}

type mountOrigin struct {
	dest string
	// config is the index in Config.Mounts, -1 for the sandbox's own.
	config int
	spec   specs.Mount
}

func (m *mapper) refuse(path, format string, args ...any) {
	m.errs = append(m.errs, &sandbox.ConfigError{Field: path, Err: fmt.Errorf(format, args...)})
}

func (m *mapper) from(field, path string) {
	m.origins = append(m.origins, origin{field, path})
}

func (m *mapper) run() {
	s := m.spec
	for _, p := range []struct {
		set  bool
		name string
	}{
		{s.Solaris != nil, "solaris"},
		{s.Windows != nil, "windows"},
		{s.VM != nil, "vm"},
		{s.ZOS != nil, "zos"},
		{s.FreeBSD != nil, "freebsd"},
	} {
		if p.set {
			m.refuse(p.name, "is the configuration of another platform; the sandbox runs Linux containers")
		}
	}
	if s.Hooks != nil && !hooksEmpty(s.Hooks) {
		m.refuse("hooks", "hooks are run by a runtime command, which this package is not; run them around the sandbox yourself")
	}
	if s.Domainname != "" {
		m.refuse("domainname", "the sandbox sets no NIS domain name (it stays \"(none)\" in its UTS namespace)")
	}
	m.cfg.Hostname = s.Hostname
	if m.cfg.Hostname == "" {
		// The sandbox never shows the host's name.
		m.cfg.Hostname = sandbox.DefaultHostname
	}
	m.from("Hostname", "hostname")
	m.root()
	m.process()
	linux := s.Linux
	if linux == nil {
		linux = &specs.Linux{}
	}
	m.namespaces(linux)
	m.mounts()
	m.paths(linux)
	m.linux(linux)
	m.resources(linux.Resources)
	m.seccomp(linux.Seccomp)
	m.workDir()
}

func hooksEmpty(h *specs.Hooks) bool {
	//nolint:staticcheck // Prestart is deprecated but still read.
	return len(h.Prestart) == 0 && len(h.CreateRuntime) == 0 && len(h.CreateContainer) == 0 &&
		len(h.StartContainer) == 0 && len(h.Poststart) == 0 && len(h.Poststop) == 0
}

func (m *mapper) root() {
	r := m.spec.Root
	if r == nil || r.Path == "" {
		m.refuse("root.path", "must name the container's root file system")
		return
	}
	dir := r.Path
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(m.bundle, dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		m.refuse("root.path", "%v", err)
		return
	}
	m.cfg.RootDir = abs
	m.cfg.WritableRoot = !r.Readonly
	m.from("RootDir", "root.path")
	m.from("WritableRoot", "root.readonly")
	// Without a user namespace, a runtime run by host root runs the
	// container as host root, to which the root file system's files
	// belong: the sandbox, which always has a user namespace, keeps their
	// on-disk ids (linux.namespaces is checked in full by namespaces).
	if os.Geteuid() == 0 && !hasNamespace(m.spec.Linux, specs.UserNamespace) {
		m.cfg.RootIDMap = true
		m.from("RootIDMap", "linux.namespaces")
	}
}

// hasNamespace reports whether l lists a namespace of type t.
func hasNamespace(l *specs.Linux, t specs.LinuxNamespaceType) bool {
	return l != nil && slices.ContainsFunc(l.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == t })
}

// translate reports an error of Config.Validate under the spec path the
// field came from.
func (m *mapper) translate(err error) error {
	var ce *sandbox.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	best := -1
	for i, o := range m.origins {
		if hasFieldPrefix(ce.Field, o.field) && (best < 0 || len(o.field) > len(m.origins[best].field)) {
			best = i
		}
	}
	if best < 0 {
		return err
	}
	o := m.origins[best]
	path := o.path
	if strings.HasPrefix(o.field, "Security.Seccomp") && o.path == "linux.seccomp" {
		// The policy's rules are the spec's syscalls, one for one.
		path += seccompFieldPath(strings.TrimPrefix(ce.Field, "Security.Seccomp"))
	}
	return &sandbox.ConfigError{Field: path, Err: fmt.Errorf("%w (sandbox field %s)", ce.Err, ce.Field)}
}

func hasFieldPrefix(field, prefix string) bool {
	if !strings.HasPrefix(field, prefix) {
		return false
	}
	rest := field[len(prefix):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// seccompFieldPath turns the rest of a Security.Seccomp field path, in Go's
// names of runtime-spec's fields (".Syscalls[3].Names[2]"), into the
// spec's JSON names (".syscalls[3].names[2]").
func seccompFieldPath(rest string) string {
	r := strings.NewReplacer(
		".Syscalls", ".syscalls", ".Names", ".names", ".Action", ".action",
		".ErrnoRet", ".errnoRet", ".Args", ".args", ".Index", ".index",
		".Op", ".op", ".ValueTwo", ".valueTwo", ".Value", ".value",
		".DefaultAction", ".defaultAction", ".DefaultErrnoRet", ".defaultErrnoRet",
		".Flags", ".flags", ".ListenerPath", ".listenerPath",
	)
	return r.Replace(rest)
}

// joinErrs returns the only error of errs as it is, or all of them joined.
func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return &refusals{errs}
}

// refusals is more than one refusal. errors.As and errors.Is see each.
type refusals struct{ errs []error }

func (r *refusals) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d fields of the spec are refused:", len(r.errs))
	for _, e := range r.errs {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

func (r *refusals) Unwrap() []error { return r.errs }
