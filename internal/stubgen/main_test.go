package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStubsCurrent fails when a package's zstubs_other.go is not what
// stubgen writes from the package as it is: an exported name of a
// Linux-only file was added, removed or changed without running
// go run ./internal/stubgen.
func TestStubsCurrent(t *testing.T) {
	root := root(t)
	for _, p := range packages {
		t.Run(p, func(t *testing.T) {
			dir := filepath.Join(root, p)
			want, err := generate(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, outName))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s/%s is out of date: run go run ./internal/stubgen from the module root", p, outName)
			}
		})
	}
}

// TestStubsDeclareExported checks on a sample what the stubs must hold: the
// entry points of each package, typed data copied whole, unexported fields
// dropped, and the error of a stub naming the operation.
func TestStubsDeclareExported(t *testing.T) {
	root := root(t)
	for p, want := range map[string][]string{
		"sandbox": {
			"func (s *Sandbox) Run(ctx context.Context) (*Result, error) {\n\treturn nil, notSupported(\"Sandbox.Run\")\n}",
			"func NewPool(cfg Config, n int) (*Pool, error) {",
			"type Limits struct {",
			"type Sandbox struct {\n}",
			"func (e *OutputError) Unwrap() error { return e.Err }",
		},
		"cgroup": {
			"func Create(cfg Config) (*Group, error) {\n\treturn nil, notSupported(\"Create\")\n}",
			"func (g *Group) Stats() (Stats, error) {\n\treturn Stats{}, notSupported(\"Group.Stats\")\n}",
			"func DetectMode() Mode {\n\treturn *new(Mode)\n}",
		},
		"mount": {"func Apply(p *Plan) error {"},
		"netns": {"func New() (*NS, error) {", "func NewManager(cfg ManagerConfig) (_ *Manager, err error) {\n\treturn nil, notSupported(\"NewManager\")"},
	} {
		src, err := generate(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !bytes.Contains(src, []byte(w)) {
				t.Errorf("%s: the stubs lack\n%s", p, w)
			}
		}
		if !bytes.HasPrefix(src, []byte("// Code generated")) || !bytes.Contains(src, []byte("\n//go:build !linux\n")) {
			t.Errorf("%s: the stubs are not marked generated and built off Linux only", p)
		}
	}
}

// TestSameAPI compares the exported declarations of each package, struct
// fields included, as go doc shows them for Linux, macOS and Windows: the
// generated stubs and the hand-written ones must declare the same API.
func TestSameAPI(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command in PATH to run go doc with: %v", err)
	}
	root := root(t)
	for _, p := range packages {
		linux := apiOf(t, goTool, root, p, "linux")
		if len(linux) < 10 {
			t.Fatalf("%s: go doc shows %d declarations on Linux", p, len(linux))
		}
		for _, goos := range []string{"darwin", "windows"} {
			other := apiOf(t, goTool, root, p, goos)
			if d := diffLines(linux, other); d != "" {
				t.Errorf("%s: the API on %s differs from Linux's (- Linux, + %s):\n%s", p, goos, goos, d)
			}
		}
	}
}

// apiOf returns the declaration lines of go doc -all for package p built
// for goos: top-level declarations and the lines of their bodies, without
// comments.
func apiOf(t *testing.T, goTool, root, p, goos string) []string {
	t.Helper()
	cmd := exec.Command(goTool, "doc", "-all", "./"+p)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("GOOS=%s go doc -all ./%s: %v", goos, p, err)
	}
	var decls []string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "func "), strings.HasPrefix(line, "type "),
			strings.HasPrefix(line, "var "), strings.HasPrefix(line, "const "), line == ")", line == "}":
		case strings.HasPrefix(line, "\t") && !strings.HasPrefix(strings.TrimLeft(line, "\t"), "//"):
		default:
			continue
		}
		if i := strings.Index(line, " //"); i >= 0 {
			line = line[:i] // a field's line comment
		}
		decls = append(decls, line)
	}
	return decls
}

// diffLines lists the lines of a missing from b and of b missing from a.
func diffLines(a, b []string) string {
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		count[l]--
	}
	var d strings.Builder
	for _, l := range a {
		if count[l] > 0 {
			d.WriteString("- " + l + "\n")
			count[l]--
		}
	}
	for _, l := range b {
		if count[l] < 0 {
			d.WriteString("+ " + l + "\n")
			count[l]++
		}
	}
	return d.String()
}

// crossTargets are the systems other than Linux that the module must build
// for.
var crossTargets = []struct{ goos, goarch string }{
	{"darwin", "arm64"},
	{"darwin", "amd64"},
	{"windows", "amd64"},
	{"windows", "arm64"},
}

// TestCrossBuild builds and vets every package of the module, test files
// included, for macOS and Windows: a program that embeds the library must
// compile there, and its own tests run. With a warm build cache it takes
// seconds; from a cold one about a minute per target.
func TestCrossBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module for four systems other than Linux (seconds with a warm cache, minutes cold); run without -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command in PATH to build with: %v", err)
	}
	root := root(t)
	for _, tg := range crossTargets {
		t.Run(tg.goos+"_"+tg.goarch, func(t *testing.T) {
			for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
				start := time.Now()
				cmd := exec.Command(goTool, args...)
				cmd.Dir = root
				cmd.Env = append(os.Environ(), "GOOS="+tg.goos, "GOARCH="+tg.goarch, "CGO_ENABLED=0", "GOFLAGS=")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("GOOS=%s GOARCH=%s go %s: %v\n%s", tg.goos, tg.goarch, strings.Join(args, " "), err, out)
				}
				t.Logf("go %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
			}
		})
	}
}

func root(t *testing.T) string {
	t.Helper()
	r, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}
