package log

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLint enforces STYLE.md 2.9 on this package's own files: errors wrapped
// with %w, no time.Sleep in tests, no HTTP, no package-level mutable state
// (only sentinel errors may be package-level vars outside tests).
func TestLint(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		isTest := strings.HasSuffix(name, "_test.go")
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "net/http" || strings.HasPrefix(p, "github.com/hashicorp/") {
				t.Errorf("%s imports %s", name, p)
			}
		}
		if !isTest {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				for _, spec := range gd.Specs {
					for i, v := range spec.(*ast.ValueSpec).Values {
						if !isErrorConstructor(v) {
							t.Errorf("%s: package-level var %s is not a sentinel error", fset.Position(v.Pos()), spec.(*ast.ValueSpec).Names[i])
						}
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch selector(call.Fun) {
			case "time.Sleep":
				if isTest {
					t.Errorf("%s: time.Sleep in a test; wait on a channel instead", fset.Position(call.Pos()))
				}
			case "fmt.Errorf":
				format, ok := call.Args[0].(*ast.BasicLit)
				if !ok {
					return true
				}
				for _, arg := range call.Args[1:] {
					if id, ok := arg.(*ast.Ident); ok && looksLikeError(id.Name) && !strings.Contains(format.Value, "%w") {
						t.Errorf("%s: fmt.Errorf with error %s but no %%w", fset.Position(call.Pos()), id.Name)
					}
				}
			}
			return true
		})
	}
}

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

func isErrorConstructor(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	s := selector(call.Fun)
	return s == "errors.New" || s == "fmt.Errorf"
}

func looksLikeError(name string) bool {
	return name == "err" || name == "cause" || strings.HasPrefix(name, "err") || strings.HasSuffix(name, "Err")
}
