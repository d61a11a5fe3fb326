package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"herald/cmd/herald/harness"
)

// BenchmarkFeedServing serves one pre-rendered 50-entry Atom feed from
// `herald serve` and, from the files `herald render --out` wrote for the
// same database, from nginx with gzip_static, and loads each with wrk on
// loopback: plain 200s, gzip 200s and 304s (If-None-Match with the ETag
// each server gives). It reports requests per second of each server,
// Herald's share of nginx's and Herald's share of the floor's (below).
// Herald runs as configured by default (log
// level info, which leaves served feeds out of the log); nginx keeps a
// buffered log of statuses only. The status of every request is checked,
// from that log and from Herald's metrics.
//
// A third server shows what Go's net/http can do on the machine at all: a
// handler in this process that serves the same bytes with the same
// validators from memory and does nothing else (no logging, metrics or
// security headers). Herald is built on net/http, so its share of nginx
// cannot exceed the floor's. Beside the requests per second, the CPU time
// each server spent per request (Herald's process, and this one for the
// floor) gives the share Herald would reach where the CPU is the limit,
// which a busy machine blurs less than throughput.
//
// wrk runs 2 threads with 64 connections for BENCH_WRK_DURATION (default
// 5s) per measurement, in BENCH_ROUNDS (default 3) rounds that alternate
// the servers; each figure is the median of its rounds, and Herald's share
// of the floor the median of the rounds' shares.
//
//	go test -run '^$' -bench FeedServing -benchtime 1x ./bench/
func BenchmarkFeedServing(b *testing.B) {
	wrk, err := lookPath("wrk")
	if err != nil {
		b.Skip("wrk not found: apt-get install wrk (bench/run does)")
	}
	nginx, err := lookPath("nginx")
	if err != nil {
		b.Skip("nginx not found: apt-get install nginx-light (bench/run does)")
	}
	duration := 5 * time.Second
	if v := os.Getenv("BENCH_WRK_DURATION"); v != "" {
		if duration, err = time.ParseDuration(v); err != nil {
			b.Fatalf("BENCH_WRK_DURATION: %v", err)
		}
	}
	rounds := 3
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			b.Fatalf("BENCH_ROUNDS: %q is not a positive number", v)
		}
	}
	bin := heraldBinary(b)
	for i := 0; i < b.N; i++ {
		benchFeedServing(b, bin, wrk, nginx, duration, rounds)
	}
}

