package theeye_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLint enforces, over every package of the module (tests included
// unless a rule says otherwise), the rules a reviewer would otherwise have
// to remember (STYLE.md 2.9): the dependency direction between our
// packages, %w when an error is formatted into another, every package
// documented, no time.Sleep in tests, no package-level mutable state, and
// no file or function too long to read.
func TestLint(t *testing.T) {
	const mod = "github.com/theeye/theeye"
	// forbidden[dir] lists import prefixes the package in dir must not use.
	forbidden := map[string][]string{
		".":        {mod + "/"},
		"log":      {"net/http", "github.com/hashicorp/", mod + "/index", mod + "/raftnode", mod + "/api"},
		"index":    {"net/http", "github.com/hashicorp/", mod + "/raftnode", mod + "/api", mod + "/log"},
		"raftnode": {"net/http", mod + "/index", mod + "/api"},
		// The log store: the root package, Pebble and hashicorp/raft only.
		// Its parent depends on it, never the other way.
		"raftnode/logstore": {"net/http", mod + "/log", mod + "/index", mod + "/api", mod + `/raftnode"`,
			mod + "/verdict", mod + "/client", mod + "/cmd", mod + "/bench"},
		"api": {"github.com/cockroachdb/pebble"},
	}
	// stdlibOnly are the packages that import only the standard library,
	// so that the tests of any package may import them.
	stdlibOnly := map[string]bool{"cmd/theeye/theeyetest": true}
	// tooLong are the files (path) and functions (path:F, path:T.M) known
	// to be over maxFileLines or maxFuncLines. An entry no longer over its
	// limit fails the test: delete it, the list only shrinks.
	tooLong := map[string]bool{}

	// benchOnly are the modules only bench/ uses (its baselines: the NATS
	// JetStream client); no other package may import them.
	benchOnly := []string{"github.com/nats-io/"}

	files := parseModule(t)
	for _, f := range files {
		lintImports(t, f, forbidden[f.dir], stdlibOnly[f.dir])
		if f.dir != "bench" && !strings.HasPrefix(f.dir, "bench/") {
			lintImports(t, f, benchOnly, false)
		}
		lintErrorf(t, f)
		lintSleep(t, f)
	}
	lintDocs(t, files)
	lintPackageVars(t, mod, files)
	lintSizes(t, files, tooLong)
}

// goFile is one parsed Go file of the module.
type goFile struct {
	path  string // slash-separated, from the module root
	dir   string // path's directory, "." for the root
	test  bool
	lines int
	fset  *token.FileSet
	f     *ast.File
}

func (g *goFile) pos(p token.Pos) string { return g.fset.Position(p).String() }

// parseModule parses every Go file under the module root, but those in
// testdata and hidden directories.
func parseModule(t *testing.T) []*goFile {
	var files []*goFile
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments)
		if err != nil {
			return err
		}
		p = filepath.ToSlash(p)
		files = append(files, &goFile{path: p, dir: path.Dir(p), test: strings.HasSuffix(p, "_test.go"),
			lines: bytes.Count(src, []byte("\n")), fset: fset, f: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// lintImports: the dependency direction. A package, and its tests, must
// not import what forbidden lists; a stdlibOnly package imports nothing
// but the standard library.
func lintImports(t *testing.T, g *goFile, forbidden []string, stdlibOnly bool) {
	for _, imp := range g.f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		for _, bad := range forbidden {
			// A rule ending in a quote names a whole import path, else a
			// prefix: paths are matched with a quote appended.
			if strings.HasPrefix(p+`"`, bad) {
				t.Errorf("%s imports %s: %s/ must not depend on it", g.path, p, g.dir)
			}
		}
		if first, _, _ := strings.Cut(p, "/"); stdlibOnly && strings.Contains(first, ".") {
			t.Errorf("%s imports %s: %s/ imports only the standard library", g.path, p, g.dir)
		}
	}
}

// lintErrorf: an error formatted into another is wrapped with %w.
func lintErrorf(t *testing.T, g *goFile) {
	ast.Inspect(g.f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || selector(call.Fun) != "fmt.Errorf" || len(call.Args) < 2 {
			return true
		}
		format, ok := call.Args[0].(*ast.BasicLit)
		if !ok {
			return true
		}
		for _, a := range call.Args[1:] {
			if id, ok := a.(*ast.Ident); ok && looksLikeError(id.Name) && !strings.Contains(format.Value, "%w") {
				t.Errorf("%s: fmt.Errorf formats %s without %%w", g.pos(call.Pos()), id.Name)
			}
		}
		return true
	})
}

func looksLikeError(name string) bool {
	return name == "err" || name == "cause" || strings.HasPrefix(name, "err") || strings.HasSuffix(name, "Err")
}

// lintSleep: no time.Sleep in a test; a test waits on a channel or polls
// (theeyetest.Poll) for what it needs.
func lintSleep(t *testing.T, g *goFile) {
	if !g.test {
		return
	}
	ast.Inspect(g.f, func(n ast.Node) bool {
		if e, ok := n.(ast.Expr); ok && selector(e) == "time.Sleep" {
			t.Errorf("%s: time.Sleep in a test; wait on a channel or poll (theeyetest.Poll)", g.pos(e.Pos()))
		}
		return true
	})
}

// lintDocs: every package has a doc comment saying what it owns.
func lintDocs(t *testing.T, files []*goFile) {
	documented := map[string]bool{}
	for _, g := range files {
		if g.test {
			continue
		}
		doc := ""
		if g.f.Doc != nil {
			doc = g.f.Doc.Text()
		}
		documented[g.dir] = documented[g.dir] || strings.HasPrefix(doc, "Package ") || strings.HasPrefix(doc, "Command ")
	}
	for dir, ok := range documented {
		if !ok {
			t.Errorf("package in %s/ has no doc comment saying what it owns", dir)
		}
	}
}

// lintSizes: no file over maxFileLines; outside bench/ (whose suite and
// command read as one script each), no function over maxFuncLines.
func lintSizes(t *testing.T, files []*goFile, tooLong map[string]bool) {
	const maxFileLines, maxFuncLines = 800, 120
	over := map[string]bool{}
	for _, g := range files {
		if g.lines > maxFileLines {
			over[g.path] = true
			if !tooLong[g.path] {
				t.Errorf("%s: %d lines, over %d: split it", g.path, g.lines, maxFileLines)
			}
		}
		if strings.HasPrefix(g.path, "bench/") {
			continue
		}
		for _, d := range g.f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			key := g.path + ":" + funcName(fd)
			if n := g.fset.Position(fd.End()).Line - g.fset.Position(fd.Pos()).Line + 1; n > maxFuncLines {
				over[key] = true
				if !tooLong[key] {
					t.Errorf("%s: %s is %d lines, over %d: split it", g.pos(fd.Pos()), funcName(fd), n, maxFuncLines)
				}
			}
		}
	}
	for key := range tooLong {
		if !over[key] {
			t.Errorf("%s is allowed to be too long but is not (or is gone): delete it from tooLong", key)
		}
	}
}

