package main_test

// The reliability suite runs the herald binary as an operator would, with a
// generated config, a publisher and an SMTP server on loopback in this
// process, and then breaks things: it kills Herald at random moments, makes
// the mail relay and the publishers misbehave, loads the feeds and fuzzes
// every form and API route. Each case checks that nothing was lost and
// prints its figures.
//
//	HERALD_RELIABILITY=1 go test -run TestReliability -v ./cmd/herald/
//
// HERALD_RELIABILITY_SEED fixes the random choices of a run (the seed in
// use is logged). With HERALD_ARTIFACTS set, the figures are also written
// to $HERALD_ARTIFACTS/reliability.txt.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"herald/alerts/address"
	"herald/alerts/smtptest"
	"herald/store"
)

const (
	relAdminToken = "reliability-admin-token-0123456789"
	relTokenKey   = "reliability token key, invented for these tests"
	relFrom       = "Herald <alerts@news.example.org>"
)

func TestReliability(t *testing.T) {
	if os.Getenv("HERALD_RELIABILITY") != "1" {
		t.Skip("the reliability suite runs the herald binary for about four minutes; run it with " +
			"HERALD_RELIABILITY=1 go test -run TestReliability -v ./cmd/herald/ (.ci/run sets HERALD_RELIABILITY=1)")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HERALD_RELIABILITY_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("HERALD_RELIABILITY_SEED: %v", err)
		}
		seed = s
	}
	t.Logf("seed %d (HERALD_RELIABILITY_SEED=%d repeats this run's random choices)", seed, seed)
	bin := buildHerald(t)
	fig := &figures{}
	t.Cleanup(func() { fig.flush(t) })
	t.Run("cases", func(t *testing.T) {
		// The crash and SMTP cases spend most of their time waiting (for
		// claims to expire, for retries to come due), so they run beside
		// the serving cases, which run one after the other.
		t.Run("crash", func(t *testing.T) {
			t.Parallel()
			testCrash(t, bin, fig, rand.New(rand.NewPCG(seed, 1)))
		})
		t.Run("smtp_faults", func(t *testing.T) {
			t.Parallel()
			testSMTPFaults(t, bin, fig)
		})
		t.Run("serving", func(t *testing.T) {
			t.Parallel()
			t.Run("publisher_faults", func(t *testing.T) { testPublisherFaults(t, bin, fig) })
			t.Run("load", func(t *testing.T) { testLoad(t, bin, fig, rand.New(rand.NewPCG(seed, 2))) })
			t.Run("fuzz", func(t *testing.T) { testFuzz(t, bin, fig, rand.New(rand.NewPCG(seed, 3))) })
		})
	})
}

// figures collects each case's one-line summary. go test shows a passing
// package's output only with -v, so the lines also go to a file in
// $HERALD_ARTIFACTS, which CI keeps.
type figures struct {
	mu    sync.Mutex
	lines []string
}

func (f *figures) add(t *testing.T, format string, args ...any) {
	line := "reliability: " + fmt.Sprintf(format, args...)
	t.Log(line)
	fmt.Fprintln(os.Stdout, line)
	f.mu.Lock()
	f.lines = append(f.lines, line)
	f.mu.Unlock()
}

func (f *figures) flush(t *testing.T) {
	dir := os.Getenv("HERALD_ARTIFACTS")
	if dir == "" || len(f.lines) == 0 {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("artifacts: %v", err)
		return
	}
	body := strings.Join(f.lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "reliability.txt"), []byte(body), 0o644); err != nil {
		t.Errorf("artifacts: %v", err)
	}
}

// buildHerald builds the binary under test once for the suite.
func buildHerald(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herald")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// ---- one Herald installation ----

// instance is a config file, a database and the logs of every run of
// `herald serve` on them.
type instance struct {
	t       *testing.T
	bin     string
	dir     string
	addr    string
	cfg     map[string]any
	cfgPath string
	dbPath  string
	client  *http.Client

	mu   sync.Mutex
	logs []string
	ro   *sql.DB
}

func newInstance(t *testing.T, bin string) *instance {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	in := &instance{t: t, bin: bin, dir: dir, addr: addr, cfgPath: filepath.Join(dir, "herald.yaml"),
		dbPath: filepath.Join(dir, "herald.db"), client: &http.Client{Timeout: 60 * time.Second}}
	in.cfg = map[string]any{
		"database": in.dbPath,
		"base_url": "http://" + addr,
		"listen":   addr,
		"timezone": "UTC",
		"log":      map[string]any{"format": "json", "level": "info"},
		"schedule": map[string]any{"pull": "0 0 1 1 *", "daily_digest": "0 0 1 1 *", "weekly_digest": "0 0 1 1 *"},
		// The sample publishers run on loopback.
		"pull":    map[string]any{"allow_private": true},
		"secrets": map[string]any{"token_keys": []string{relTokenKey}},
		"admin":   map[string]any{"tokens": []string{relAdminToken}},
		"mail":    map[string]any{"from": relFrom, "transport": "file", "dir": filepath.Join(dir, "outbox")},
	}
	t.Cleanup(func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.ro != nil {
			in.ro.Close()
		}
	})
	return in
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (in *instance) base() string { return "http://" + in.addr }

// smtpMail points the mail section at an SMTP server on loopback.
func (in *instance) smtpMail(srv *smtptest.Server, extra map[string]any) {
	m := map[string]any{
		"from": relFrom, "transport": "smtp",
		"smtp":        map[string]any{"host": srv.Host(), "port": srv.Port(), "tls": "none", "timeout": "5s"},
		"concurrency": 4, "rate": 5000,
	}
	for k, v := range extra {
		m[k] = v
	}
	in.cfg["mail"] = m
}

func (in *instance) writeConfig() {
	in.t.Helper()
	raw, err := yaml.Marshal(in.cfg)
	if err != nil {
		in.t.Fatal(err)
	}
	if err := os.WriteFile(in.cfgPath, raw, 0o600); err != nil {
		in.t.Fatal(err)
	}
}

// cli runs a Herald command on this installation and returns its output.
// The --config flag goes after the command's words ("subscribers import").
func (in *instance) cli(args ...string) string {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	words := 1
	if slices.Contains([]string{"subscribers", "topics", "sources", "departments"}, args[0]) {
		words = 2
	}
	full := append(append(slices.Clone(args[:words]), "--config", in.cfgPath), args[words:]...)
	cmd := exec.CommandContext(ctx, in.bin, full...)
	cmd.Dir = in.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		in.t.Fatalf("herald %s: %v\n%s\n%s", strings.Join(full, " "), err, out.String(), tailString(errb.String(), 3000))
	}
	return out.String()
}

// importSubscribers imports CSV rows (email,topic,department,frequency).
func (in *instance) importSubscribers(rows []string) {
	in.t.Helper()
	path := filepath.Join(in.dir, "subscribers.csv")
	body := "email,topic,department,frequency\n" + strings.Join(rows, "\n") + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		in.t.Fatal(err)
	}
	out := in.cli("subscribers", "import", path)
	if !strings.Contains(out, fmt.Sprintf("imported %d subscriptions", len(rows))) {
		in.t.Fatalf("import: %s", out)
	}
}

// served is one run of `herald serve`. Its log lines are kept in a file,
// and their messages in order, so that a test can wait for one.
type served struct {
	in      *instance
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}

	mu      sync.Mutex
	msgs    []string
	changed chan struct{}
}

func (in *instance) serve() *served {
	in.t.Helper()
	in.mu.Lock()
	logPath := filepath.Join(in.dir, fmt.Sprintf("serve-%02d.log", len(in.logs)))
	in.logs = append(in.logs, logPath)
	in.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		in.t.Fatal(err)
	}
	cmd := exec.Command(in.bin, "serve", "--config", in.cfgPath)
	cmd.Dir = in.dir
	cmd.Stdout = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		in.t.Fatal(err)
	}
	s := &served{in: in, cmd: cmd, logPath: logPath, done: make(chan struct{}), changed: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			f.Write(line)
			f.Write([]byte{'\n'})
			var rec struct {
				Msg string `json:"msg"`
			}
			json.Unmarshal(line, &rec)
			s.mu.Lock()
			s.msgs = append(s.msgs, rec.Msg)
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
		io.Copy(io.Discard, pipe)
		cmd.Wait()
		f.Close()
		close(s.done)
	}()
	in.t.Cleanup(s.kill)
	return s
}

// waitMsg waits for a log message containing substr and reports whether
// it came before timeout (or before the process ended).
func (s *served) waitMsg(substr string, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		found := slices.ContainsFunc(s.msgs, func(m string) bool { return strings.Contains(m, substr) })
		ch := s.changed
		s.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-ch:
		case <-s.done:
			return false
		case <-deadline.C:
			return false
		}
	}
}

