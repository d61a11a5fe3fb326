package harness

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"herald/alerts/smtptest"
	"herald/store"
	"herald/store/storetest"
)

// Instance is one Herald installation: a directory holding its config
// file, its database and the logs of every `herald serve` run on them,
// and the address it listens on. Its methods fail the test on any error.
type Instance struct {
	// Config is the config file as a tree of maps, written by
	// WriteConfig. NewInstance fills in what every run needs; a test sets
	// departments, sources, topics, schedules and mail.
	Config map[string]any
	// Dir, Addr, ConfigPath and Database are fixed by NewInstance.
	Dir, Addr, ConfigPath, Database string
	// Client talks to Herald, with a timeout long enough for a loaded
	// machine.
	Client *http.Client

	tb  testing.TB
	bin string

	mu   sync.Mutex
	logs []string
	ro   *sql.DB
}

// NewInstance prepares an installation of bin in dir (which must exist):
// a database in dir, JSON logs at level info, the admin token and token
// key of this package, mail written as files to dir/outbox, and no
// scheduled pull or digest (their cron lines name the first of January).
// Nothing is written until WriteConfig.
func NewInstance(tb testing.TB, bin, dir string) *Instance {
	tb.Helper()
	addr := FreeAddr(tb)
	in := &Instance{tb: tb, bin: bin, Dir: dir, Addr: addr, ConfigPath: filepath.Join(dir, "herald.yaml"),
		Database: storetest.Database(tb), Client: &http.Client{Timeout: 60 * time.Second}}
	in.Config = map[string]any{
		"database": in.Database,
		"base_url": "http://" + addr,
		"listen":   addr,
		"timezone": "UTC",
		"log":      map[string]any{"format": "json", "level": "info"},
		"schedule": map[string]any{"pull": "0 0 1 1 *", "daily_digest": "0 0 1 1 *", "weekly_digest": "0 0 1 1 *"},
		// The sample publishers run on loopback.
		"pull":    map[string]any{"allow_private": true},
		"secrets": map[string]any{"token_keys": []string{TokenKey}},
		"admin":   map[string]any{"tokens": []string{AdminToken}},
		"mail":    map[string]any{"from": From, "transport": "file", "dir": filepath.Join(dir, "outbox")},
	}
	tb.Cleanup(func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.ro != nil {
			in.ro.Close()
		}
	})
	return in
}

// Twin prepares a second instance of the same installation in dir (which
// must exist), as a load balancer would have beside in: the same database
// and configuration (Config is copied as it is now), its own address,
// config file and logs. base_url stays in's.
func (in *Instance) Twin(dir string) *Instance {
	in.tb.Helper()
	addr := FreeAddr(in.tb)
	tw := &Instance{tb: in.tb, bin: in.bin, Dir: dir, Addr: addr, ConfigPath: filepath.Join(dir, "herald.yaml"),
		Database: in.Database, Client: in.Client, Config: maps.Clone(in.Config)}
	tw.Config["listen"] = addr
	in.tb.Cleanup(func() {
		tw.mu.Lock()
		defer tw.mu.Unlock()
		if tw.ro != nil {
			tw.ro.Close()
		}
	})
	return tw
}

// Base is Herald's base URL.
func (in *Instance) Base() string { return "http://" + in.Addr }

// UseSMTP points the mail section at srv, with four connections, timeout
// for each SMTP command and a cap of rate messages a second. It returns
// the section, for a test to add to.
func (in *Instance) UseSMTP(srv *smtptest.Server, timeout time.Duration, rate int) map[string]any {
	m := map[string]any{
		"from": From, "transport": "smtp",
		"smtp":        map[string]any{"host": srv.Host(), "port": srv.Port(), "tls": "none", "timeout": timeout.String()},
		"concurrency": 4, "rate": rate,
	}
	in.Config["mail"] = m
	return m
}

// WriteConfig writes Config to ConfigPath.
func (in *Instance) WriteConfig() {
	in.tb.Helper()
	raw, err := yaml.Marshal(in.Config)
	if err != nil {
		in.tb.Fatal(err)
	}
	if err := os.WriteFile(in.ConfigPath, raw, 0o600); err != nil {
		in.tb.Fatal(err)
	}
}

// Result is what a Herald command printed and what it cost.
type Result struct {
	Stdout  string
	Elapsed time.Duration
	// MaxRSS is the peak resident memory in bytes: VmHWM, read when the
	// command starts and every rssEvery while it runs (so growth in its
	// last moments can be missed).
	MaxRSS int64
}

// rssEvery is how often a running command's peak memory is read.
const rssEvery = 10 * time.Millisecond

// Run runs a Herald command on this installation to its end, within
// timeout, and fails the test unless it succeeds. The --config flag goes
// after the command's words ("subscribers import --config FILE rows.csv").
func (in *Instance) Run(timeout time.Duration, args ...string) Result {
	in.tb.Helper()
	return in.Start(timeout, args...).Wait()
}

// Command is a Herald command started by Start.
type Command struct {
	in     *Instance
	full   []string
	cancel context.CancelFunc
	out    bytes.Buffer
	errb   bytes.Buffer
	done   chan struct{}
	err    error  // from the process, once done is closed
	result Result // once done is closed, but for Stdout
}