func benchFeedServing(b *testing.B, bin, wrk, nginx string, duration time.Duration, rounds int) {
	b.StopTimer()
	pub := harness.NewPublisher(b, harness.PublisherOptions{ETags: true})
	now := time.Now().UTC().Truncate(time.Second)
	// Fifty releases: the current feed then holds exactly the newest 50
	// (with more, it also holds those not yet on a full archive page).
	for n := 1; n <= 50; n++ {
		pub.Add("coastal", sampleItem(n, now.Add(-time.Duration(51-n)*time.Hour)))
	}
	in := newInstance(b, bin, pub)
	in.WriteConfig()
	in.Run(time.Minute, "pull")
	static := filepath.Join(in.Dir, "static")
	in.Run(time.Minute, "render", "--out", static)

	herald := in.Serve()
	heraldURL := in.Base() + "/feeds/all.atom"
	herald.WaitReady(b, time.Minute)

	nginxAddr := harness.FreeAddr(b)
	ngx := startNginx(b, nginx, in.Dir, nginxAddr, static)
	nginxURL := "http://" + nginxAddr + "/feeds/all.atom"
	ngx.WaitHTTP(b, nginxURL, 30*time.Second)

	// Both must serve the same bytes, or the comparison means nothing.
	hPlain, hHdr := fetch(b, heraldURL, nil)
	nPlain, nHdr := fetch(b, nginxURL, nil)
	if !bytes.Equal(hPlain, nPlain) {
		b.Fatalf("Herald and nginx serve different bytes for all.atom (%d and %d bytes)", len(hPlain), len(nPlain))
	}
	if n := bytes.Count(hPlain, []byte("<entry>")); n != 50 {
		b.Fatalf("all.atom has %d entries, want 50", n)
	}
	gzHdr := http.Header{"Accept-Encoding": {"gzip"}}
	hGz, hGzHdr := fetch(b, heraldURL, gzHdr)
	nGz, nGzHdr := fetch(b, nginxURL, gzHdr)
	for name, gz := range map[string][]byte{"Herald": hGz, "nginx": nGz} {
		plain, err := harness.Gunzip(gz)
		if err != nil || !bytes.Equal(plain, hPlain) {
			b.Fatalf("%s's gzip response does not decode to the feed (%v)", name, err)
		}
	}
	if hGzHdr.Get("Content-Encoding") != "gzip" || nGzHdr.Get("Content-Encoding") != "gzip" {
		b.Fatalf("Content-Encoding: Herald %q, nginx %q; want gzip from both", hGzHdr.Get("Content-Encoding"), nGzHdr.Get("Content-Encoding"))
	}
	for _, h := range []string{"ETag", "Last-Modified", "Cache-Control", "Vary", "Content-Type"} {
		b.Logf("%-14s Herald %-46q nginx %q", h, hHdr.Get(h), nHdr.Get(h))
	}

	floor := startFloor(b, hPlain, hGz, hHdr, hGzHdr.Get("ETag"))
	type mode struct {
		name    string
		headers func(etag string) []string
		status  int
	}
	modes := []mode{
		{"200", func(string) []string { return nil }, 200},
		{"200gz", func(string) []string { return []string{"Accept-Encoding: gzip"} }, 200},
		{"304", func(etag string) []string { return []string{"If-None-Match: " + etag} }, 304},
	}
	// cpu, where set, is the CPU time the server has used so far: Herald's
	// process, and this process for the floor (nothing else runs in it
	// while wrk loads the floor). nginx runs several processes: not kept.
	servers := []struct {
		name, url string
		etag      string
		statuses  func() map[int]int64
		cpu       func() time.Duration
	}{
		{"herald", heraldURL, hHdr.Get("ETag"), func() map[int]int64 { return heraldFeedStatuses(b, in.Base()+"/metrics") }, herald.CPUTime},
		{"nginx", nginxURL, nHdr.Get("ETag"), nginxStatuses(b, filepath.Join(in.Dir, "nginx", "access.log")), nil},
		{"floor", floor.url, hHdr.Get("ETag"), floor.statuses, selfCPUTime},
	}
	for _, m := range modes {
		rps := map[string][]float64{}
		cpu := map[string][]float64{} // µs of CPU per request, by round
		// Rounds alternate the servers, so that a change in what else the
		// machine runs weighs on each about equally; the median is kept.
		for round := 0; round < rounds; round++ {
			for _, s := range servers {
				if err := herald.Check(); err != nil {
					b.Fatal(err)
				}
				hdrs := m.headers(s.etag)
				runWrk(b, wrk, s.url, time.Second, hdrs) // warm-up
				before := s.statuses()
				var cpu0 time.Duration
				if s.cpu != nil {
					cpu0 = s.cpu()
				}
				res := runWrk(b, wrk, s.url, duration, hdrs)
				if s.cpu != nil {
					cpu[s.name] = append(cpu[s.name], float64((s.cpu()-cpu0).Microseconds())/float64(res.requests))
				}
				after := s.statuses()
				// Every request wrk completed was answered with the expected
				// status; a few more may have been answered as wrk stopped.
				got := after[m.status] - before[m.status]
				other := int64(0)
				for code, n := range after {
					if code != m.status {
						other += n - before[code]
					}
				}
				if got < res.requests || other != 0 {
					b.Fatalf("%s %s: wrk completed %d requests, the server answered %d with %d and %d otherwise",
						s.name, m.name, res.requests, got, m.status, other)
				}
				rps[s.name] = append(rps[s.name], res.rps)
				b.Logf("%s %s round %d: %.0f req/s, latency avg %s, %d requests", s.name, m.name, round+1, res.rps, res.latency, res.requests)
			}
		}
		h, n, f := median(rps["herald"]), median(rps["nginx"]), median(rps["floor"])
		b.ReportMetric(h, "herald-"+m.name+"-req/s")
		b.ReportMetric(n, "nginx-"+m.name+"-req/s")
		b.ReportMetric(f, "floor-"+m.name+"-req/s")
		b.ReportMetric(h/n, "ratio-"+m.name)
		// Herald and the floor run one after the other in each round: the
		// median of the rounds' ratios is steadier, on a busy machine,
		// than the ratio of the medians.
		var fr []float64
		for i := range rps["herald"] {
			fr = append(fr, rps["herald"][i]/rps["floor"][i])
		}
		b.ReportMetric(median(fr), "floor-ratio-"+m.name)
		// What a request costs each in CPU, whatever else the machine
		// does: the share Herald would reach where the CPU is the limit.
		var cr []float64
		for i := range cpu["herald"] {
			cr = append(cr, cpu["floor"][i]/cpu["herald"][i])
		}
		b.ReportMetric(median(cpu["herald"]), "herald-"+m.name+"-cpu-us/req")
		b.ReportMetric(median(cpu["floor"]), "floor-"+m.name+"-cpu-us/req")
		b.ReportMetric(median(cr), "floor-cpu-ratio-"+m.name)
	}
	b.ReportMetric(float64(len(hPlain)), "feed-bytes")
	b.ReportMetric(float64(len(hGz)), "feed-gz-bytes")
	b.ReportMetric(float64(herald.PeakRSS())/(1<<20), "herald-peak-RSS-MB")
	ngx.Stop(b)
	herald.Stop(b)
}

