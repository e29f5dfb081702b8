package sandbox_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The public API is sandbox's own: no exported type aliases or embeds a
// type of the plan packages (mount, netns, internal/...), and no exported
// field has a type of mount or of an internal package, so that a caller
// can set only what the sandbox means to take. The error types are the
// exception: they are the module's one family (internal/errdefs), shared
// by every package on purpose.
func TestNoPlanTypeInPublicAPI(t *testing.T) {
	const module = "github.com/stockade/stockade/"
	plan := func(path string) bool {
		return path == module+"mount" || path == module+"netns" ||
			strings.HasPrefix(path, module+"internal/") && path != module+"internal/errdefs"
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		// A test binary run elsewhere than the package's directory, as
		// .ci/rootless runs it; the run of go test checks the sources.
		t.Skip("the sandbox package's sources are not in the working directory; go test runs this")
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		imports := map[string]string{} // local name -> path
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			local := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				local = im.Name.Name
			}
			imports[local] = p
		}
		// planRef reports the first selector of expr that names a type of
		// a package plan accepts, as "pkg.Name".
		planRef := func(expr ast.Expr, accept func(string) bool) string {
			var found string
			ast.Inspect(expr, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok && found == "" {
					if id, ok := sel.X.(*ast.Ident); ok && accept(imports[id.Name]) {
						found = id.Name + "." + sel.Sel.Name
					}
				}
				return found == ""
			})
			return found
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				if !ts.Name.IsExported() {
					continue
				}
				checked++
				if ts.Assign.IsValid() {
					if ref := planRef(ts.Type, plan); ref != "" {
						t.Errorf("%s: type %s = %s aliases a plan type", name, ts.Name.Name, ref)
					}
					continue
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					exported := len(fld.Names) == 0
					for _, n := range fld.Names {
						exported = exported || n.IsExported()
					}
					if !exported {
						continue
					}
					if len(fld.Names) == 0 {
						if ref := planRef(fld.Type, plan); ref != "" {
							t.Errorf("%s: %s embeds %s", name, ts.Name.Name, ref)
						}
						continue
					}
					hidden := func(p string) bool { return plan(p) && p != module+"netns" }
					if ref := planRef(fld.Type, hidden); ref != "" {
						t.Errorf("%s: %s.%s has the plan type %s", name, ts.Name.Name, fld.Names[0].Name, ref)
					}
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d exported types; is this the sandbox directory?", checked)
	}
}