// funcName is F for a function, T.M for a method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	for {
		switch e := typ.(type) {
		case *ast.StarExpr:
			typ = e.X
			continue
		case *ast.IndexExpr:
			typ = e.X
			continue
		case *ast.IndexListExpr:
			typ = e.X
			continue
		case *ast.Ident:
			return e.Name + "." + fd.Name.Name
		}
		return fd.Name.Name
	}
}

// selector is "x.Sel" for a selector on an identifier, else "".
func selector(e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return ""
	}
	return x.Name + "." + sel.Sel.Name
}

// pkgVar is a package-level var of a non-test file that its value does
// not make acceptable by itself: it must never be written after init.
type pkgVar struct {
	pkg, name string
	at        string
}

// lintPackageVars: no package-level mutable state outside tests. A
// package-level var is an error sentinel (errors.New, fmt.Errorf), a
// compiled regexp (regexp.MustCompile), an embedded file (//go:embed),
// the flag or cobra wiring of a main package under cmd/ or bench/, or a
// value nothing writes (assigns, increments, takes the address of,
// deletes from, copies into) outside the init funcs of its package. A
// var of a sync or sync/atomic type is state however it is written.
func lintPackageVars(t *testing.T, mod string, files []*goFile) {
	vars := map[string]map[string]*pkgVar{} // dir → name → var
	decls := map[*ast.ValueSpec]bool{}      // the top-level specs of vars
	for _, g := range files {
		if g.test {
			continue
		}
		for _, d := range g.f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				spec := s.(*ast.ValueSpec)
				decls[spec] = true
				for i, id := range spec.Names {
					var value ast.Expr
					if i < len(spec.Values) {
						value = spec.Values[i]
					}
					switch {
					case id.Name == "_", isEmbed(gd.Doc) || isEmbed(spec.Doc), isConstant(value), isFlagWiring(g, value):
					case usesSync(spec.Type) || usesSync(value):
						t.Errorf("%s: package-level var %s is of a sync type: package-level mutable state", g.pos(id.Pos()), id.Name)
					default:
						if vars[g.dir] == nil {
							vars[g.dir] = map[string]*pkgVar{}
						}
						vars[g.dir][id.Name] = &pkgVar{pkg: g.f.Name.Name, name: id.Name, at: g.pos(id.Pos())}
					}
				}
			}
		}
	}
	for _, g := range files {
		for _, w := range writes(g, mod, vars, decls) {
			t.Errorf("%s writes package-level var %s (%s): package-level mutable state; pass it, or make it a value nothing writes", w.at, w.v.name, w.v.at)
		}
	}
}