func (s *served) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL, as a power cut or the OOM killer
// would: no shutdown code runs.
func (s *served) kill() {
	if s.exited() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop asks for a clean shutdown and fails the test if it takes more than
// 20 seconds or does not log "herald stopped".
func (s *served) stop(t *testing.T) {
	t.Helper()
	if s.exited() {
		t.Fatalf("herald serve had already exited; log %s:\n%s", s.logPath, tailFile(s.logPath, 3000))
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.kill()
		t.Fatalf("herald serve did not stop within 20s of SIGTERM")
	}
	if !s.waitMsg("herald stopped", time.Second) {
		t.Errorf("herald serve did not log a clean stop")
	}
}

// peakRSS is the process's peak resident memory in bytes (VmHWM).
func (s *served) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
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

// waitReady waits until /readyz answers 200: the database answers and the
// scheduler runs, so the start-up catch-up and first pull are done.
func (s *served) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := s.in.client.Get(s.in.base() + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if s.exited() {
			t.Fatalf("herald serve exited; log %s:\n%s", s.logPath, tailFile(s.logPath, 3000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald serve not ready after %v (%v); log:\n%s", timeout, err, tailFile(s.logPath, 3000))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// api calls the admin API with the admin token.
func (in *instance) api(method, path string, body []byte) (int, []byte) {
	in.t.Helper()
	req, err := http.NewRequest(method, in.base()+path, bytes.NewReader(body))
	if err != nil {
		in.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+relAdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.client.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// outboxCounts reads the number of messages per status from the admin API.
func (in *instance) outboxCounts() map[string]int {
	in.t.Helper()
	code, raw := in.api("GET", "/api/v1/outbox", nil)
	var out struct {
		Counts map[string]int `json:"counts"`
	}
	if code != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		in.t.Fatalf("GET /api/v1/outbox: %d %s", code, raw)
	}
	return out.Counts
}

// db is a read-only connection to the database, shared by the test; it
// reads alongside a running Herald (WAL).
func (in *instance) db() *sql.DB {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ro == nil {
		db, err := sql.Open("sqlite", "file:"+in.dbPath+"?mode=ro&_pragma=busy_timeout(10000)")
		if err != nil {
			in.t.Fatal(err)
		}
		in.ro = db
	}
	return in.ro
}

// queryStrings runs a query whose columns are all text and returns its rows.
func (in *instance) queryStrings(q string, args ...any) [][]string {
	in.t.Helper()
	rows, err := in.db().Query(q, args...)
	if err != nil {
		in.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			in.t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		in.t.Fatal(err)
	}
	return out
}

func (in *instance) queryInt(q string, args ...any) int {
	in.t.Helper()
	var n int
	if err := in.db().QueryRow(q, args...).Scan(&n); err != nil {
		in.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// logProblems scans every log of this installation for SQLite lock
// errors, panics and (when errorsToo) error-level lines.
func (in *instance) logProblems(errorsToo bool) []string {
	in.mu.Lock()
	logs := slices.Clone(in.logs)
	in.mu.Unlock()
	var out []string
	for _, p := range logs {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			low := strings.ToLower(line)
			if strings.Contains(low, "database is locked") || strings.Contains(low, "sqlite_busy") ||
				strings.Contains(low, "panic") || (errorsToo && strings.Contains(line, `"level":"ERROR"`)) {
				out = append(out, filepath.Base(p)+": "+tailString(line, 400))
			}
		}
		f.Close()
	}
	return out
}

// infoLeaks returns info-level log lines that hold a secret or a
// subscriber's address.
func (in *instance) infoLeaks(secrets ...string) []string {
	in.mu.Lock()
	logs := slices.Clone(in.logs)
	in.mu.Unlock()
	var out []string
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if !strings.Contains(line, `"level":"INFO"`) {
				continue
			}
			for _, s := range secrets {
				if strings.Contains(line, s) {
					out = append(out, tailString(line, 300))
				}
			}
		}
	}
	return out
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	return tailString(string(b), n)
}

// ---- a publisher ----

// relItem is one release a publisher offers.
type relItem struct {
	GUID, Title, Summary string
	Published            time.Time
	Dept                 string
	Keywords             []string
	Wave                 int
}

// relPublisher serves RSS 2.0 feeds of items, one per source name at
// /feeds/NAME.rss, plus any handlers a test adds. With pause set it writes
// half of each body, waits, then the rest, as a slow publisher does; hook
// hears "begin" and "end" of each body.
type relPublisher struct {
	srv   *httptest.Server
	mu    sync.Mutex
	items map[string][]relItem
	extra map[string]http.HandlerFunc
	pause time.Duration
	etags bool
	hook  func(event string)
}

func newRelPublisher(t *testing.T) *relPublisher {
	p := &relPublisher{items: map[string][]relItem{}, extra: map[string]http.HandlerFunc{}}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *relPublisher) url(name string) string { return p.srv.URL + "/feeds/" + name + ".rss" }

func (p *relPublisher) add(source string, items ...relItem) {
	p.mu.Lock()
	p.items[source] = append(p.items[source], items...)
	p.mu.Unlock()
}

func (p *relPublisher) handle(path string, h http.HandlerFunc) {
	p.mu.Lock()
	p.extra[path] = h
	p.mu.Unlock()
}

func (p *relPublisher) setHook(h func(string)) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

func (p *relPublisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	h := p.extra[r.URL.Path]
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/feeds/"), ".rss")
	items, known := p.items[name]
	items = slices.Clone(items)
	pause, etags, hook := p.pause, p.etags, p.hook
	p.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	if !known {
		http.NotFound(w, r)
		return
	}
	body := rssDocument(name, items)
	if etags {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
	if hook != nil {
		hook("begin")
	}
	half := len(body) / 2
	w.Write(body[:half])
	if pause > 0 {
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(pause):
		case <-r.Context().Done():
			return
		}
	}
	w.Write(body[half:])
	if hook != nil {
		hook("end")
	}
}

// rssDocument renders items, newest first, as an RSS 2.0 document.
func rssDocument(title string, items []relItem) []byte {
	type rssItem struct {
		Title       string `xml:"title"`
		Link        string `xml:"link"`
		GUID        string `xml:"guid"`
		PubDate     string `xml:"pubDate"`
		Description string `xml:"description"`
	}
	var doc struct {
		XMLName xml.Name  `xml:"rss"`
		Version string    `xml:"version,attr"`
		Title   string    `xml:"channel>title"`
		Link    string    `xml:"channel>link"`
		Desc    string    `xml:"channel>description"`
		Items   []rssItem `xml:"channel>item"`
	}
	doc.Version, doc.Title, doc.Link, doc.Desc = "2.0", title, "https://coast.example.org/", "News"
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		doc.Items = append(doc.Items, rssItem{Title: it.Title, Link: "https://coast.example.org/news/" + it.GUID,
			GUID: it.GUID, PubDate: it.Published.Format(time.RFC1123Z), Description: it.Summary})
	}
	body, err := xml.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return append([]byte(xml.Header), body...)
}

// ---- a small newsroom: departments, topics, releases, subscribers ----

var (
	worldKeywords = []string{"harbour", "lighthouse", "ferry", "estuary", "dune", "pier", "reef", "lagoon", "marina", "seawall"}
	worldDepts    = []struct{ Slug, Name string }{{"north", "Northern Coast Office"}, {"south", "Southern Coast Office"}, {"west", "Western Isles Office"}}
	noticeRE      = regexp.MustCompile(`Notice \d+-\d+-\d+`)
)

// world is the test's own account of what exists: what the publisher
// offered and who subscribed to what. Herald's results are checked against
// it, never against Herald's own records.
type world struct {
	items []relItem
	subs  []worldSub
}

// worldSub is a subscriber: its address, frequency and targets (a
// department slug, or topic keywords).
type worldSub struct {
	Address   string
	Frequency string
	Dept      string
	Topics    []string
}

func (w *world) configure(in *instance, pub *relPublisher) {
	var depts, sources, topics []map[string]any
	for _, d := range worldDepts {
		depts = append(depts, map[string]any{"slug": d.Slug, "name": d.Name})
		sources = append(sources, map[string]any{"name": d.Slug + "-news", "url": pub.url(d.Slug + "-news"), "department": d.Slug, "format": "rss"})
	}
	for _, k := range worldKeywords {
		topics = append(topics, map[string]any{"slug": k, "title": strings.ToUpper(k[:1]) + k[1:] + " works",
			"match": map[string]any{"keywords": []string{k}}})
	}
	in.cfg["departments"], in.cfg["sources"], in.cfg["topics"] = depts, sources, topics
}

// wave makes n releases per department for wave w; wave 0 is the back
// catalogue, published days ago.
func (w *world) wave(pub *relPublisher, wave, n int) {
	published := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	if wave == 0 {
		published = published.Add(-72 * time.Hour)
	}
	for s, d := range worldDepts {
		for i := range n {
			k1 := worldKeywords[(wave*3+i*5+s)%len(worldKeywords)]
			k2 := worldKeywords[(wave*7+i+2*s+1)%len(worldKeywords)]
			kws := []string{k1}
			if k2 != k1 {
				kws = append(kws, k2)
			}
			it := relItem{GUID: fmt.Sprintf("%s-%d-%d", d.Slug, wave, i), Dept: d.Slug, Keywords: kws, Wave: wave,
				Title:     fmt.Sprintf("Notice %d-%d-%d: %s works", wave, s, i, strings.Join(kws, " and ")),
				Summary:   "<p>Details of the notice and its timetable.</p>",
				Published: published.Add(time.Duration(i) * time.Second)}
			w.items = append(w.items, it)
			pub.add(d.Slug+"-news", it)
		}
	}
}

// subscribe makes n subscribers: a quarter immediate, the rest daily; a
// third follow a department, the others one or two topics.
func (w *world) subscribe(n int) []string {
	var rows []string
	for i := range n {
		s := worldSub{Address: fmt.Sprintf("reader%04d@example.net", i), Frequency: "daily"}
		if i%4 == 0 {
			s.Frequency = "immediately"
		}
		if i%3 == 0 {
			s.Dept = worldDepts[(i/3)%len(worldDepts)].Slug
			rows = append(rows, fmt.Sprintf("%s,,%s,%s", s.Address, s.Dept, s.Frequency))
		} else {
			s.Topics = []string{worldKeywords[(i*7)%len(worldKeywords)]}
			if t2 := worldKeywords[(i*3+1)%len(worldKeywords)]; i%2 == 0 && t2 != s.Topics[0] {
				s.Topics = append(s.Topics, t2)
			}
			for _, k := range s.Topics {
				rows = append(rows, fmt.Sprintf("%s,%s,,%s", s.Address, k, s.Frequency))
			}
		}
		w.subs = append(w.subs, s)
	}
	return rows
}

func (s worldSub) matches(it relItem) bool {
	if s.Dept != "" {
		return it.Dept == s.Dept
	}
	for _, k := range s.Topics {
		if slices.Contains(it.Keywords, k) {
			return true
		}
	}
	return false
}

// inFeed lists the titles a feed key ("all", "department:x", "topic:x")
// must hold.
func (w *world) inFeed(key string) []string {
	var out []string
	for _, it := range w.items {
		kind, slug, _ := strings.Cut(key, ":")
		if kind == "all" || (kind == "department" && it.Dept == slug) || (kind == "topic" && slices.Contains(it.Keywords, slug)) {
			out = append(out, it.Title)
		}
	}
	sort.Strings(out)
	return out
}

func (w *world) feedKeys() []string {
	keys := []string{"all"}
	for _, d := range worldDepts {
		keys = append(keys, "department:"+d.Slug)
	}
	for _, k := range worldKeywords {
		keys = append(keys, "topic:"+k)
	}
	return keys
}

// ---- feeds ----

type atomDoc struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	Links   []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"link"`
	Entries []struct {
		ID    string `xml:"id"`
		Title struct {
			Type string `xml:"type,attr"`
			Text string `xml:",chardata"`
		} `xml:"title"`
	} `xml:"entry"`
}

// title is an Atom entry title as text: type="html" titles are unescaped.
func atomTitle(typ, text string) string {
	if typ == "html" || typ == "xhtml" {
		return html.UnescapeString(text)
	}
	return text
}

type rssDoc struct {
	XMLName xml.Name `xml:"rss"`
	Items   []struct {
		Title string `xml:"title"`
		GUID  string `xml:"guid"`
	} `xml:"channel>item"`
}

type jsonDoc struct {
	Version string `json:"version"`
	Items   []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"items"`
}

// feedPath is the URL path of a feed key without its extension.
func feedPath(key string) string {
	kind, slug, _ := strings.Cut(key, ":")
	switch kind {
	case "department":
		return "/feeds/departments/" + slug
	case "topic":
		return "/feeds/topics/" + slug
	}
	return "/feeds/all"
}

// get fetches a path from Herald and fails the test unless it answers 200.
func (in *instance) get(path string) []byte {
	in.t.Helper()
	resp, err := in.client.Get(in.base() + path)
	if err != nil {
		in.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		in.t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return body
}

// feedTitles checks one feed in its three formats (well-formed XML and
// JSON, the same entries in each) and returns every title it holds,
// walking the Atom feed's RFC 5005 archive pages back to the first. The
// current feed may repeat entries of the newest archive page (it always
// holds the newest entries); each entry id counts once.
func (in *instance) feedTitles(key string) (titles []string, docs int) {
	in.t.Helper()
	path := feedPath(key)
	var current []string
	next := path + ".atom"
	seen := map[string]bool{}
	ids := map[string]string{}
	for next != "" {
		if seen[next] {
			in.t.Fatalf("%s: archive chain loops at %s", key, next)
		}
		seen[next] = true
		var doc atomDoc
		if err := xml.Unmarshal(in.get(next), &doc); err != nil {
			in.t.Fatalf("%s is not a valid Atom document: %v", next, err)
		}
		docs++
		for _, e := range doc.Entries {
			title := atomTitle(e.Title.Type, e.Title.Text)
			if prev, ok := ids[e.ID]; ok && prev != title {
				in.t.Errorf("%s: entry %s is %q in one document and %q in another", key, e.ID, prev, title)
			} else if !ok {
				titles = append(titles, title)
			}
			ids[e.ID] = title
			if next == path+".atom" {
				current = append(current, title)
			}
		}
		next = ""
		for _, l := range doc.Links {
			if l.Rel == "prev-archive" {
				next = strings.TrimPrefix(l.Href, in.base())
			}
		}
	}
	var rss rssDoc
	if err := xml.Unmarshal(in.get(path+".rss"), &rss); err != nil {
		in.t.Fatalf("%s.rss is not valid RSS: %v", path, err)
	}
	var js jsonDoc
	if err := json.Unmarshal(in.get(path+".json"), &js); err != nil || js.Version != "https://jsonfeed.org/version/1.1" {
		in.t.Fatalf("%s.json is not a JSON Feed 1.1 document: %v", path, err)
	}
	var rt, jt []string
	for _, it := range rss.Items {
		rt = append(rt, it.Title)
	}
	for _, it := range js.Items {
		jt = append(jt, it.Title)
	}
	if !slices.Equal(rt, current) || !slices.Equal(jt, current) {
		in.t.Errorf("%s: the Atom, RSS and JSON feeds list different entries:\natom %q\nrss  %q\njson %q", key, current, rt, jt)
	}
	return titles, docs + 2
}

// ---- mail ----

// messageID is the Message-ID header of the outbox row whose message_id is
// id: the right-hand side is the domain of the From address.
func messageID(id string) string { return "<" + id + "@news.example.org>" }

// gotMail is one message the SMTP server accepted, decoded.
type gotMail struct {
	ID, To, Subject, Text string
}

func decodeMails(t *testing.T, msgs []smtptest.Message) []gotMail {
	t.Helper()
	out := make([]gotMail, 0, len(msgs))
	for _, m := range msgs {
		g, err := decodeMail(m.Data)
		if err != nil {
			t.Fatalf("a message Herald sent cannot be read: %v", err)
		}
		g.ID = m.MessageID
		if len(m.To) == 1 {
			g.To = strings.ToLower(m.To[0])
		}
		out = append(out, g)
	}
	return out
}

// decodeMail reads a message's Message-ID, decoded subject and plain-text
// part.
func decodeMail(raw []byte) (gotMail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return gotMail{}, err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return gotMail{}, fmt.Errorf("subject %q: %w", msg.Header.Get("Subject"), err)
	}
	g := gotMail{ID: msg.Header.Get("Message-ID"), Subject: subject}
	if to, err := mail.ParseAddress(msg.Header.Get("To")); err == nil {
		g.To = strings.ToLower(to.Address)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
				b, _ := io.ReadAll(p)
				g.Text = string(b)
			}
		}
	}
	return g, nil
}

// ---- crash recovery ----

// testCrash kills `herald serve` with SIGKILL while it pulls, stores,
// renders, fans alerts out, composes digests and sends mail, restarting it
// each time, and then checks that nothing was lost: every release stored
// once and in every feed it belongs to, every subscriber given each of its
// immediate alerts and each matching release in exactly one digest, and
// any message sent twice sent with the same Message-ID.
func testCrash(t *testing.T, bin string, fig *figures, rng *rand.Rand) {
	smtp := smtptest.Start(t, smtptest.Options{})
	pub := newRelPublisher(t)
	pub.pause = 150 * time.Millisecond
	in := newInstance(t, bin)
	var w world
	w.configure(in, pub)
	// Daily digest periods of 10 seconds, so that digests are composed
	// and sent all through the test, catch-ups of missed periods included.
	in.cfg["schedule"] = map[string]any{"pull": "0 0 1 1 *", "daily_digest": "@every 10s", "weekly_digest": "0 0 1 1 *"}
	in.cfg["pull"] = map[string]any{"timeout": "10s"}
	in.smtpMail(smtp, nil)
	in.writeConfig()
	w.wave(pub, 0, 3)
	in.cli("pull") // the back catalogue: stored, never alerted
	const subscribers = 1200
	in.importSubscribers(w.subscribe(subscribers))

	type kill struct {
		phase       string
		interrupted bool
	}
	var kills []kill
	// interrupted tells from the database whether a kill cut the work of
	// its phase short: releases of the wave not stored, feeds left to
	// render, releases left to fan out, a digest run left unfinished,
	// messages left claimed.
	interrupted := func(phase string, wave int) bool {
		switch phase {
		case "pull", "store":
			var guids []any
			for _, it := range w.items {
				if it.Wave == wave {
					guids = append(guids, it.GUID)
				}
			}
			return in.queryInt(`SELECT count(*) FROM releases WHERE guid IN (`+strings.Repeat("?,", len(guids)-1)+`?)`, guids...) < len(guids)
		case "render":
			return in.queryInt(`SELECT count(*) FROM feed_dirty`) > 0
		case "fan-out":
			return in.queryInt(`SELECT count(*) FROM releases WHERE alert_pending = 1`) > 0
		case "digest":
			return in.queryInt(`SELECT count(*) FROM digest_runs WHERE status = 'running'`) > 0
		}
		return in.queryInt(`SELECT count(*) FROM outbox WHERE status = 'sending'`) > 0
	}
	// killDuring starts Herald, waits for the moment of phase and kills it
	// a random instant later.
	killDuring := func(phase string, wave int) {
		begin, end := make(chan struct{}, 64), make(chan struct{}, 64)
		pub.setHook(func(ev string) {
			ch := begin
			if ev == "end" {
				ch = end
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		})
		defer pub.setHook(nil)
		sent := smtp.Count()
		lastSeen := in.queryStrings(`SELECT coalesce(max(first_seen_at), '') FROM releases WHERE alertable = 1`)[0][0]
		s := in.serve()
		jitter := func(lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)+1))) }
		waitCh := func(ch chan struct{}, n int) bool {
			timeout := time.After(10 * time.Second)
			for range n {
				select {
				case <-ch:
				case <-timeout:
					return false
				}
			}
			return true
		}
		hit := false
		switch phase {
		case "pull": // while the publisher is half-way through a body
			hit = waitCh(begin, 1)
			jitter(0, pub.pause)
		case "store": // as the last body arrives: parsing and storing
			hit = waitCh(end, len(worldDepts))
			jitter(0, 5*time.Millisecond)
		case "render":
			hit = s.waitMsg("pulled", 10*time.Second)
			jitter(0, 15*time.Millisecond)
		case "fan-out":
			hit = s.waitMsg("feeds rendered", 10*time.Second)
			jitter(0, 20*time.Millisecond)
		case "digest": // while the start-up catch-up composes the period with the newest releases
			deadline := time.Now().Add(10 * time.Second)
			for !hit && !s.exited() && time.Now().Before(deadline) {
				hit = in.queryInt(`SELECT count(*) FROM digest_runs WHERE status = 'running' AND period_end > ?`, lastSeen) > 0
				time.Sleep(time.Millisecond)
			}
			jitter(0, 20*time.Millisecond)
		case "digest-sending":
			hit = s.waitMsg("digest queued", 10*time.Second)
			jitter(0, 300*time.Millisecond)
		case "sending":
			deadline := time.Now().Add(10 * time.Second)
			for smtp.Count() == sent && time.Now().Before(deadline) && !s.exited() {
				time.Sleep(2 * time.Millisecond)
			}
			hit = smtp.Count() > sent
			jitter(20*time.Millisecond, 400*time.Millisecond)
		}
		if s.exited() {
			t.Fatalf("herald serve exited by itself during %s; log:\n%s", phase, tailFile(s.logPath, 3000))
		}
		s.kill()
		if !hit {
			t.Logf("kill %d (%s): the moment aimed for did not come within 10s", len(kills)+1, phase)
		}
		kills = append(kills, kill{phase, interrupted(phase, wave)})
	}

	phases := []string{"pull", "store", "render", "fan-out", "sending"}
	for wave := 1; wave <= 10; wave++ {
		w.wave(pub, wave, 2)
		killDuring(phases[(wave-1)%len(phases)], wave)
	}
	// Twice: let one run finish its pull, so the last wave is stored, and
	// kill it once it is ready (sending, usually); wait for the digest
	// period holding the last releases to end; kill the next starts while
	// they compose that period's digests and send them.
	for round := range 2 {
		if round == 1 {
			w.wave(pub, 11, 2)
		}
		s := in.serve()
		s.waitReady(t, time.Minute)
		s.kill()
		kills = append(kills, kill{"sending", interrupted("sending", 0)})
		time.Sleep(11 * time.Second)
		for _, phase := range []string{"digest", "digest-sending", "sending"} {
			killDuring(phase, 0)
		}
	}

	final := in.serve()
	final.waitReady(t, time.Minute)
	// Messages claimed by a killed Herald are sent again when their claim
	// expires (two minutes), so settling takes up to that long.
	alertable := 0
	for _, it := range w.items {
		if it.Wave > 0 {
			alertable++
		}
	}
	start := time.Now()
	for {
		c := in.outboxCounts()
		stored := in.queryInt(`SELECT count(*) FROM releases`)
		lastSeen := in.queryStrings(`SELECT coalesce(max(first_seen_at), '') FROM releases WHERE alertable = 1`)[0][0]
		covered := in.queryInt(`SELECT count(*) FROM digest_runs WHERE frequency = 'daily' AND status = 'done' AND period_end > ?`, lastSeen)
		running := in.queryInt(`SELECT count(*) FROM digest_runs WHERE status = 'running'`)
		if c["pending"] == 0 && c["sending"] == 0 && stored == len(w.items) && covered > 0 && running == 0 {
			break
		}
		if time.Since(start) > 4*time.Minute {
			t.Fatalf("not settled after 4 minutes: outbox %v, %d of %d releases stored, digest covered %d, running %d",
				c, stored, len(w.items), covered, running)
		}
		time.Sleep(time.Second)
	}
	settle := time.Since(start)

	// Every release stored once, alertable exactly when it is new.
	want := map[string]relItem{}
	for _, it := range w.items {
		want[it.GUID] = it
	}
	rows := in.queryStrings(`SELECT r.guid, r.title, r.alertable, s.name FROM releases r JOIN sources s ON s.id = r.source_id`)
	if len(rows) != len(w.items) {
		t.Errorf("%d releases stored, want %d", len(rows), len(w.items))
	}
	for _, r := range rows {
		it, ok := want[r[0]]
		switch {
		case !ok:
			t.Errorf("release %q was never published", r[0])
		case r[1] != it.Title || r[3] != it.Dept+"-news":
			t.Errorf("release %q stored as %q from %s", r[0], r[1], r[3])
		case (r[2] == "1") != (it.Wave > 0):
			t.Errorf("release %q alertable=%s, wave %d", r[0], r[2], it.Wave)
		}
		delete(want, r[0])
	}
	for g := range want {
		t.Errorf("release %q was lost", g)
	}
	tags := in.queryStrings(`SELECT r.guid, t.slug FROM release_topics rt JOIN releases r ON r.id = rt.release_id JOIN topics t ON t.id = rt.topic_id`)
	gotTags := map[string][]string{}
	for _, r := range tags {
		gotTags[r[0]] = append(gotTags[r[0]], r[1])
	}
	for _, it := range w.items {
		g := gotTags[it.GUID]
		sort.Strings(g)
		k := slices.Clone(it.Keywords)
		sort.Strings(k)
		if !slices.Equal(g, k) {
			t.Errorf("release %q tagged %v, want %v", it.GUID, g, k)
		}
	}

	// Every feed valid in three formats and holding exactly its releases.
	feedDocs := 0
	for _, key := range w.feedKeys() {
		titles, docs := in.feedTitles(key)
		feedDocs += docs
		sort.Strings(titles)
		if want := w.inFeed(key); !slices.Equal(titles, want) {
			t.Errorf("feed %s (with its archive) holds %d entries, want %d", key, len(titles), len(want))
		}
	}

	// Mail: every outbox row sent, each received at least once under its
	// Message-ID, nothing received that is not in the outbox.
	outbox := in.queryStrings(`SELECT message_id, to_addr, kind, status FROM outbox`)
	byID := map[string][]string{}
	for _, r := range outbox {
		if r[3] != "sent" {
			t.Errorf("outbox message %s to %s ended %s", r[0], r[1], r[3])
		}
		byID[messageID(r[0])] = r
	}
	mails := decodeMails(t, smtp.Messages())
	copies := map[string]int{}
	for _, m := range mails {
		copies[m.ID]++
		if r, ok := byID[m.ID]; !ok || r[1] != m.To {
			t.Errorf("received %s to %s, which the outbox does not hold", m.ID, m.To)
		}
	}
	lost, dups := 0, 0
	for id := range byID {
		switch n := copies[id]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	if lost > 0 {
		t.Errorf("%d messages in the outbox were never received", lost)
	}

	// Against the world: each immediate subscriber got one alert per
	// matching release; each daily subscriber got each matching release in
	// exactly one digest, and nobody got anything else.
	type got struct {
		immediate map[string]map[string]bool // title -> Message-IDs
		digests   map[string]string          // Message-ID -> text
	}
	byAddr := map[string]*got{}
	for _, m := range mails {
		g := byAddr[m.To]
		if g == nil {
			g = &got{immediate: map[string]map[string]bool{}, digests: map[string]string{}}
			byAddr[m.To] = g
		}
		if strings.Contains(m.Subject, " digest for ") {
			g.digests[m.ID] = m.Text
			continue
		}
		title := noticeRE.FindString(m.Subject)
		if title == "" {
			t.Errorf("unexpected message to %s: %q", m.To, m.Subject)
			continue
		}
		if g.immediate[title] == nil {
			g.immediate[title] = map[string]bool{}
		}
		g.immediate[title][m.ID] = true
	}
	immediates, digests, wrong := 0, 0, 0
	for _, s := range w.subs {
		var expect []string
		for _, it := range w.items {
			if it.Wave > 0 && s.matches(it) {
				expect = append(expect, noticeRE.FindString(it.Title))
			}
		}
		sort.Strings(expect)
		g := byAddr[s.Address]
		if g == nil {
			g = &got{immediate: map[string]map[string]bool{}, digests: map[string]string{}}
		}
		var gotTitles []string
		if s.Frequency == "immediately" {
			if len(g.digests) > 0 {
				t.Errorf("%s (immediate) got %d digests", s.Address, len(g.digests))
				wrong++
			}
			for title, ids := range g.immediate {
				gotTitles = append(gotTitles, title)
				immediates += len(ids)
				if len(ids) > 1 {
					t.Errorf("%s got %d different messages about %s", s.Address, len(ids), title)
					wrong++
				}
			}
		} else {
			if len(g.immediate) > 0 {
				t.Errorf("%s (daily) got %d immediate alerts", s.Address, len(g.immediate))
				wrong++
			}
			for _, text := range g.digests {
				digests++
				inThis := noticeRE.FindAllString(text, -1)
				if len(inThis) == 0 {
					t.Errorf("%s got an empty digest", s.Address)
					wrong++
				}
				gotTitles = append(gotTitles, inThis...)
			}
		}
		sort.Strings(gotTitles)
		if !slices.Equal(gotTitles, expect) {
			t.Errorf("%s (%s) got %d releases (%v), want %d (%v)", s.Address, s.Frequency, len(gotTitles), gotTitles, len(expect), expect)
			wrong++
			if wrong > 20 {
				t.Fatal("too many wrong mailboxes")
			}
		}
	}
	if problems := in.logProblems(false); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	if leaks := in.infoLeaks("@example.net", relAdminToken, relTokenKey); len(leaks) > 0 {
		t.Errorf("%d info-level log lines hold an address or secret, first: %s", len(leaks), leaks[0])
	}
	final.stop(t)

	counts, cut := map[string]int{}, map[string]int{}
	for _, k := range kills {
		counts[k.phase]++
		if k.interrupted {
			cut[k.phase]++
		}
	}
	var parts []string
	for _, p := range []string{"pull", "store", "render", "fan-out", "digest", "digest-sending", "sending"} {
		parts = append(parts, fmt.Sprintf("%s %d/%d", p, cut[p], counts[p]))
	}
	fig.add(t, "crash: %d SIGKILLs, by phase aimed for with how many left its work unfinished (%s), %d starts; "+
		"%d releases stored once (%d alertable), "+
		"%d feed documents valid with every release; %d subscribers got %d immediate alerts and %d digests: %d lost, "+
		"%d wrong, %d in-flight duplicates (same Message-ID); settled %s after the last start",
		len(kills), strings.Join(parts, ", "), len(kills)+1, len(rows), alertable, feedDocs, subscribers,
		immediates, digests, lost, wrong, dups, settle.Round(time.Second))
}

