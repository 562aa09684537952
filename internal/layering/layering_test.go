package layering

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/keel-db/keel"

// root is the module's directory.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// mayImport reads the "May import:" line of a package's doc.go: the keel
// packages it names (their import paths relative to the module), or nil
// when the package states none. "nothing of keel" allows none.
func mayImport(t *testing.T, doc string) (allowed []string, stated bool) {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		return nil, false
	}
	m := regexp.MustCompile(`(?s)// May import:(.*?)\npackage `).FindSubmatch(b)
	if m == nil {
		return nil, false
	}
	text := strings.ReplaceAll(string(m[1]), "//", " ")
	for _, w := range regexp.MustCompile(`[a-z][a-z0-9/]*`).FindAllString(text, -1) {
		allowed = append(allowed, w)
	}
	return allowed, true
}

// keelImports are the keel packages the non-test files of dir import.
func keelImports(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if rel, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(out, rel) {
				out = append(out, rel)
			}
		}
	}
	slices.Sort(out)
	return out
}

// isMain reports whether dir holds a command (package main).
func isMain(t *testing.T, dir string) bool {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		return f.Name.Name == "main"
	}
	return false
}

// Every package's imports of keel packages are among those its doc.go
// allows; every package with non-test code states its allowance.
func TestPackagesImportWhatTheirDocsAllow(t *testing.T) {
	base := root(t)
	checked := 0
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if p != base && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(base, p)
		rel = filepath.ToSlash(rel)
		imports := keelImports(t, p)
		hasCode := false
		if entries, _ := os.ReadDir(p); entries != nil {
			for _, e := range entries {
				hasCode = hasCode || strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go")
			}
		}
		if !hasCode || rel == "." {
			return nil
		}
		allowed, stated := mayImport(t, filepath.Join(p, "doc.go"))
		if !stated && isMain(t, p) {
			return nil // a binary imports what it drives
		}
		if !stated {
			if strings.HasPrefix(rel, "cmd/") || strings.HasPrefix(rel, "testdata") || strings.Contains(rel, "/internal/") {
				return nil // binaries and their internals import what they drive
			}
			t.Errorf("%s: doc.go states no \"May import:\" line", rel)
			return nil
		}
		checked++
		everything := slices.Contains(allowed, "everything")
		for _, imp := range imports {
			ok := everything || slices.Contains(allowed, imp) ||
				strings.HasPrefix(imp, rel+"/") // its own subpackages
			if !ok {
				t.Errorf("%s imports %s, which its doc.go does not allow (May import: %s)", rel, imp, strings.Join(allowed, " "))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 12 {
		t.Fatalf("checked only %d packages", checked)
	}
}

// The sans-I/O core opens no socket: no keel package the core depends
// on, directly or not, imports network code or the runtimes (third-party
// libraries are not ours to police: cockroachdb/errors reaches net/http
// through its error reporting, which keel never calls).
func TestCoreImportsNoNetworkCode(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go tool is needed to list dependencies")
	}
	forbidden := []string{"net", "net/http", "crypto/tls", "os/exec", "syscall", module + "/transport", module + "/server", module + "/sim"}
	for _, pkg := range []string{"node", "cluster", "engine", "disk", "udf", "seam", "resp"} {
		cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", "./"+pkg)
		cmd.Dir = root(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps ./%s: %v", pkg, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		keel := 0
		for dec.More() {
			var p struct {
				ImportPath string
				Imports    []string
			}
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(forbidden, p.ImportPath) && strings.HasPrefix(p.ImportPath, module) {
				t.Errorf("%s depends on %s", pkg, p.ImportPath)
			}
			if !strings.HasPrefix(p.ImportPath, module) {
				continue
			}
			keel++
			for _, imp := range p.Imports {
				if slices.Contains(forbidden, imp) && !(p.ImportPath == module+"/disk" && imp == "syscall") {
					t.Errorf("%s depends on %s, which imports %s", pkg, p.ImportPath, imp)
				}
			}
		}
		if keel == 0 {
			t.Fatalf("go list found no keel package under %s", pkg)
		}
	}
}

// The lint reads what it claims to: a doc line names packages, and the
// word "nothing" names none that exist.
func TestMayImportParses(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "doc.go")
	os.WriteFile(doc, []byte("// Package x.\n//\n// May import: cluster, engine (types), seam.\npackage x\n"), 0o644)
	got, ok := mayImport(t, doc)
	if !ok || !slices.Contains(got, "cluster") || !slices.Contains(got, "seam") || slices.Contains(got, "node") {
		t.Fatalf("parsed %v, %v", got, ok)
	}
}
