package index

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLint enforces, Pebble style, rules of STYLE.md that the compiler does
// not: the imports index/ must not have, and no time.Sleep in tests.
func TestLint(t *testing.T) {
	forbidden := []string{
		"github.com/hashicorp/raft", // index never imports raft
		"net/http",                  // nor HTTP
		"github.com/theeye/theeye/log",
		"github.com/theeye/theeye/raftnode",
		"github.com/theeye/theeye/api",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
		if strings.HasSuffix(name, "_test.go") {
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(src), "time."+"Sleep(") {
				t.Errorf("%s uses time.Sleep: poll with a deadline or use channels", name)
			}
		}
	}
}