// ---- SMTP faults ----

// testSMTPFaults sends 600 immediate alerts through a relay that answers
// 4xx to a third of them once, 5xx to some addresses always, 4xx to a few
// always, stalls and hangs up: every message must end delivered or failed
// for good, none lost, and only a message whose delivery the relay never
// confirmed may arrive twice (with the same Message-ID).
func testSMTPFaults(t *testing.T, bin string, fig *figures) {
	smtp := smtptest.Start(t, smtptest.Options{})
	pub := newRelPublisher(t)
	pub.etags = true
	in := newInstance(t, bin)
	in.cfg["departments"] = []map[string]any{{"slug": "coastal", "name": "Coastal Office"}}
	in.cfg["sources"] = []map[string]any{{"name": "coastal-news", "url": pub.url("coastal-news"), "department": "coastal", "format": "rss"}}
	in.smtpMail(smtp, map[string]any{"retry_max_age": "20s", "rate": 1000})
	in.cfg["mail"].(map[string]any)["smtp"].(map[string]any)["timeout"] = "2s"
	in.writeConfig()
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 3 {
		pub.add("coastal-news", relItem{GUID: fmt.Sprintf("old-%d", i), Title: fmt.Sprintf("Older notice %d", i),
			Summary: "<p>From the archive.</p>", Published: now.Add(-time.Duration(72+i) * time.Hour)})
	}
	in.cli("pull")

	const n = 600
	category := map[string]string{}
	var rows []string
	count := map[string]int{}
	for i := range n {
		addr := fmt.Sprintf("sub%03d@example.net", i)
		// Faults are spread out, so that no worker's batch holds several
		// stalls: a batch is sent in order, and stalls in a row would
		// push the batch's later messages past retry_max_age before
		// their first attempt.
		c := "ok"
		switch {
		case i%40 == 3:
			c = "5xx"
		case i%120 == 50:
			c = "4xx-always"
		case i%60 == 7:
			c = "stall"
		case i%60 == 17:
			c = "drop"
		case i%60 == 37:
			c = "drop-after-data"
		case i%3 == 0:
			c = "4xx-once"
		}
		category[addr] = c
		count[c]++
		rows = append(rows, addr+",,coastal,immediately")
	}
	in.importSubscribers(rows)
	smtp.SetFault(func(rcpt string, attempt int) smtptest.Fault {
		switch category[strings.ToLower(rcpt)] {
		case "5xx":
			return smtptest.Permanent()
		case "4xx-always":
			return smtptest.Temporary()
		case "4xx-once":
			if attempt == 1 {
				return smtptest.Temporary()
			}
		case "stall":
			if attempt == 1 {
				return smtptest.Stalled(6 * time.Second)
			}
		case "drop":
			if attempt == 1 {
				return smtptest.Dropped()
			}
		case "drop-after-data":
			if attempt == 1 {
				return smtptest.Dropped().AfterData()
			}
		}
		return smtptest.Fault{}
	})

	s := in.serve()
	s.waitReady(t, time.Minute)
	pub.add("coastal-news", relItem{GUID: "new-1", Title: "Harbour wall repairs finished ahead of the storm season",
		Summary: "<p>The works finished a week early.</p>", Published: time.Now().UTC().Add(-time.Minute).Truncate(time.Second)})
	if code, body := in.api("POST", "/api/v1/sources/coastal-news/pull", nil); code != http.StatusOK {
		t.Fatalf("pull: %d %s", code, body)
	}
	start := time.Now()
	for {
		c := in.outboxCounts()
		if c["pending"] == 0 && c["sending"] == 0 && c["sent"]+c["failed"] >= n {
			break
		}
		if time.Since(start) > 4*time.Minute {
			t.Fatalf("outbox not settled after 4 minutes: %v", c)
		}
		time.Sleep(time.Second)
	}
	settle := time.Since(start)

	received := map[string]map[string]int{} // address -> Message-ID -> copies
	for _, m := range smtp.Messages() {
		for _, to := range m.To {
			to = strings.ToLower(to)
			if received[to] == nil {
				received[to] = map[string]int{}
			}
			received[to][m.MessageID]++
		}
	}
	outbox := in.queryStrings(`SELECT to_addr, status, message_id, attempts, last_error FROM outbox WHERE kind = 'immediate'`)
	if len(outbox) != n {
		t.Errorf("%d immediate messages in the outbox, want %d", len(outbox), n)
	}
	delivered, failed, lost, dups := 0, 0, 0, 0
	for _, r := range outbox {
		addr, status, id := r[0], r[1], messageID(r[2])
		got := received[addr]
		c := category[addr]
		for other := range got {
			if other != id {
				t.Errorf("%s received a message %s that is not its outbox row's %s", addr, other, id)
			}
		}
		switch status {
		case "sent":
			delivered++
			if got[id] == 0 {
				lost++
				t.Errorf("%s: marked sent but never received", addr)
			}
			if got[id] > 1 {
				dups += got[id] - 1
				if c != "drop-after-data" {
					t.Errorf("%s (%s) received %s %d times", addr, c, id, got[id])
				}
			}
			if c == "5xx" || c == "4xx-always" {
				t.Errorf("%s (%s) was delivered", addr, c)
			}
		case "failed":
			failed++
			if c != "5xx" && c != "4xx-always" {
				t.Errorf("%s (%s) failed: %s", addr, c, r[4])
			}
			if len(got) > 0 {
				t.Errorf("%s failed but was received", addr)
			}
		default:
			lost++
			t.Errorf("%s ended %s", addr, status)
		}
	}
	for addr, c := range category {
		if c == "4xx-always" {
			continue
		}
		if c != "5xx" && len(received[addr]) == 0 {
			t.Errorf("%s (%s) never received its alert", addr, c)
		}
	}
	if problems := in.logProblems(false); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	if leaks := in.infoLeaks("@example.net", relAdminToken); len(leaks) > 0 {
		t.Errorf("%d info-level log lines hold an address or secret, first: %s", len(leaks), leaks[0])
	}
	s.stop(t)
	fig.add(t, "smtp faults: %d messages; injected: %d answered 4xx once (%.0f%% with the always-4xx), %d 5xx always, %d 4xx always, "+
		"%d stalls, %d dropped at RCPT, %d dropped after DATA; %d delivered, %d failed for good, %d lost, "+
		"%d duplicates (same Message-ID); settled in %s",
		n, count["4xx-once"], 100*float64(count["4xx-once"]+count["4xx-always"])/n, count["5xx"], count["4xx-always"],
		count["stall"], count["drop"], count["drop-after-data"], delivered, failed, lost, dups, settle.Round(time.Second))
}