// Start starts a Herald command as Run does, without waiting for it:
// several commands can run side by side, each timed from its start to its
// own end. Wait for each from the test's goroutine.
func (in *Instance) Start(timeout time.Duration, args ...string) *Command {
	in.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	words := 1
	if slices.Contains([]string{"subscribers", "topics", "sources", "departments"}, args[0]) {
		words = 2
	}
	c := &Command{in: in, full: append(append(slices.Clone(args[:words]), "--config", in.ConfigPath), args[words:]...),
		cancel: cancel, done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, in.bin, c.full...)
	cmd.Dir = in.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = &c.out, &c.errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		in.tb.Fatalf("herald %s: %v", strings.Join(c.full, " "), err)
	}
	exited := make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			if rss := peakRSS(cmd.Process.Pid); rss > 0 {
				c.result.MaxRSS = rss
			}
			select {
			case <-exited:
				return
			case <-t.C:
			}
		}
	}()
	go func() {
		c.err = cmd.Wait()
		c.result.Elapsed = time.Since(start)
		close(exited)
	}()
	return c
}

// Wait waits for the command to end and fails the test unless it
// succeeded.
func (c *Command) Wait() Result {
	c.in.tb.Helper()
	<-c.done
	c.cancel()
	if c.err != nil {
		c.in.tb.Fatalf("herald %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(c.full, " "), c.err, c.out.String(), Tail(c.errb.String(), 4000))
	}
	r := c.result
	r.Stdout = c.out.String()
	return r
}

// ImportSubscribers imports CSV rows (email,topic,department,frequency)
// with `herald subscribers import` and checks that all were imported.
func (in *Instance) ImportSubscribers(rows []string) {
	in.tb.Helper()
	path := filepath.Join(in.Dir, "subscribers.csv")
	body := "email,topic,department,frequency\n" + strings.Join(rows, "\n") + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		in.tb.Fatal(err)
	}
	out := in.Run(5*time.Minute, "subscribers", "import", path).Stdout
	if !strings.Contains(out, fmt.Sprintf("imported %d subscriptions", len(rows))) {
		in.tb.Fatalf("import: %s", out)
	}
}

// Server is one run of `herald serve`.
type Server struct {
	*Process
	base string
}

// Serve starts `herald serve` on this installation, its log in a new
// file in Dir. It does not wait for Herald to be ready: see WaitReady.
func (in *Instance) Serve() *Server {
	in.tb.Helper()
	in.mu.Lock()
	logPath := filepath.Join(in.Dir, fmt.Sprintf("serve-%02d.log", len(in.logs)))
	in.logs = append(in.logs, logPath)
	in.mu.Unlock()
	cmd := exec.Command(in.bin, "serve", "--config", in.ConfigPath)
	cmd.Dir = in.Dir
	return &Server{Process: start(in.tb, cmd, logPath, "herald stopped"), base: in.Base()}
}

// WaitReady waits until /readyz answers 200: the database answers and the
// scheduler runs, so the start-up catch-up and first pull are done.
func (s *Server) WaitReady(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	s.WaitHTTP(tb, s.base+"/readyz", timeout)
}

// Logs lists the log files of every `herald serve` run so far, oldest
// first.
func (in *Instance) Logs() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.logs)
}

// Get fetches a path from Herald and fails the test unless it answers 200.
func (in *Instance) Get(path string) []byte {
	in.tb.Helper()
	resp, err := in.Client.Get(in.Base() + path)
	if err != nil {
		in.tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		in.tb.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return body
}

// API calls the admin API with the admin token and returns the status and
// body of the answer; a JSON body may be nil.
func (in *Instance) API(method, path string, body []byte) (int, []byte) {
	in.tb.Helper()
	req, err := http.NewRequest(method, in.Base()+path, bytes.NewReader(body))
	if err != nil {
		in.tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.Client.Do(req)
	if err != nil {
		in.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// DB is a connection to the database for reading, opened once; it reads
// beside a running Herald (SQLite's WAL, or PostgreSQL), so that a test
// can check what Herald stored. Statements use ? placeholders.
func (in *Instance) DB() *sql.DB {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ro == nil {
		db, err := store.OpenReader(context.Background(), in.Database)
		if err != nil {
			in.tb.Fatal(err)
		}
		in.ro = db
	}
	return in.ro
}

// QueryStrings runs a query on DB and returns its rows with every column
// as text (NULL as "").
func (in *Instance) QueryStrings(q string, args ...any) [][]string {
	in.tb.Helper()
	rows, err := in.DB().Query(q, args...)
	if err != nil {
		in.tb.Fatalf("%s: %v", q, err)
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
			in.tb.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		in.tb.Fatal(err)
	}
	return out
}

// QueryInt runs a query on DB that returns one number.
func (in *Instance) QueryInt(q string, args ...any) int {
	in.tb.Helper()
	var n int
	if err := in.DB().QueryRow(q, args...).Scan(&n); err != nil {
		in.tb.Fatalf("%s: %v", q, err)
	}
	return n
}
