package sim

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// coreDirs are the packages that must be deterministic: everything the
// simulator runs as the real code. Their production-only files are the
// declared exceptions.
var (
	coreDirs   = []string{"engine", "cluster", "disk", "udf", "seam", "node", "resp"}
	coreExempt = map[string]string{
		"disk/osfs.go": "the OS file system: production only",
		"seam/prod.go": "the wall clock and OS entropy: production only",
	}
)

// forbidden calls, by import path and function name ("*": any).
var forbidden = map[string]map[string]string{
	"time": {
		"Now": "reads the wall clock; take now as an input or use seam.Clock", "Since": "reads the wall clock", "Until": "reads the wall clock",
		"Sleep": "blocks on real time", "After": "real timer", "AfterFunc": "real timer; use seam.Timers",
		"NewTimer": "real timer", "NewTicker": "real timer", "Tick": "real timer",
	},
	"math/rand":   {"*": "global or unseeded randomness; use seam.Rand"},
	"crypto/rand": {"*": "OS randomness; use seam.Rand"},
	"os": {
		"Open": "file I/O; use disk.FS", "OpenFile": "file I/O; use disk.FS", "Create": "file I/O; use disk.FS",
		"ReadFile": "file I/O; use disk.FS", "WriteFile": "file I/O; use disk.FS", "Remove": "file I/O; use disk.FS",
		"RemoveAll": "file I/O; use disk.FS", "Rename": "file I/O; use disk.FS", "Mkdir": "file I/O; use disk.FS",
		"MkdirAll": "file I/O; use disk.FS", "Stat": "file I/O; use disk.FS", "Lstat": "file I/O; use disk.FS",
		"ReadDir": "file I/O; use disk.FS", "Truncate": "file I/O; use disk.FS", "Getenv": "environment leaks into behaviour",
		"Chdir": "process state", "Exit": "process state",
	},
	"net": {"Dial": "network; use transport.Transport", "DialTimeout": "network", "Listen": "network", "DialTCP": "network", "DialUDP": "network"},
}

// mathRandV2Allowed are math/rand/v2's constructors: seeded sources are
// fine, the package-level functions (global state) are not.
var mathRandV2Allowed = map[string]bool{"New": true, "NewPCG": true, "NewChaCha8": true, "NewZipf": true}

// Violation is one forbidden construct in core code.
type violation struct {
	pos  token.Position
	what string
}

// lintDeterminism checks the core packages under root.
func lintDeterminism(t *testing.T, root string) []violation {
	t.Helper()
	var out []violation
	fset := token.NewFileSet()
	for _, dir := range coreDirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			if _, ok := coreExempt[rel]; ok {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			out = append(out, lintFile(fset, f)...)
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", dir, err)
		}
	}
	return out
}

func lintFile(fset *token.FileSet, f *ast.File) []violation {
	var out []violation
	imports := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if p == "math/rand/v2" {
			name = "rand"
		}
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imports[name] = p
		if p == "math/rand" || p == "crypto/rand" {
			out = append(out, violation{fset.Position(imp.Pos()), "imports " + p + ": " + forbidden[p]["*"]})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, violation{fset.Position(n.Pos()), "go statement: the core runs on its caller's goroutine"})
		case *ast.SelectStmt:
			out = append(out, violation{fset.Position(n.Pos()), "select statement: scheduling order is not deterministic"})
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok {
				return true
			}
			p, ok := imports[id.Name]
			if !ok {
				return true
			}
			if p == "math/rand/v2" {
				if ast.IsExported(n.Sel.Name) && !mathRandV2Allowed[n.Sel.Name] && isFuncName(n.Sel.Name) {
					out = append(out, violation{fset.Position(n.Pos()), "math/rand/v2." + n.Sel.Name + ": global randomness; use seam.Rand"})
				}
				return true
			}
			if why, ok := forbidden[p][n.Sel.Name]; ok {
				out = append(out, violation{fset.Position(n.Pos()), p + "." + n.Sel.Name + ": " + why})
			}
		}
		return true
	})
	return out
}

// isFuncName tells math/rand/v2's functions from its types (Rand, PCG,
// Source, ...), which are fine to name.
func isFuncName(name string) bool {
	switch name {
	case "Rand", "Source", "PCG", "ChaCha8", "Zipf":
		return false
	}
	return true
}

func TestCoreIsDeterministic(t *testing.T) {
	vs := lintDeterminism(t, "..")
	sort.Slice(vs, func(i, j int) bool { return vs[i].pos.String() < vs[j].pos.String() })
	for _, v := range vs {
		t.Errorf("%s: %s", v.pos, v.what)
	}
}

// The lint must catch what it claims to: a file with every forbidden
// construct yields one violation per construct.
func TestDeterminismLintCatches(t *testing.T) {
	src := `package bad
import (
	"time"
	mr "math/rand/v2"
	"crypto/rand"
	"os"
)
func f() {
	_ = time.Now()
	time.Sleep(1)
	_ = mr.IntN(3)
	_ = mr.New(mr.NewPCG(1, 2))
	_, _ = os.ReadFile("x")
	go f()
	select {}
	_ = rand.Reader
	_ = time.Duration(3)
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bad.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	vs := lintFile(fset, f)
	var got []string
	for _, v := range vs {
		got = append(got, v.what)
	}
	// crypto/rand import, time.Now, time.Sleep, mr.IntN, os.ReadFile, go, select.
	if len(vs) != 7 {
		t.Fatalf("got %d violations, want 7:\n%s", len(vs), strings.Join(got, "\n"))
	}
}
