// Package templatestest helps tests write a templates_dir of overrides,
// most often a built-in file with one part changed.
package templatestest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"herald/templates"
)

// Dir writes files (a path like "email/confirm.txt" → its content) into a
// new temporary directory and returns it.
func Dir(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	Write(tb, dir, files)
	return dir
}

// Write writes files (path → content) under dir.
func Write(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// Builtin returns the built-in file name ("email/digest.txt").
func Builtin(tb testing.TB, name string) string {
	tb.Helper()
	b, err := templates.Embedded().(interface{ ReadFile(string) ([]byte, error) }).ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// Changed returns the built-in file name with its first old replaced by
// new, failing the test when the file has no old (the built-in changed
// under the test).
func Changed(tb testing.TB, name, old, new string) string {
	tb.Helper()
	src := Builtin(tb, name)
	if !strings.Contains(src, old) {
		tb.Fatalf("built-in %s has no %q", name, old)
	}
	return strings.Replace(src, old, new, 1)
}