// floorServer is a bare net/http server of one feed.
type floorServer struct {
	url    string
	mu     sync.Mutex
	counts map[int]int64
}

func startFloor(b *testing.B, plain, gz []byte, h http.Header, gzETag string) *floorServer {
	f := &floorServer{counts: map[int]int64{}}
	etag, lastMod := h.Get("ETag"), h.Get("Last-Modified")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr["Content-Type"] = []string{"application/atom+xml; charset=utf-8"}
		hdr["Cache-Control"] = []string{"public, max-age=300"}
		hdr["Vary"] = []string{"Accept-Encoding"}
		hdr["Last-Modified"] = []string{lastMod}
		body, tag := plain, etag
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			body, tag = gz, gzETag
			hdr["Content-Encoding"] = []string{"gzip"}
		}
		hdr["Etag"] = []string{tag}
		code := http.StatusOK
		if r.Header.Get("If-None-Match") == tag {
			code = http.StatusNotModified
			w.WriteHeader(code)
		} else {
			hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
			w.Write(body)
		}
		f.mu.Lock()
		f.counts[code]++
		f.mu.Unlock()
	}))
	b.Cleanup(srv.Close)
	f.url = srv.URL + "/feeds/all.atom"
	return f
}

// selfCPUTime is the CPU time this process has used so far.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (f *floorServer) statuses() map[int]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// startNginx runs nginx in the foreground on addr with everything it
// writes (pid, logs, temp files) under dir/nginx, serving static at
// /feeds/ the way Herald serves feeds: ETag and Last-Modified from the
// file, the .gz beside each file for clients that accept gzip, and
// Herald's caching and CORS headers.
func startNginx(b *testing.B, nginx, dir, addr, static string) *harness.Process {
	b.Helper()
	root := filepath.Join(dir, "nginx")
	for _, d := range []string{root, filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    log_format status '$status';
    access_log %[1]s/access.log status buffer=256k flush=1s;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    types {
        application/atom+xml atom;
        application/rss+xml rss;
        application/feed+json json;
        text/x-opml opml;
    }
    charset utf-8;
    charset_types application/atom+xml application/rss+xml application/feed+json text/x-opml;
    server {
        listen %[2]s;
        location /feeds/ {
            alias %[3]s/;
            gzip_static on;
            gzip_vary on;
            etag on;
            add_header Cache-Control "public, max-age=300" always;
            add_header Access-Control-Allow-Origin "*" always;
            add_header Link "<http://%[2]s$uri>; rel=\"self\", <http://%[2]s/websub>; rel=\"hub\"" always;
        }
    }
}
`, root, addr, static)
	confPath := filepath.Join(root, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-q", "-p", root, "-e", filepath.Join(root, "error.log"), "-c", confPath).CombinedOutput(); err != nil {
		b.Fatalf("nginx -t: %v\n%s", err, out)
	}
	return harness.Start(b, filepath.Join(root, "stderr.log"), nginx, "-p", root, "-e", filepath.Join(root, "error.log"),
		"-c", confPath, "-g", "daemon off;")
}

// fetch GETs url and returns the body, failing unless the answer is 200.
func fetch(b *testing.B, url string, h http.Header) ([]byte, http.Header) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	// A Transport of its own, so Go does not add or undo gzip itself.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return body, resp.Header
}

type wrkResult struct {
	requests int64
	rps      float64
	latency  string
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkLatency  = regexp.MustCompile(`Latency\s+(\S+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: .*`)
)

// runWrk loads url for d with 2 threads and 64 connections.
func runWrk(b *testing.B, wrk, url string, d time.Duration, headers []string) wrkResult {
	b.Helper()
	args := []string{"-t2", "-c64", "-d" + strconv.Itoa(int(d.Seconds())) + "s"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, append(args, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	s := string(out)
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		b.Fatalf("wrk %s: %s non-2xx/3xx responses\n%s", url, m[1], s)
	}
	if m := wrkSocket.FindString(s); m != "" {
		b.Fatalf("wrk %s: %s\n%s", url, m, s)
	}
	var r wrkResult
	m1, m2 := wrkRequests.FindStringSubmatch(s), wrkRPS.FindStringSubmatch(s)
	if m1 == nil || m2 == nil {
		b.Fatalf("cannot read wrk's output:\n%s", s)
	}
	r.requests, _ = strconv.ParseInt(m1[1], 10, 64)
	r.rps, _ = strconv.ParseFloat(m2[1], 64)
	if m := wrkLatency.FindStringSubmatch(s); m != nil {
		r.latency = m[1]
	}
	return r
}

var feedRequestsRE = regexp.MustCompile(`(?m)^herald_feed_requests_total\{status="(\d+)"\} (\S+)$`)

// heraldFeedStatuses reads herald_feed_requests_total by status.
func heraldFeedStatuses(b *testing.B, metricsURL string) map[int]int64 {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, metricsURL, nil)
	req.Header.Set("Authorization", "Bearer "+harness.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[int]int64{}
	for _, m := range feedRequestsRE.FindAllStringSubmatch(string(raw), -1) {
		code, _ := strconv.Atoi(m[1])
		v, _ := strconv.ParseFloat(m[2], 64)
		out[code] = int64(v)
	}
	if len(out) == 0 {
		b.Fatal("no herald_feed_requests_total in /metrics")
	}
	return out
}

// nginxStatuses counts the statuses in nginx's access log, one status a
// line, once nginx has flushed its buffer (every second).
func nginxStatuses(b *testing.B, path string) func() map[int]int64 {
	return func() map[int]int64 {
		b.Helper()
		time.Sleep(1200 * time.Millisecond)
		out := map[int]int64{}
		err := scanLines(path, func(line string) {
			if code, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
				out[code]++
			}
		})
		if err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		return out
	}
}
