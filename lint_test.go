package theeye_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLint enforces, over the whole module, the rules a reviewer would
// otherwise have to remember (STYLE.md 2.9): the dependency direction
// between our packages, %w when an error is formatted into another, and
// every package documented.
func TestLint(t *testing.T) {
	const mod = "github.com/theeye/theeye"
	// forbidden[dir] lists import prefixes the package in dir must not use.
	// A rule ending in a double quote is one whole import path: the quote
	// stands for the end of the path, so mod+`/raftnode"` is the package
	// raftnode and not raftnode/logstore beside it.
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
	documented := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		test := strings.HasSuffix(path, "_test.go")
		if !test {
			if _, ok := documented[dir]; !ok {
				documented[dir] = false
			}
			if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package ") || f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Command ") {
				documented[dir] = true
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbidden[dir] {
					if strings.HasPrefix(p+`"`, bad) {
						t.Errorf("%s imports %s: %s/ must not depend on it", path, p, dir)
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok || pkg.Name != "fmt" || sel.Sel.Name != "Errorf" || len(call.Args) < 2 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok {
				return true
			}
			for _, a := range call.Args[1:] {
				if id, ok := a.(*ast.Ident); ok && (id.Name == "err" || strings.HasSuffix(id.Name, "Err")) && !strings.Contains(lit.Value, "%w") {
					t.Errorf("%s: fmt.Errorf formats %s without %%w", fset.Position(call.Pos()), id.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, ok := range documented {
		if !ok {
			t.Errorf("package in %s/ has no doc comment saying what it owns", dir)
		}
	}
}