// isEmbed reports whether doc holds a //go:embed directive.
func isEmbed(doc *ast.CommentGroup) bool {
	if doc == nil {
		return false
	}
	for _, c := range doc.List {
		if strings.HasPrefix(c.Text, "//go:embed ") {
			return true
		}
	}
	return false
}

// isConstant reports whether e is an error sentinel or a compiled regexp.
func isConstant(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	switch selector(call.Fun) {
	case "errors.New", "fmt.Errorf", "regexp.MustCompile":
		return true
	}
	return false
}

// isFlagWiring reports whether e, in a main package under cmd/ or bench/,
// defines a flag or a cobra command.
func isFlagWiring(g *goFile, e ast.Expr) bool {
	if g.f.Name.Name != "main" || !strings.HasPrefix(g.dir, "cmd/") && !strings.HasPrefix(g.dir, "bench/") {
		return false
	}
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
		e = u.X
	}
	switch e := e.(type) {
	case *ast.CallExpr:
		s := selector(e.Fun)
		return strings.HasPrefix(s, "flag.") || strings.HasPrefix(s, "pflag.")
	case *ast.CompositeLit:
		return selector(e.Type) == "cobra.Command"
	}
	return false
}

// usesSync reports whether e names anything of package sync or sync/atomic.
func usesSync(e ast.Expr) bool {
	found := false
	if e != nil {
		ast.Inspect(e, func(n ast.Node) bool {
			if s, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := s.X.(*ast.Ident); ok && (x.Name == "sync" || x.Name == "atomic") {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// write is a statement or expression of g that writes a package-level var.
type write struct {
	at string
	v  *pkgVar
}

// writes finds what g writes of vars: of its own package's (but in its
// init funcs), named by identifiers the file does not declare itself; of
// another package's, as pkg.Name through an import.
func writes(g *goFile, mod string, vars map[string]map[string]*pkgVar, decls map[*ast.ValueSpec]bool) []write {
	imported := map[string]string{} // import name → dir
	for _, imp := range g.f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if p != mod && !strings.HasPrefix(p, mod+"/") {
			continue
		}
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imported[name] = strings.TrimPrefix(strings.TrimPrefix(p, mod), "/")
		if imported[name] == "" {
			imported[name] = "."
		}
	}
	var out []write
	target := func(e ast.Expr) {
		id, sel := root(e)
		if id == nil {
			return
		}
		if v := vars[g.dir][id.Name]; v != nil && v.pkg == g.f.Name.Name && (id.Obj == nil || isDecl(id.Obj, decls)) {
			out = append(out, write{g.pos(e.Pos()), v})
		} else if dir, ok := imported[id.Name]; ok && id.Obj == nil && vars[dir][sel] != nil {
			out = append(out, write{g.pos(e.Pos()), vars[dir][sel]})
		}
	}
	for _, d := range g.f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "init" && !g.test {
			continue
		}
		ast.Inspect(d, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				if n.Tok != token.DEFINE {
					for _, e := range n.Lhs {
						target(e)
					}
				}
			case *ast.IncDecStmt:
				target(n.X)
			case *ast.UnaryExpr:
				if n.Op == token.AND {
					target(n.X)
				}
			case *ast.RangeStmt:
				if n.Tok == token.ASSIGN {
					target(n.Key)
					target(n.Value)
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Obj == nil && len(n.Args) > 0 &&
					(id.Name == "delete" || id.Name == "clear" || id.Name == "copy") {
					target(n.Args[0])
				}
			}
			return true
		})
	}
	return out
}

// isDecl reports whether obj is declared by one of the top-level specs.
func isDecl(obj *ast.Object, decls map[*ast.ValueSpec]bool) bool {
	spec, ok := obj.Decl.(*ast.ValueSpec)
	return ok && decls[spec]
}

// root is the identifier an lvalue starts from and, when it is followed
// by a selector, that selector's name (pkg.Var, or v.field).
func root(e ast.Expr) (*ast.Ident, string) {
	sel := ""
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x, sel
		case *ast.SelectorExpr:
			sel, e = x.Sel.Name, x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.SliceExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		default:
			return nil, ""
		}
	}
}
