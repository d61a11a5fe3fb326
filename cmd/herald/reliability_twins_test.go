package main_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/alerts/smtptest"
	"herald/cmd/herald/harness"
	"herald/store"
	"herald/store/storetest"
)

// testTwins runs two `herald serve` processes on one PostgreSQL database,
// as two instances behind a load balancer, with 10,000 subscribers. While
// digest periods end, it kills the leader in the middle of the digest
// fan-out and then one instance in the middle of sending, several times,
// restarting each. Every subscriber must get each matching release
// exactly once (a message in flight at a kill may arrive twice, with its
// Message-ID), the survivor must take the scheduled work over within 30
// seconds, and a client polling both instances' feeds must never get a
// server error.
func testTwins(t *testing.T, bin string, fig *figures, rng *rand.Rand) {
	if storetest.Engine() != store.Postgres {
		t.Skip("two instances share a PostgreSQL database: this case runs in the PostgreSQL pass (TestOnPostgres)")
	}
	smtp := smtptest.Start(t, smtptest.Options{})
	pub := harness.NewPublisher(t, harness.PublisherOptions{})
	a := harness.NewInstance(t, bin, t.TempDir())
	var w world
	w.configure(a, pub)
	// Digest periods of 20 seconds, pulls every 2 seconds, a fast leader
	// check so that a takeover is prompt.
	a.Config["schedule"] = map[string]any{"pull": "@every 2s", "daily_digest": "@every 20s", "weekly_digest": "0 0 1 1 *"}
	a.Config["pull"] = map[string]any{"allow_private": true, "timeout": "10s"}
	a.UseSMTP(smtp, 5*time.Second, 100000)
	a.WriteConfig()
	b := a.Twin(t.TempDir())
	b.WriteConfig()
	w.wave(pub, 0, 3)
	a.Run(2*time.Minute, "pull") // the back catalogue: stored, never alerted
	const subscribers = 10000
	a.ImportSubscribers(w.subscribe(subscribers))

	servers := [2]*harness.Server{a.Serve(), b.Serve()}
	installs := [2]*harness.Instance{a, b}
	for _, s := range servers {
		s.WaitReady(t, 2*time.Minute)
	}
	var mu sync.Mutex // guards servers while the poller reads them
	server := func(i int) *harness.Server { mu.Lock(); defer mu.Unlock(); return servers[i] }

	// A feed reader polls both instances all the time.
	var polls, ok, serverErrors, refused atomic.Int64
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		client := &http.Client{Timeout: 10 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get(installs[i%2].Base() + "/feeds/all.atom")
			polls.Add(1)
			switch {
			case err != nil:
				refused.Add(1) // a killed instance, until it is back
			case resp.StatusCode >= 500:
				serverErrors.Add(1)
			default:
				ok.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// leader returns the index of the instance leading now: the one whose
	// latest leadership line says it took the work over.
	leader := func() int {
		deadline := time.Now().Add(40 * time.Second)
		for time.Now().Before(deadline) {
			for i := range servers {
				if s := server(i); !s.Exited() && s.WaitLog("leadership taken", 0) {
					return i
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no instance took the scheduled work within 40 seconds")
		return -1
	}
	restart := func(i int) {
		s := installs[i].Serve()
		mu.Lock()
		servers[i] = s
		mu.Unlock()
		s.WaitReady(t, 2*time.Minute)
	}
	running := func() int { return a.QueryInt(`SELECT count(*) FROM digest_runs WHERE status = 'running'`) }

	var takeovers []time.Duration
	leaderKills, senderKills, missed := 0, 0, 0
	for round := 1; round <= 3; round++ {
		w.wave(pub, round, 2)
		// Kill the leader as it composes a period's digests.
		deadline := time.Now().Add(45 * time.Second)
		for running() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if running() == 0 {
			missed++
		}
		time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		l := leader()
		killed := time.Now()
		server(l).Kill()
		leaderKills++
		other := 1 - l
		if !server(other).WaitLog("leadership taken", 40*time.Second) {
			t.Fatalf("round %d: instance %d did not take the scheduled work over within 40 seconds", round, other)
		}
		takeovers = append(takeovers, time.Since(killed))
		restart(l)
		// Kill an instance as it sends: once the relay has taken a
		// message more.
		sent := smtp.Count()
		deadline = time.Now().Add(30 * time.Second)
		for smtp.Count() == sent && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if smtp.Count() == sent {
			missed++
		}
		time.Sleep(time.Duration(rng.Int64N(int64(200 * time.Millisecond))))
		victim := rng.IntN(2)
		server(victim).Kill()
		senderKills++
		restart(victim)
	}

	// Settle: every release stored, a digest period done after the last
	// release, the outbox empty. Messages claimed by a killed instance are
	// sent again when their claim expires (two minutes).
	start := time.Now()
	for {
		counts := map[string]int{}
		for _, r := range a.QueryStrings(`SELECT status, count(*) FROM outbox GROUP BY status`) {
			var n int
			fmt.Sscan(r[1], &n)
			counts[r[0]] = n
		}
		lastSeen := a.QueryStrings(`SELECT coalesce(max(first_seen_at), '') FROM releases WHERE alertable = 1`)[0][0]
		covered := a.QueryInt(`SELECT count(*) FROM digest_runs WHERE frequency = 'daily' AND status = 'done' AND period_end > ?`, lastSeen)
		stored := a.QueryInt(`SELECT count(*) FROM releases`)
		if counts["pending"] == 0 && counts["sending"] == 0 && stored == len(w.items) && covered > 0 && running() == 0 {
			break
		}
		if time.Since(start) > 4*time.Minute {
			t.Fatalf("not settled after 4 minutes: outbox %v, %d of %d releases stored, digest covered %d, running %d",
				counts, stored, len(w.items), covered, running())
		}
		time.Sleep(time.Second)
	}
	settle := time.Since(start)
	close(stop)
	<-polled

	mc := w.checkMail(t, a, smtp)
	if n := serverErrors.Load(); n > 0 {
		t.Errorf("the feed reader polling both instances got %d server errors", n)
	}
	for i, d := range takeovers {
		if d > 30*time.Second {
			t.Errorf("takeover %d took %s, more than 30 seconds", i+1, d.Round(time.Millisecond))
		}
	}
	for _, in := range installs {
		if problems := logProblems(in, false); len(problems) > 0 {
			t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
		}
	}
	for i := range servers {
		server(i).Stop(t)
	}
	if missed > 0 {
		t.Logf("%d of %d kills did not find the moment aimed for within the wait", missed, leaderKills+senderKills)
	}
	var spans []string
	for _, d := range takeovers {
		spans = append(spans, d.Round(10*time.Millisecond).String())
	}
	slices.Sort(spans)
	fig.add(t, "two instances on one PostgreSQL: %d subscribers, %d SIGKILLs of the leader during digest fan-out (takeovers in %s) "+
		"and %d of a sender during delivery; %d immediate alerts and %d digests: %d lost, %d wrong, %d in-flight duplicates (same Message-ID); "+
		"feed polls of both instances: %d answered, %d refused while an instance was down, %d server errors; settled %s after the last start",
		subscribers, leaderKills, strings.Join(spans, ", "), senderKills, mc.immediates, mc.digests, mc.lost, mc.wrong, mc.dups,
		ok.Load(), refused.Load(), serverErrors.Load(), settle.Round(time.Second))
}