// ---- publisher faults ----

// testPublisherFaults serves every kind of bad publisher at once (the bad
// inputs of ingest) while readers poll the feeds: the good sources must
// keep updating, every feed must keep serving, the bad sources must fail
// with an error or yield only clean releases, and memory must stay flat.
func testPublisherFaults(t *testing.T, bin string, fig *figures) {
	pub := newRelPublisher(t)
	pub.etags = true
	in := newInstance(t, bin)
	secretPath := filepath.Join(t.TempDir(), "secret.txt")
	const marker = "XXE-MARKER-7f3a9c"
	if err := os.WriteFile(secretPath, []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	pubDate := time.Now().UTC().Add(-time.Hour).Format(time.RFC1123Z)
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "reliability", name))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("SECRET_PATH"), []byte(secretPath))
		return bytes.ReplaceAll(b, []byte("PUBDATE"), []byte(pubDate))
	}
	serveBytes := func(ctype string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Write(body)
		}
	}
	good := rssDocument("good", []relItem{{GUID: "g1", Title: "Tide tables for the spring", Summary: "<p>Published.</p>",
		Published: time.Now().UTC().Add(-2 * time.Hour)}})
	// Must fail: nothing can be read from them.
	mustFail := map[string]http.HandlerFunc{
		"malformed": serveBytes("application/rss+xml", fixture("malformed.xml")),
		"html-page": serveBytes("text/html; charset=utf-8", fixture("page.html")),
		"truncated": serveBytes("application/rss+xml", good[:len(good)*2/3]),
		"huge": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rss+xml")
			io.WriteString(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>`)
			chunk := []byte(strings.Repeat("<item><title>Filler entry</title><description>"+strings.Repeat("x", 900)+"</description></item>", 64))
			for sent := 0; sent < 50<<20; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		},
		"stall": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rss+xml")
			w.Write(good[:200])
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		},
		"redirect-loop": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"?again="+strconv.Itoa(len(r.URL.RawQuery)), http.StatusFound)
		},
	}
	// May yield releases, which must then be clean.
	bestEffort := map[string]http.HandlerFunc{
		"billion-laughs": serveBytes("application/rss+xml", fixture("billion-laughs.xml")),
		"xxe":            serveBytes("application/rss+xml", fixture("xxe.xml")),
		"duplicate-ids":  serveBytes("application/rss+xml", fixture("duplicate-ids.xml")),
		"missing-fields": serveBytes("application/rss+xml", fixture("missing-fields.xml")),
		"invalid-utf8": serveBytes("application/rss+xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>`+
			`<title>Bytes</title><item><title>Pier `+"\xff\xfe"+` repairs</title><guid>u1</guid><pubDate>`+pubDate+`</pubDate>`+
			`<description>Caf`+"\xe9"+` reopens</description></item></channel></rss>`)),
		"control-chars": serveBytes("application/rss+xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>`+
			`<title>Controls</title><item><title>Buoy `+"\x01\x07\x1b[31m"+` relaid</title><guid>c1</guid><pubDate>`+pubDate+`</pubDate>`+
			`<description>Line`+"\x0b"+`feed</description></item></channel></rss>`)),
	}
	depts := []map[string]any{{"slug": "good-a", "name": "Good Office A"}, {"slug": "good-b", "name": "Good Office B"},
		{"slug": "hostile", "name": "Hostile Publishers"}}
	sources := []map[string]any{
		{"name": "good-a", "url": pub.url("good-a"), "department": "good-a", "format": "rss"},
		{"name": "good-b", "url": pub.url("good-b"), "department": "good-b", "format": "rss"},
	}
	var names []string
	for name := range mustFail {
		names = append(names, name)
	}
	for name := range bestEffort {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h := mustFail[name]
		if h == nil {
			h = bestEffort[name]
		}
		pub.handle("/bad/"+name, h)
		sources = append(sources, map[string]any{"name": name, "url": pub.srv.URL + "/bad/" + name, "department": "hostile", "format": "auto"})
	}
	in.cfg["departments"], in.cfg["sources"] = depts, sources
	in.cfg["schedule"] = map[string]any{"pull": "@every 1s", "daily_digest": "0 0 1 1 *", "weekly_digest": "0 0 1 1 *"}
	in.cfg["pull"] = map[string]any{"timeout": "3s", "max_body": 1 << 20, "concurrency": 4}
	in.writeConfig()
	seq := 0
	addGood := func() {
		seq++
		for _, src := range []string{"good-a", "good-b"} {
			pub.add(src, relItem{GUID: fmt.Sprintf("%s-%d", src, seq), Title: fmt.Sprintf("%s update %d on the harbour", src, seq),
				Summary: "<p>Routine update.</p>", Published: time.Now().UTC().Add(-time.Minute).Truncate(time.Second)})
		}
	}
	addGood()

	s := in.serve()
	s.waitReady(t, time.Minute)

	// Readers poll every feed meanwhile.
	urls := []string{"/feeds/all", "/feeds/departments/good-a", "/feeds/departments/good-b", "/feeds/departments/hostile"}
	var requests, failures atomic.Int64
	var failMu sync.Mutex
	var firstFailure string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			etags := map[string]string{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				u := urls[(c+i)%len(urls)] + []string{".atom", ".rss", ".json"}[i%3]
				req, _ := http.NewRequest("GET", in.base()+u, nil)
				if e := etags[u]; e != "" && i%2 == 0 {
					req.Header.Set("If-None-Match", e)
				}
				resp, err := in.client.Do(req)
				requests.Add(1)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					etags[u] = resp.Header.Get("ETag")
				}
				if err != nil || (resp.StatusCode != 200 && resp.StatusCode != 304) {
					failures.Add(1)
					failMu.Lock()
					if firstFailure == "" {
						firstFailure = fmt.Sprintf("%s: %v %v", u, err, resp)
					}
					failMu.Unlock()
				}
			}
		}()
	}

	var slowest time.Duration
	const rounds = 3
	for range rounds {
		addGood()
		added := time.Now()
		want := fmt.Sprintf("update %d on the harbour", seq)
		for _, src := range []string{"good-a", "good-b"} {
			for {
				if bytes.Contains(in.get("/feeds/departments/"+src+".atom"), []byte(want)) {
					break
				}
				if time.Since(added) > 20*time.Second {
					t.Fatalf("%s's new release is not in its feed 20s after it was published, with the hostile publishers failing", src)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		slowest = max(slowest, time.Since(added))
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Errorf("%d of %d feed requests failed, first: %s", failures.Load(), requests.Load(), firstFailure)
	}

	code, raw := in.api("GET", "/api/v1/sources", nil)
	var srcs []store.Source
	if code != 200 || json.Unmarshal(raw, &srcs) != nil {
		t.Fatalf("GET /api/v1/sources: %d %s", code, raw)
	}
	var failedNames, examples []string
	for _, src := range srcs {
		switch {
		case mustFail[src.Name] != nil:
			if src.LastStatus != "failed" || src.LastError == "" || src.FailureCount < 1 {
				t.Errorf("source %s: status %q, error %q, failures %d; want a recorded failure", src.Name, src.LastStatus, src.LastError, src.FailureCount)
			}
			failedNames = append(failedNames, src.Name)
			if len(examples) < 3 {
				examples = append(examples, fmt.Sprintf("%s: %q", src.Name, tailString(src.LastError, 80)))
			}
		case src.Name == "good-a" || src.Name == "good-b":
			if src.FailureCount != 0 || src.LastError != "" {
				t.Errorf("good source %s: %d failures, %q", src.Name, src.FailureCount, src.LastError)
			}
		default:
			if src.LastStatus == "failed" {
				failedNames = append(failedNames, src.Name)
			}
		}
	}
	// What was stored is clean.
	rels := in.queryStrings(`SELECT s.name, r.guid, r.title, r.summary, r.body FROM releases r JOIN sources s ON s.id = r.source_id`)
	bestEffortStored := 0
	for _, r := range rels {
		name := r[0]
		if mustFail[name] != nil {
			t.Errorf("source %s stored release %q", name, r[1])
		}
		if bestEffort[name] != nil {
			bestEffortStored++
		}
		for i, field := range r[2:] {
			if !utf8.ValidString(field) {
				t.Errorf("release %s/%s: field %d is not valid UTF-8", name, r[1], i)
			}
			if strings.Contains(field, marker) {
				t.Errorf("release %s/%s holds the content of a local file (XXE)", name, r[1])
			}
			if strings.Contains(field, "lollollollollol") || len(field) > 1<<20 {
				t.Errorf("release %s/%s holds an expanded entity or a %d-byte field", name, r[1], len(field))
			}
			for _, c := range field {
				if c != '\n' && c != '\t' && c != '\r' && (unicode.IsControl(c) || c == 0xFFFE || c == 0xFFFF) {
					t.Errorf("release %s/%s: field %d holds control character %U", name, r[1], i, c)
					break
				}
			}
		}
	}
	dupGUIDs := in.queryInt(`SELECT count(*) FROM (SELECT 1 FROM releases GROUP BY source_id, guid HAVING count(*) > 1)`)
	if dupGUIDs > 0 {
		t.Errorf("%d releases stored twice", dupGUIDs)
	}
	feedDocs := 0
	for _, key := range []string{"all", "department:good-a", "department:good-b", "department:hostile"} {
		_, docs := in.feedTitles(key)
		feedDocs += docs
	}
	rss := s.peakRSS()
	if rss > 300<<20 {
		t.Errorf("peak RSS %d MB while refusing a 50 MB body", rss>>20)
	}
	if problems := in.logProblems(false); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	s.stop(t)
	sort.Strings(failedNames)
	fig.add(t, "publisher faults: %d sources at once, 2 good and %d hostile (%s); %d feed requests meanwhile, %d failed; "+
		"good sources updated %d of %d times, in their feeds within %s; failed with a recorded error: %s (%s); "+
		"%d releases kept from best-effort sources, all clean; %d feed documents valid; peak RSS %d MB",
		len(srcs), len(names), strings.Join(names, ", "), requests.Load(), failures.Load(), rounds, rounds,
		slowest.Round(10*time.Millisecond), strings.Join(failedNames, ", "), strings.Join(examples, "; "),
		bestEffortStored, feedDocs, rss>>20)
}

// ---- load ----

// testLoad has 200 clients poll feeds, with and without validators and
// gzip, while a pull brings new releases, immediate alerts go out and a
// daily digest is composed and sent: no errors, no SQLite lock errors,
// and a request whose ETag is current always gets its 304.
func testLoad(t *testing.T, bin string, fig *figures, rng *rand.Rand) {
	smtp := smtptest.Start(t, smtptest.Options{CountOnly: true})
	pub := newRelPublisher(t)
	pub.etags = true
	in := newInstance(t, bin)
	var w world
	w.configure(in, pub)
	in.cfg["schedule"] = map[string]any{"pull": "0 0 1 1 *", "daily_digest": "@every 5s", "weekly_digest": "0 0 1 1 *"}
	in.smtpMail(smtp, nil)
	in.writeConfig()
	w.wave(pub, 0, 12)
	in.cli("pull")
	in.importSubscribers(w.subscribe(1200))
	s := in.serve()
	s.waitReady(t, time.Minute)

	var urls []string
	for _, k := range w.feedKeys() {
		for _, ext := range []string{".atom", ".rss", ".json"} {
			urls = append(urls, feedPath(k)+ext)
		}
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var ok200, ok304, conditional, stale, errs atomic.Int64
	var errMu sync.Mutex
	var firstErr string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 200
	for c := range clients {
		seed := rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(c)))
			etags := map[string]string{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				u := urls[r.IntN(len(urls))]
				gz := r.IntN(2) == 0
				key := u + strconv.FormatBool(gz)
				req, _ := http.NewRequest("GET", in.base()+u, nil)
				if gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				sentTag := ""
				if e := etags[key]; e != "" && r.IntN(3) > 0 {
					sentTag = e
					req.Header.Set("If-None-Match", e)
				}
				resp, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				fail := func(msg string) {
					errs.Add(1)
					errMu.Lock()
					if firstErr == "" {
						firstErr = u + ": " + msg
					}
					errMu.Unlock()
				}
				switch {
				case err != nil:
					fail(err.Error())
				case resp.StatusCode == http.StatusNotModified:
					ok304.Add(1)
					if sentTag == "" {
						fail("304 to a request without a validator")
					}
				case resp.StatusCode == http.StatusOK:
					ok200.Add(1)
					tag := resp.Header.Get("ETag")
					if sentTag != "" && tag == sentTag {
						stale.Add(1) // the ETag was current: it should have been a 304
					}
					if gz {
						if _, err := gunzipBytes(body); err != nil {
							fail("bad gzip body: " + err.Error())
						}
					}
					etags[key] = tag
				default:
					fail(resp.Status)
				}
				if sentTag != "" {
					conditional.Add(1)
				}
			}
		}()
	}

	start := time.Now()
	time.Sleep(2 * time.Second)
	// A pull with new releases in the middle of it all.
	w.wave(pub, 1, 3)
	newReleases := 3 * len(worldDepts)
	for _, d := range worldDepts {
		if code, body := in.api("POST", "/api/v1/sources/"+d.Slug+"-news/pull", nil); code != http.StatusOK {
			t.Errorf("pull %s during the load: %d %s", d.Slug, code, body)
		}
	}
	// Then the daily digest (a 5-second period here) composes and sends.
	for {
		digests := in.queryInt(`SELECT coalesce(sum(enqueued), 0) FROM digest_runs WHERE status = 'done'`)
		c := in.outboxCounts()
		if digests > 0 && c["pending"] == 0 && c["sending"] == 0 && time.Since(start) > 12*time.Second {
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Errorf("no daily digest sent within a minute of the pull: outbox %v, digests %d", c, digests)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	digests := in.queryInt(`SELECT coalesce(sum(enqueued), 0) FROM digest_runs WHERE status = 'done'`)
	immediate := in.queryInt(`SELECT count(*) FROM outbox WHERE kind = 'immediate'`)
	total := ok200.Load() + ok304.Load() + errs.Load()
	if errs.Load() > 0 {
		t.Errorf("%d of %d requests failed, first: %s", errs.Load(), total, firstErr)
	}
	if stale.Load() > 0 {
		t.Errorf("%d conditional requests with the current ETag got 200 instead of 304", stale.Load())
	}
	if problems := in.logProblems(true); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	rss := s.peakRSS()
	s.stop(t)
	fig.add(t, "load: %d clients for %s while a pull stored %d releases (%d immediate alerts) and a daily digest went to %d subscribers "+
		"(%d emails sent): %d requests (%.0f/s), %d answered 200 and %d 304; %d errors; %d conditional requests, "+
		"%d answered 200 with an unchanged ETag; no \"database is locked\"; peak RSS %d MB",
		clients, elapsed.Round(100*time.Millisecond), newReleases, immediate, digests, smtp.Count(), total,
		float64(total)/elapsed.Seconds(), ok200.Load(), ok304.Load(), errs.Load(), conditional.Load(), stale.Load(), rss>>20)
}

func gunzipBytes(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// ---- fuzzing ----

// fuzzRoute is a route to fuzz: method, path pattern, and where its input
// goes.
type fuzzRoute struct {
	method, pattern string
	api             bool           // bearer token and JSON body
	admin           bool           // console: session cookie and its CSRF token
	schema          map[string]any // JSON body schema (API)
	query           []string       // query parameter names
	fields          []string       // form fields
}

// testFuzz sends random, malformed and hostile requests to every admin API
// route (from the OpenAPI document) and every form: no answer may be a
// server error, Herald must stay up, and everything stored afterwards must
// still be valid.
func testFuzz(t *testing.T, bin string, fig *figures, rng *rand.Rand) {
	pub := newRelPublisher(t)
	pub.etags = true
	in := newInstance(t, bin)
	var w world
	w.configure(in, pub)
	in.cfg["pull"] = map[string]any{"timeout": "2s"}
	in.writeConfig()
	w.wave(pub, 0, 3)
	in.cli("pull")
	in.importSubscribers(w.subscribe(30))
	s := in.serve()
	s.waitReady(t, time.Minute)
	releasesBefore := in.queryInt(`SELECT count(*) FROM releases`)
	rowsNow := func() int {
		return in.queryInt(`SELECT (SELECT count(*) FROM departments) + (SELECT count(*) FROM sources) + (SELECT count(*) FROM topics) +
			(SELECT count(*) FROM subscribers) + (SELECT count(*) FROM subscriptions) + (SELECT count(*) FROM websub_requests)`)
	}
	rowsBefore := rowsNow()

	// Routes: the API from its OpenAPI document, the forms by hand.
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(in.get("/api/v1/openapi.json"), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var routes []fuzzRoute
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				Parameters []struct {
					Name string `json:"name"`
					In   string `json:"in"`
				} `json:"parameters"`
				RequestBody struct {
					Content map[string]struct {
						Schema map[string]any `json:"schema"`
					} `json:"content"`
				} `json:"requestBody"`
			}
			if json.Unmarshal(raw, &op) != nil {
				continue
			}
			r := fuzzRoute{method: strings.ToUpper(method), pattern: path, api: true,
				schema: op.RequestBody.Content["application/json"].Schema}
			for _, p := range op.Parameters {
				if p.In == "query" {
					r.query = append(r.query, p.Name)
				}
			}
			routes = append(routes, r)
		}
	}
	if len(routes) < 10 {
		t.Fatalf("the OpenAPI document lists only %d operations", len(routes))
	}
	apiRoutes := len(routes)
	forms := []fuzzRoute{
		{method: "POST", pattern: "/subscribe", fields: []string{"email", "topic", "department", "frequency"}},
		{method: "GET", pattern: "/subscribe", query: []string{"topic", "department"}},
		{method: "GET", pattern: "/subscribe/confirm", query: []string{"token"}},
		{method: "POST", pattern: "/subscribe/confirm", fields: []string{"token"}},
		{method: "POST", pattern: "/manage", fields: []string{"email"}},
		{method: "GET", pattern: "/manage/{token}"},
		{method: "POST", pattern: "/manage/{token}", fields: []string{"action", "subscription", "frequency", "topic", "department"}},
		{method: "GET", pattern: "/manage/address/{token}"},
		{method: "POST", pattern: "/manage/address/{token}", fields: []string{"email", "address"}},
		{method: "GET", pattern: "/unsubscribe/{token}"},
		{method: "POST", pattern: "/unsubscribe/{token}", fields: []string{"List-Unsubscribe", "confirm"}},
		{method: "POST", pattern: "/websub", fields: []string{"hub.mode", "hub.topic", "hub.callback", "hub.secret", "hub.lease_seconds"}},
		{method: "GET", pattern: "/search", query: []string{"q", "department", "topic", "from", "to", "page"}},
		{method: "GET", pattern: "/feeds/search.atom", query: []string{"q", "department", "topic"}},
		{method: "GET", pattern: "/releases/{id}"},
		{method: "GET", pattern: "/topics/{slug}"},
		{method: "GET", pattern: "/departments/{slug}"},
		{method: "POST", pattern: "/admin/login", fields: []string{"token", "next"}},
		{method: "POST", pattern: "/admin/topics", admin: true, fields: []string{"slug", "title", "description", "keywords", "categories", "exclude", "departments"}},
		{method: "POST", pattern: "/admin/topics/preview", admin: true, fields: []string{"keywords", "categories", "exclude", "departments", "slug"}},
		{method: "POST", pattern: "/admin/topics/{slug}/edit", admin: true, fields: []string{"title", "description", "keywords", "categories", "exclude", "departments"}},
		{method: "POST", pattern: "/admin/topics/{slug}/retire", admin: true, fields: []string{"confirm"}},
		{method: "POST", pattern: "/admin/sources", admin: true, fields: []string{"name", "url", "department", "format", "enabled"}},
		{method: "POST", pattern: "/admin/sources/{name}/edit", admin: true, fields: []string{"url", "department", "format", "enabled"}},
		{method: "POST", pattern: "/admin/sources/{name}/disable", admin: true},
		{method: "POST", pattern: "/admin/sources/{name}/enable", admin: true},
		{method: "POST", pattern: "/admin/sources/{name}/pull", admin: true},
		{method: "POST", pattern: "/admin/departments", admin: true, fields: []string{"slug", "name", "url"}},
		{method: "POST", pattern: "/admin/departments/{slug}/edit", admin: true, fields: []string{"name", "url"}},
		{method: "GET", pattern: "/admin/subscribers", admin: true, query: []string{"address"}},
		{method: "POST", pattern: "/admin/subscribers/erase", admin: true, fields: []string{"address", "confirm"}},
		{method: "POST", pattern: "/admin/subscribers/lift-suppression", admin: true, fields: []string{"address"}},
		{method: "POST", pattern: "/admin/outbox/{id}/retry", admin: true},
	}
	routes = append(routes, forms...)

	// A visitor's CSRF cookie and token, and an admin's session.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	csrfRE := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	page := func(path string) string {
		resp, err := browser.Get(in.base() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := csrfRE.FindSubmatch(b)
		if m == nil {
			t.Fatalf("no CSRF token on %s (%d)", path, resp.StatusCode)
		}
		return string(m[1])
	}
	visitorCSRF := page("/subscribe?topic=harbour")
	flowAddr, flowToken := subscribeFlow(t, in, browser, visitorCSRF, page)
	if leaks := in.infoLeaks(flowAddr, flowToken, relAdminToken, relTokenKey); len(leaks) > 0 {
		t.Errorf("%d info-level log lines of a subscribe, confirm and welcome run hold the address or a secret, first: %s", len(leaks), leaks[0])
	}
	resp, err := browser.PostForm(in.base()+"/admin/login", url.Values{"csrf_token": {visitorCSRF}, "token": {relAdminToken}, "next": {"/admin/"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %v %v", err, resp)
	}
	resp.Body.Close()
	adminCSRF := page("/admin/topics/new")

	known := []string{"harbour", "north", "north-news", "1", "2", "ferry"}
	statuses := map[int]int{}
	var serverErrors []string
	var mu sync.Mutex
	const total = 4000
	var next atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second)
	seeds := make([]uint64, 8)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seeds[g], 9))
			for next.Add(1) <= total && time.Now().Before(deadline) {
				rt := routes[r.IntN(len(routes))]
				req := fuzzRequest(r, in.base(), rt, doc.Components.Schemas, known, visitorCSRF, adminCSRF)
				resp, err := browser.Do(req)
				if err != nil {
					mu.Lock()
					serverErrors = append(serverErrors, fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, err))
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++

				// A pull of a source that cannot be fetched is the
				// publisher's failure, reported as 502 Bad Gateway.
				upstream := resp.StatusCode == http.StatusBadGateway && strings.HasSuffix(req.URL.Path, "/pull")
				if resp.StatusCode >= 500 && !upstream {
					serverErrors = append(serverErrors, fmt.Sprintf("%s %s -> %d: %s", req.Method, req.URL.Path, resp.StatusCode, tailString(string(body), 200)))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sent := int(min(next.Load(), total))
	for i, e := range serverErrors {
		if i < 10 {
			t.Errorf("server error: %s", e)
		}
	}
	if s.exited() {
		t.Fatalf("herald serve died during fuzzing; log:\n%s", tailFile(s.logPath, 3000))
	}
	in.get("/healthz")
	if problems := in.logProblems(false); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	created := rowsNow() - rowsBefore
	s.stop(t)

	// Everything stored is still valid.
	checked := fuzzInvariants(t, in)
	if n := in.queryInt(`SELECT count(*) FROM releases`); n != releasesBefore {
		t.Errorf("fuzzing changed the number of releases from %d to %d", releasesBefore, n)
	}
	var codes []string
	for _, c := range slices.Sorted(maps.Keys(statuses)) {
		codes = append(codes, fmt.Sprintf("%d: %d", c, statuses[c]))
	}
	fig.add(t, "fuzz: a visitor's subscribe, confirm and welcome email logged neither address nor token at info level; then %d requests to %d routes (%d API operations from openapi.json, %d forms and pages), random and hostile "+
		"bodies, fields, path segments and tokens: %d server errors; statuses %s; %d rows written by the requests, "+
		"%d stored rows checked afterwards, all valid",
		sent, len(routes), apiRoutes, len(forms), len(serverErrors), strings.Join(codes, ", "), created, checked)
}

// subscribeFlow subscribes an address through the public form, confirms
// it from the link in the confirmation email (the file transport writes
// it to the outbox directory) and waits for the welcome email. It returns
// the address and the confirmation token.
func subscribeFlow(t *testing.T, in *instance, browser *http.Client, csrf string, page func(string) string) (string, string) {
	t.Helper()
	const addr = "flow.check@example.org"
	resp, err := browser.PostForm(in.base()+"/subscribe", url.Values{"csrf_token": {csrf}, "email": {addr},
		"topic": {"harbour"}, "frequency": {"immediately"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %v %v", err, resp)
	}
	resp.Body.Close()
	outbox := filepath.Join(in.dir, "outbox")
	find := func(subject string) gotMail {
		deadline := time.Now().Add(20 * time.Second)
		for {
			files, _ := filepath.Glob(filepath.Join(outbox, "*.eml"))
			for _, f := range files {
				raw, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				if g, err := decodeMail(raw); err == nil && g.To == addr && strings.Contains(g.Subject, subject) {
					return g
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no email %q to %s in %s after 20s", subject, addr, outbox)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	confirm := find("Confirm your subscription")
	m := regexp.MustCompile(`/subscribe/confirm\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(confirm.Text)
	if m == nil {
		t.Fatalf("no confirmation link in:\n%s", confirm.Text)
	}
	token := m[1]
	formCSRF := page("/subscribe/confirm?token=" + token)
	resp, err = browser.PostForm(in.base()+"/subscribe/confirm", url.Values{"csrf_token": {formCSRF}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "You are subscribed") {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, tailString(string(body), 500))
	}
	find("You are subscribed")
	return addr, token
}

// fuzzValues are hostile and odd inputs, mixed with plausible ones.
var fuzzValues = []string{
	"", " ", "harbour", "north", "north-news", "daily", "weekly", "immediately", "reader0001@example.net",
	"new-topic", "New Topic", "-1", "0", "99999999999999999999", "1e309", "null", "true", "[]", "{}",
	"a\r\nBcc: victim@example.org", "x@example.org\r\nSubject: injected", "line\nbreak", "tab\there", "\x00nul", "\x1b[31mred",
	"<script>alert(1)</script>", "\"quoted\" & 'single'", "]]>", "' OR 1=1 --", "%00", "%0d%0a", "../../etc/passwd",
	"\xff\xfe invalid utf-8", "Ünïcödé ✓ 🚢 עברית", "\u202eevil", "http://127.0.0.1:1/feed.rss", "javascript:alert(1)",
	"ftp://example.org/x", "http://[::1", "https://example.org/" + strings.Repeat("a", 3000), "@", "a@b", "@example.org",
	"UPPER@EXAMPLE.ORG", "unsubscribe", "one-click", "List-Unsubscribe=One-Click", "subscribe", "AQEBAAAAAAAAAAAAAAA",
}

func fuzzString(r *rand.Rand) string {
	word := func() string {
		b := make([]byte, 3+r.IntN(8))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	switch r.IntN(12) {
	case 0:
		return strings.Repeat(string(rune('a'+r.IntN(26))), 1+r.IntN(70000))
	case 1:
		b := make([]byte, r.IntN(64))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	case 2:
		return fuzzValues[r.IntN(len(fuzzValues))] + fuzzValues[r.IntN(len(fuzzValues))]
	case 3, 4:
		// Plausible: a new slug, name or address, to get past validation.
		return []string{"fz-" + word(), "Fuzzed " + word() + " office", word() + "@example.org", "http://127.0.0.1:1/" + word() + ".rss"}[r.IntN(4)]
	case 5:
		return word() + fuzzValues[r.IntN(len(fuzzValues))]
	}
	return fuzzValues[r.IntN(len(fuzzValues))]
}

// fuzzField is a value for a named field: half the time one that fits
// the name, so that requests get past validation and reach the store,
// otherwise anything.
func fuzzField(r *rand.Rand, name string) string {
	if r.IntN(2) == 0 {
		return fuzzString(r)
	}
	w := func() string {
		b := make([]byte, 3+r.IntN(8))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	switch strings.TrimPrefix(name, "hub.") {
	case "slug":
		return "fz-" + w()
	case "name", "title", "description":
		return "Fuzzed " + w() + []string{"", " ✓", " & <b>bold</b>", " \u202e", " \r\nInjected: yes"}[r.IntN(5)]
	case "url", "callback", "topic":
		return []string{"http://127.0.0.1:1/" + w() + ".rss", "https://example.org/" + w(), "harbour"}[r.IntN(3)]
	case "department", "departments":
		return worldDepts[r.IntN(len(worldDepts))].Slug
	case "format":
		return store.Formats[r.IntN(len(store.Formats))]
	case "email", "address":
		return w() + []string{"@example.org", "@EXAMPLE.org", "@example.org\r\nBcc: x@example.org", "@localhost"}[r.IntN(4)]
	case "frequency":
		return []string{"immediately", "daily", "weekly", "hourly"}[r.IntN(4)]
	case "keywords", "categories", "exclude":
		return w() + ", " + w()
	case "mode":
		return []string{"subscribe", "unsubscribe", "publish"}[r.IntN(3)]
	case "lease_seconds", "limit", "page", "subscription":
		return strconv.Itoa(r.IntN(2000) - 10)
	case "enabled", "retired", "confirm":
		return []string{"true", "false", "on", "1"}[r.IntN(4)]
	}
	return fuzzString(r)
}

// fuzzJSON makes a value for a schema, wrong now and then.
func fuzzJSON(r *rand.Rand, name string, schema map[string]any, schemas map[string]map[string]any, depth int) any {
	if ref, ok := schema["$ref"].(string); ok && depth < 4 {
		return fuzzJSON(r, name, schemas[strings.TrimPrefix(ref, "#/components/schemas/")], schemas, depth+1)
	}
	if r.IntN(12) == 0 || depth > 4 {
		// The wrong type.
		return []any{nil, 7, -1.5, true, "text", []any{1, "2"}, map[string]any{"x": 1}}[r.IntN(7)]
	}
	switch schema["type"] {
	case "object":
		out := map[string]any{}
		props, _ := schema["properties"].(map[string]any)
		for name, p := range props {
			if r.IntN(5) > 0 {
				ps, _ := p.(map[string]any)
				out[name] = fuzzJSON(r, name, ps, schemas, depth+1)
			}
		}
		if r.IntN(10) == 0 {
			out[fuzzString(r)] = fuzzString(r)
		}
		return out
	case "array":
		items, _ := schema["items"].(map[string]any)
		var out []any
		for range r.IntN(5) {
			out = append(out, fuzzJSON(r, name, items, schemas, depth+1))
		}
		return out
	case "boolean":
		return r.IntN(2) == 0
	case "integer", "number":
		return []any{0, 1, -1, 1 << 40, 3.5}[r.IntN(5)]
	}
	return fuzzField(r, name)
}

var fuzzWildcard = regexp.MustCompile(`\{[^}]+\}`)

// fuzzRequest builds one request for a route: random path segments,
// query, body and credentials.
func fuzzRequest(r *rand.Rand, base string, rt fuzzRoute, schemas map[string]map[string]any, known []string, visitorCSRF, adminCSRF string) *http.Request {
	segment := func() string {
		if r.IntN(3) == 0 {
			return known[r.IntN(len(known))]
		}
		return url.PathEscape(fuzzString(r))
	}
	path := fuzzWildcard.ReplaceAllStringFunc(rt.pattern, func(string) string { return segment() })
	q := url.Values{}
	for _, name := range rt.query {
		if r.IntN(4) > 0 {
			q.Set(name, fuzzField(r, name))
		}
	}
	var body io.Reader
	ctype := ""
	switch {
	case rt.api && rt.method != "GET":
		var raw []byte
		switch r.IntN(10) {
		case 0:
			raw = []byte(`{"title": "unterminated`)
		case 1:
			raw = bytes.Repeat([]byte(`{"a":`), 2000)
		case 2:
			raw = append([]byte(`{"title":"`), append(bytes.Repeat([]byte("A"), 2<<20), '"', '}')...)
		default:
			if rt.schema != nil {
				raw, _ = json.Marshal(fuzzJSON(r, "", rt.schema, schemas, 0))
			}
		}
		body, ctype = bytes.NewReader(raw), []string{"application/json", "application/json", "application/json", "text/plain", ""}[r.IntN(5)]
	case len(rt.fields) > 0 || rt.method == "POST":
		form := url.Values{}
		for _, f := range rt.fields {
			if r.IntN(5) > 0 {
				form.Set(f, fuzzField(r, f))
			}
		}
		switch {
		case rt.admin && r.IntN(5) > 0:
			form.Set("csrf_token", adminCSRF)
		case !rt.admin && r.IntN(5) > 0:
			form.Set("csrf_token", visitorCSRF)
		case r.IntN(2) == 0:
			form.Set("csrf_token", fuzzString(r))
		}
		enc := form.Encode()
		if r.IntN(20) == 0 {
			enc = strings.Repeat("field=value&", 200000)
		}
		body, ctype = strings.NewReader(enc), "application/x-www-form-urlencoded"
		if r.IntN(10) == 0 {
			ctype = "multipart/form-data; boundary=broken"
		}
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(rt.method, u, body)
	if err != nil {
		req, _ = http.NewRequest(rt.method, base+"/", nil)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if rt.api {
		switch r.IntN(10) {
		case 0:
		case 1:
			req.Header.Set("Authorization", "Bearer "+relAdminToken+"x")
		case 2:
			req.Header.Set("Authorization", "Basic "+relAdminToken)
		default:
			req.Header.Set("Authorization", "Bearer "+relAdminToken)
		}
	}
	return req
}

// fuzzInvariants checks every row a request could have written and
// returns how many it checked.
func fuzzInvariants(t *testing.T, in *instance) int {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, in.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checked := 0
	clean := func(what, s string) {
		if !utf8.ValidString(s) || strings.ContainsFunc(s, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }) {
			t.Errorf("%s %q holds invalid UTF-8 or control characters", what, tailString(s, 80))
		}
	}
	depts, err := db.Departments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range depts {
		checked++
		if p := d.Problems(); len(p) > 0 {
			t.Errorf("department %q stored with problems: %v", d.Slug, p)
		}
		clean("department name", d.Name)
	}
	srcs, err := db.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		checked++
		if p := s.Problems(); len(p) > 0 {
			t.Errorf("source %q stored with problems: %v", s.Name, p)
		}
		clean("source name", s.Name)
	}
	topics, err := db.Topics(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		checked++
		if p := tp.Problems(); len(p) > 0 {
			t.Errorf("topic %q stored with problems: %v", tp.Slug, p)
		}
		clean("topic title", tp.Title)
	}
	// Stored addresses are canonical: the rule gives them back unchanged.
	validAddr := func(a string) bool {
		canonical, err := address.Parse(a)
		return err == nil && canonical == a
	}
	for _, r := range in.queryStrings(`SELECT address, pending_address FROM subscribers`) {
		checked++
		if !validAddr(r[0]) || (r[1] != "" && !validAddr(r[1])) {
			t.Errorf("subscriber address %q (pending %q) is not a valid address", r[0], r[1])
		}
	}
	for _, r := range in.queryStrings(`SELECT s.frequency, s.status, coalesce(t.slug, ''), coalesce(d.slug, '')
		FROM subscriptions s LEFT JOIN topics t ON t.id = s.topic_id LEFT JOIN departments d ON d.id = s.department_id`) {
		checked++
		if !store.ValidFrequency(r[0]) || (r[2] == "") == (r[3] == "") {
			t.Errorf("subscription %v is not valid", r)
		}
	}
	for _, r := range in.queryStrings(`SELECT to_addr, subject FROM outbox`) {
		checked++
		if !validAddr(r[0]) || strings.ContainsAny(r[1], "\r\n") {
			t.Errorf("outbox message to %q, subject %q, is not valid", r[0], r[1])
		}
		clean("subject", r[1])
	}
	for _, r := range in.queryStrings(`SELECT callback FROM websub_subscriptions`) {
		checked++
		if u, err := url.Parse(r[0]); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Errorf("WebSub callback %q is not an http(s) URL", r[0])
		}
	}
	return checked
}
