// Package bench measures Herald end to end: the built binary, run as an
// operator runs it, against real servers on loopback (nginx and wrk for
// feed serving, an SMTP server for mail). bench/run builds Herald, runs
// these benchmarks and those of feeds/pull and feeds/publish, on SQLite and
// again on PostgreSQL, and prints the table kept in docs/benchmarks.md.
// What runs Herald is the harness package, shared with the reliability
// suite of cmd/herald; its databases come from storetest.Database, so
// HERALD_TEST_ENGINE=postgres with HERALD_TEST_POSTGRES naming a server
// puts them on PostgreSQL.
//
//	HERALD_BIN=/path/to/herald go test -run '^$' -bench . -benchtime 1x ./bench/
//
// Without HERALD_BIN the benchmarks build Herald themselves.
package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/cmd/herald/harness"
)

// heraldBinary is the Herald binary to measure: HERALD_BIN, which
// bench/run sets to the binary it built, or a fresh build.
func heraldBinary(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("HERALD_BIN"); p != "" {
		return p
	}
	return harness.Build(b)
}

// workDir is a fresh directory that other users can read, so that nginx
// workers, which drop privileges to nobody when started as root, can serve
// files from it.
func workDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp(os.Getenv("BENCH_DIR"), "herald-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if os.Getenv("BENCH_KEEP") == "" {
		tb.Cleanup(func() { os.RemoveAll(dir) })
	} else {
		tb.Logf("keeping %s (BENCH_KEEP)", dir)
	}
	return dir
}

// newInstance prepares an installation of bin in a fresh work directory
// with the one department and source every benchmark uses: the coastal
// feed of pub. The config is written by the benchmark once it is
// complete.
func newInstance(b *testing.B, bin string, pub *harness.Publisher) *harness.Instance {
	b.Helper()
	in := harness.NewInstance(b, bin, workDir(b))
	in.Config["departments"] = []map[string]any{{"slug": "coastal", "name": "Department for Coastal Affairs"}}
	in.Config["sources"] = []map[string]any{{"name": "coastal", "url": pub.FeedURL("coastal"), "department": "coastal", "format": "rss"}}
	return in
}

// sampleWords make invented headlines and summaries.
var sampleWords = []string{"harbour", "ferry", "flood", "coastline", "broadband", "lighthouse", "estuary", "dune",
	"pier", "marina", "tide", "reef", "cliff", "lagoon", "buoy", "seawall", "shingle", "saltmarsh", "jetty", "slipway"}

// sampleItem is an invented release of about a kilobyte, the size of a
// press office's summary and first paragraphs.
func sampleItem(n int, published time.Time, topics ...string) harness.Item {
	w := func(i int) string { return sampleWords[(n*7+i*3)%len(sampleWords)] }
	title := fmt.Sprintf("Council and port authority agree %s and %s plan for the northern coast (notice %d)", w(1), w(2), n)
	if len(topics) > 0 {
		title += " on " + strings.Join(topics, " and ")
	}
	summary := fmt.Sprintf("<p>The department has set out how the <strong>%s</strong> programme will support coastal communities, "+
		"with funding confirmed for the next three years and a review of %s maintenance after the winter storms.</p>", w(3), w(4))
	body := summary + fmt.Sprintf("<p>Local authorities will receive guidance in the spring. A consultation on %s access runs until the summer, "+
		"and residents can comment online or at drop-in sessions in each harbour town.</p>"+
		"<ul><li>Funding of £%d million</li><li>New advice for residents on %s safety</li><li>A review after two years</li></ul>"+
		"<p>Notes to editors: the programme follows the coastal resilience review published last year.</p>", w(5), n%90+10, w(6))
	return harness.Item{GUID: fmt.Sprintf("coastal-%d", n), Title: title, Summary: summary, Body: body, Published: published}
}

// scanLines calls fn for each line of path.
func scanLines(path string, fn func(line string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fn(s.Text())
	}
	return s.Err()
}

// lookPath finds a program on PATH or in the sbin directories that a
// non-root PATH often lacks.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New(name + " not found")
}
