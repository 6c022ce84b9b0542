package wire_test

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/switchbackhq/switchback"

// deps returns the packages of this module that pkg (a path inside the
// module) imports, directly or not, test files left out.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		bp, err := build.ImportDir(filepath.Join("..", "..", strings.TrimPrefix(p, module)), 0)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, imp := range bp.Imports {
			if strings.HasPrefix(imp, module+"/") && !seen[imp] {
				seen[imp] = true
				walk(imp)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Both ends of a contract import this package, not each other: a router
// is built without the control service, and the control API without the
// router's journal. The public flags package imports nothing of the module.
func TestEndsDoNotImportEachOther(t *testing.T) {
	tests := []struct {
		pkg, mustNot string
	}{
		{module + "/internal/ingress", module + "/internal/control"},
		{module + "/internal/httpapi", module + "/internal/journal"},
		{module + "/internal/wire", module + "/internal/control"},
		{module + "/internal/wire", module + "/internal/journal"},
		{module + "/flags", module + "/internal/"},
	}
	for _, tt := range tests {
		for _, d := range deps(t, tt.pkg) {
			if d == tt.mustNot || strings.HasSuffix(tt.mustNot, "/") && strings.HasPrefix(d, tt.mustNot) {
				t.Errorf("%s imports %s (directly or not); it must not", tt.pkg, d)
			}
		}
	}
}
