// Package bench measures Herald end to end: the built binary, run as an
// operator runs it, against real servers on loopback (nginx and wrk for
// feed serving, an SMTP server for mail). bench/run builds Herald, runs
// these benchmarks and the feeds package's own, and prints the table kept
// in docs/benchmarks.md.
//
//	HERALD_BIN=/path/to/herald go test -run '^$' -bench . -benchtime 1x ./bench/
//
// Without HERALD_BIN the benchmarks build Herald themselves.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// binary is the Herald binary under test, built once per process unless
// HERALD_BIN names one.
var binary struct {
	once sync.Once
	path string
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// heraldBinary returns the path of the Herald binary to measure.
func heraldBinary(tb testing.TB) string {
	tb.Helper()
	binary.once.Do(func() {
		if p := os.Getenv("HERALD_BIN"); p != "" {
			binary.path = p
			return
		}
		dir, err := os.MkdirTemp("", "herald-bench-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binary.dir = dir
		binary.path = filepath.Join(dir, "herald")
		cmd := exec.Command("go", "build", "-o", binary.path, "herald/cmd/herald")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		tb.Fatal(binary.err)
	}
	return binary.path
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

// freeAddr finds a free loopback port. Another process may take it before
// it is used; the benchmarks run alone, so that is unlikely.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// config is a Herald config file as a tree of maps, written as YAML.
type config map[string]any

// benchAdminToken is the admin token of every benchmark's Herald; reading
// /metrics on the site needs it.
const benchAdminToken = "benchmark-admin-token-0123456789"

// baseConfig is the config every benchmark starts from: a database in dir,
// JSON logs, a department with one source at feedURL and no scheduled
// digests or pulls during the measurement.
func baseConfig(dir, addr, feedURL string) config {
	return config{
		"database":    filepath.Join(dir, "herald.db"),
		"base_url":    "http://" + addr,
		"listen":      addr,
		"timezone":    "UTC",
		"log":         map[string]any{"format": "json", "level": "info"},
		"schedule":    map[string]any{"pull": "0 0 1 1 *", "daily_digest": "0 0 1 1 *", "weekly_digest": "0 0 1 1 *"},
		"pull":        map[string]any{"allow_private": true}, // the publisher runs on loopback
		"secrets":     map[string]any{"token_keys": []string{"benchmark token key, invented for bench runs"}},
		"admin":       map[string]any{"tokens": []string{benchAdminToken}},
		"departments": []map[string]any{{"slug": "coastal", "name": "Department for Coastal Affairs"}},
		"sources":     []map[string]any{{"name": "coastal", "url": feedURL, "department": "coastal", "format": "rss"}},
	}
}

// smtpMail is the mail section for an SMTP server on loopback, without
// the default rate cap: these runs measure what Herald can do.
func smtpMail(host string, port int) map[string]any {
	return map[string]any{
		"from": "Herald <alerts@news.example.org>", "transport": "smtp",
		"smtp":        map[string]any{"host": host, "port": port, "tls": "none", "timeout": "30s"},
		"concurrency": 4, "rate": 1000000,
	}
}

func (c config) write(tb testing.TB, path string) string {
	tb.Helper()
	raw, err := yaml.Marshal(map[string]any(c))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// run runs one Herald command to completion and returns its output.
func run(tb testing.TB, timeout time.Duration, args ...string) (stdout string, usage *syscall.Rusage, elapsed time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, heraldBinary(tb), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	elapsed = time.Since(start)
	if err != nil {
		tb.Fatalf("herald %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), tail(errb.String(), 4000))
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return out.String(), ru, elapsed
}

// proc is a long-running child process (herald serve, nginx).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs a process with stdout and stderr going to logPath. It is
// stopped when the benchmark ends, and killed if this process dies first.
func start(tb testing.TB, logPath, name string, args ...string) *proc {
	tb.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		tb.Fatal(err)
	}
	p := &proc{name: filepath.Base(name), cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	tb.Cleanup(p.stop)
	return p
}

// stop asks the process to end (SIGTERM) and kills it after ten seconds.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports an early exit, with the end of the process's log.
func (p *proc) exited() error {
	select {
	case <-p.done:
		b, _ := os.ReadFile(p.log)
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(string(b), 3000))
	default:
		return nil
	}
}

// peakRSS is the process's peak resident set size so far, in bytes, from
// VmHWM in /proc; 0 when it cannot be read.
func (p *proc) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// waitHTTP waits until url answers 200, or fails the benchmark.
func waitHTTP(tb testing.TB, p *proc, url string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p != nil {
			if err := p.exited(); err != nil {
				tb.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not answer 200 within %v (last error %v)", url, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// ---- a publisher ----

// item is one release on the sample publisher's feed.
type item struct {
	GUID, Title, Summary, Body string
	Published                  time.Time
}

// publisher serves an RSS 2.0 feed of its items, newest first, with an
// ETag so that pulls which find nothing new cost a 304. It records when a
// fetch first returned each item.
type publisher struct {
	mu     sync.Mutex
	items  []item
	served map[string]time.Time
	srv    *httptest.Server
}

func newPublisher(tb testing.TB) *publisher {
	p := &publisher{served: map[string]time.Time{}}
	p.srv = httptest.NewServer(p)
	tb.Cleanup(p.srv.Close)
	return p
}

func (p *publisher) URL() string { return p.srv.URL + "/news.rss" }

func (p *publisher) add(items ...item) {
	p.mu.Lock()
	p.items = append(p.items, items...)
	p.mu.Unlock()
}

// firstServed is when a fetch first returned the item with guid.
func (p *publisher) firstServed(guid string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.served[guid]
	return t, ok
}

func (p *publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	items := append([]item(nil), p.items...)
	p.mu.Unlock()
	etag := fmt.Sprintf(`"%d"`, len(items))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	type rssItem struct {
		Title       string `xml:"title"`
		Link        string `xml:"link"`
		GUID        string `xml:"guid"`
		PubDate     string `xml:"pubDate"`
		Description string `xml:"description"`
		Content     string `xml:"http://purl.org/rss/1.0/modules/content/ encoded"`
	}
	var doc struct {
		XMLName xml.Name  `xml:"rss"`
		Version string    `xml:"version,attr"`
		Title   string    `xml:"channel>title"`
		Link    string    `xml:"channel>link"`
		Desc    string    `xml:"channel>description"`
		Items   []rssItem `xml:"channel>item"`
	}
	doc.Version, doc.Title, doc.Link, doc.Desc = "2.0", "Department for Coastal Affairs", "https://coastal.example.org/", "News"
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		doc.Items = append(doc.Items, rssItem{Title: it.Title, Link: "https://coastal.example.org/news/" + it.GUID,
			GUID: it.GUID, PubDate: it.Published.Format(time.RFC1123Z), Description: it.Summary, Content: it.Body})
	}
	body, err := xml.Marshal(doc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
	w.Header().Set("ETag", etag)
	w.Write([]byte(xml.Header))
	w.Write(body)
	now := time.Now()
	p.mu.Lock()
	for _, it := range items {
		if _, ok := p.served[it.GUID]; !ok {
			p.served[it.GUID] = now
		}
	}
	p.mu.Unlock()
}

// sampleWords make invented headlines and summaries.
var sampleWords = []string{"harbour", "ferry", "flood", "coastline", "broadband", "lighthouse", "estuary", "dune",
	"pier", "marina", "tide", "reef", "cliff", "lagoon", "buoy", "seawall", "shingle", "saltmarsh", "jetty", "slipway"}

// sampleItem is an invented release of about a kilobyte, the size of a
// press office's summary and first paragraphs.
func sampleItem(n int, published time.Time, topics ...string) item {
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
	return item{GUID: fmt.Sprintf("coastal-%d", n), Title: title, Summary: summary, Body: body, Published: published}
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
