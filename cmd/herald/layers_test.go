package main_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// layerRules are the floors of DESIGN.md as import rules: no package
// matching pkg may depend, directly or through others, on a package
// matching one of mustNot. A pattern ending in "/..." matches a package
// and every package below it; any other pattern matches one package.
var layerRules = []struct {
	pkg     string
	mustNot []string
}{
	{"herald/store/...", []string{"herald/templates/...", "herald/feeds/...", "herald/alerts/...", "herald/web/...", "herald/cmd/..."}},
	{"herald/templates/...", []string{"herald/store/...", "herald/feeds/...", "herald/alerts/...", "herald/web/...", "herald/cmd/..."}},
	{"herald/feeds/...", []string{"herald/alerts/...", "herald/web/...", "herald/cmd/..."}},
	{"herald/alerts/...", []string{"herald/feeds/...", "herald/web/...", "herald/cmd/..."}},
	// The pull side and the publish side of feeds meet only in the store.
	{"herald/feeds/pull/...", []string{"herald/feeds/publish/..."}},
	{"herald/feeds/publish/...", []string{"herald/feeds/pull/..."}},
	// The topic rules serve pulls and the admin operations alike.
	{"herald/feeds/rules/...", []string{"herald/feeds/pull/...", "herald/feeds/publish/..."}},
	// Delivery sends what the subscription side composed, through the
	// store; it must not reach back into it.
	{"herald/alerts/delivery/...", []string{"herald/alerts"}},
	{"herald/web/...", []string{"herald/cmd/..."}},
	// The admin operations sit under web's HTTP handlers and the CLI, which
	// both call them; they must not reach back up into either.
	{"herald/web/admin/...", []string{"herald/web", "herald/cmd/..."}},
}

// TestPackageLayers lists every package's dependencies with go list (test
// files left out) and checks them against layerRules.
func TestPackageLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "herald/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			deps[f[0]] = f[1:]
		}
	}
	for _, r := range layerRules {
		matched := false
		for pkg, pkgDeps := range deps {
			if !layerMatch(r.pkg, pkg) {
				continue
			}
			matched = true
			for _, dep := range pkgDeps {
				for _, bad := range r.mustNot {
					if layerMatch(bad, dep) {
						t.Errorf("%s depends on %s, which no package in %s may use", pkg, dep, r.pkg)
					}
				}
			}
		}
		// A rule about a package that moved or was renamed would
		// otherwise pass without checking anything.
		if !matched {
			t.Errorf("no package matches %s: update layerRules", r.pkg)
		}
	}
}

// TestHTTPStaysInWeb: the subscription side offers operations and
// results, and web owns every page and HTTP concern, so package alerts
// does not import net/http itself (its libraries may).
func TestHTTPStaysInWeb(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", "herald/alerts").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if imp == "net/http" {
			t.Errorf("herald/alerts imports net/http: its pages belong in herald/web")
		}
	}
}

func layerMatch(pattern, pkg string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == tree || strings.HasPrefix(pkg, tree+"/")
	}
	return pkg == pattern
}
