package main_test

// The reliability suite runs the herald binary as an operator would, with a
// generated config, a publisher and an SMTP server on loopback in this
// process, and then breaks things: it kills Herald at random moments, makes
// the mail relay and the publishers misbehave, loads the feeds and fuzzes
// every form and API route. Each case checks that nothing was lost and
// prints its figures. The cases live one to a file (reliability_*_test.go);
// what runs Herald is the harness package, shared with bench/.
//
//	HERALD_RELIABILITY=1 go test -run TestReliability -v ./cmd/herald/
//
// HERALD_RELIABILITY_SEED fixes the random choices of a run (the seed in
// use is logged). With HERALD_ARTIFACTS set, the figures are also written
// to $HERALD_ARTIFACTS/reliability.txt.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/cmd/herald/harness"
	"herald/store"
	"herald/store/storetest"
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
	bin := harness.Build(t)
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
		t.Run("two_instances", func(t *testing.T) {
			t.Parallel()
			testTwins(t, bin, fig, rand.New(rand.NewPCG(seed, 4)))
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
	name := "reliability.txt"
	if storetest.Engine() == store.Postgres {
		name = "reliability-postgres.txt"
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Errorf("artifacts: %v", err)
	}
}

// logProblems scans every log of the installation's `herald serve` runs
// for SQLite lock errors, panics and (when errorsToo) error-level lines.
func logProblems(in *harness.Instance, errorsToo bool) []string {
	var out []string
	for _, p := range in.Logs() {
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
				out = append(out, filepath.Base(p)+": "+harness.Tail(line, 400))
			}
		}
		f.Close()
	}
	return out
}

// infoLeaks returns info-level log lines that hold a secret or a
// subscriber's address.
func infoLeaks(in *harness.Instance, secrets ...string) []string {
	var out []string
	for _, p := range in.Logs() {
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
					out = append(out, harness.Tail(line, 300))
				}
			}
		}
	}
	return out
}

// outboxCounts reads the number of messages per status from the admin API.
func outboxCounts(t *testing.T, in *harness.Instance) map[string]int {
	t.Helper()
	code, raw := in.API("GET", "/api/v1/outbox", nil)
	var out struct {
		Counts map[string]int `json:"counts"`
	}
	if code != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("GET /api/v1/outbox: %d %s", code, raw)
	}
	return out.Counts
}
