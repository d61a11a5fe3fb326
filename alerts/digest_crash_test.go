package alerts_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
	"herald/templates"
)

// digestCrashEnv names the database a child process runs the digest on.
const digestCrashEnv = "HERALD_TEST_DIGEST_CRASH_DB"

var digestCrashNow = time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)

// TestDigestCrashChild is the child of TestDigestSurvivesKill: it runs the
// due daily digests on the database it is given, as `herald digest` would.
func TestDigestCrashChild(t *testing.T) {
	path := os.Getenv(digestCrashEnv)
	if path == "" {
		return // only meaningful as TestDigestSurvivesKill's child
	}
	ctx := context.Background()
	db := storetest.OpenFile(t, path, storetest.NewClock(digestCrashNow))
	keys, _ := alerts.NewKeys("crash test key of enough length")
	svc, err := alerts.NewService(db, alerts.Config{BaseURL: subBase, TemplatesFS: templates.Embedded(), BatchSize: 25}, keys, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Tell the parent the digest starts now, so its kill lands in it.
	fmt.Println(digestCrashStarted)
	if _, err := svc.RunDue(ctx, "daily", digestCrashNow); err != nil {
		t.Fatal(err)
	}
}

const digestCrashStarted = "digest run starting"

// TestDigestSurvivesKill kills processes running a digest for 5,000
// subscribers with SIGKILL at random moments (at least ten times),
// restarting each time, and checks that once a run finishes every
// subscriber has exactly one digest in the outbox.
func TestDigestSurvivesKill(t *testing.T) {
	subscribers := 5000
	if subRaceBuild {
		subscribers = 500 // the race detector makes each run ten times slower
	}
	ctx := context.Background()
	seed := storetest.Database(t)
	clock := storetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	db := storetest.OpenFile(t, seed, clock)
	if _, err := db.UpsertDepartment(ctx, store.Department{Slug: "dept", Name: "Department of Examples"}); err != nil {
		t.Fatal(err)
	}
	src, err := db.UpsertSource(ctx, store.Source{Name: "dept", URL: "https://example.org/feed", DepartmentSlug: "dept", Format: "auto", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	var topicIDs []int64
	for i := range 20 {
		tp, err := db.UpsertTopic(ctx, store.Topic{Slug: fmt.Sprintf("topic-%d", i), Title: fmt.Sprintf("Topic %d", i),
			Rule: store.Rule{Keywords: []string{fmt.Sprintf("kw%d", i)}}}, &rules.Topics{})
		if err != nil {
			t.Fatal(err)
		}
		topicIDs = append(topicIDs, tp.ID)
	}
	if _, err := db.ApplyPull(ctx, src.ID, nil, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
		t.Fatal(err)
	}
	// The anchor period, then a day of releases touching every topic.
	keys, _ := alerts.NewKeys("crash test key of enough length")
	svc, err := alerts.NewService(db, alerts.Config{BaseURL: subBase, TemplatesFS: templates.Embedded()}, keys, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RunDue(ctx, "daily", db.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Set(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	var es []store.Entry
	for i := range 40 {
		es = append(es, entry(fmt.Sprintf("r%d", i), fmt.Sprintf("Release %d on kw%d", i, i%20), "<p>Summary.</p>", db.Now()))
	}
	if _, err := db.ApplyPull(ctx, src.ID, es, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	benchSubscribers(t, db, clock, subscribers, topicIDs, rng)
	db.Close()
	// Each episode starts from this state, on a clone of its own.
	path := storetest.Clone(t, seed)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// run starts a child and kills it killAfter after it starts the
	// digest, reporting whether it finished first.
	run := func(killAfter time.Duration) (finished bool) {
		cmd := exec.Command(exe, "-test.run=^TestDigestCrashChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), digestCrashEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		var log strings.Builder
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			sc := bufio.NewScanner(stdout)
			once := false
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if !once && sc.Text() == digestCrashStarted {
					once = true
					close(started)
				}
			}
		}()
		select {
		case <-started:
		case <-readDone:
			// The child ended before starting the digest.
			err := cmd.Wait()
			t.Fatalf("child ended early: %v\n%s", err, log.String())
		}
		select {
		case <-readDone:
			err := cmd.Wait()
			if err != nil {
				t.Fatalf("child failed: %v\n%s", err, log.String())
			}
			return true
		case <-time.After(killAfter):
			cmd.Process.Kill() // SIGKILL: no deferred code runs
			<-readDone
			cmd.Wait()
			return false
		}
	}
	// Episodes: kill the run at random moments until one run finishes,
	// check that every subscriber has exactly one digest, then start the
	// period over, until the runs have been killed at least ten times.
	// digests returns the digests in the outbox.
	digests := func() []alertstest.Message {
		db := storetest.OpenFile(t, path, clock)
		defer db.Close()
		return alertstest.Outbox(t, db, alertstest.Kind(store.KindDigest))
	}
	verify := func() {
		rows := digests()
		distinct := map[int64]bool{}
		for _, m := range rows {
			distinct[m.SubscriberID] = true
		}
		if len(rows) != subscribers || len(distinct) != subscribers {
			t.Fatalf("%d digests for %d distinct subscribers; want exactly one each for %d", len(rows), len(distinct), subscribers)
		}
		db := storetest.OpenFile(t, path, clock)
		runs, err := db.DigestRuns(ctx, "daily", 5)
		db.Close()
		if err != nil || len(runs) != 2 || runs[0].Status != store.DigestDone || runs[0].Enqueued == 0 {
			t.Fatalf("runs: %+v, %v", runs, err)
		}
		// Start the period over for the next episode.
		path = storetest.Clone(t, seed)
	}
	// progress is how many digests are in the outbox.
	progress := func() int { return len(digests()) }
	kills, episodes := 0, 0
	for ; kills < 10; episodes++ {
		if episodes == 30 {
			t.Fatalf("only %d kills landed in %d episodes", kills, episodes)
		}
		// Kills land at random in a window that widens whenever a kill
		// left no progress (a slow machine), so the run always finishes.
		window, stalled := 400*time.Millisecond, 0
		for last := progress(); !run(time.Duration(rng.Int64N(int64(window)))); {
			kills++
			if p := progress(); p > last {
				last, stalled = p, 0
			} else if stalled++; stalled == 20 {
				t.Fatal("20 runs in a row killed without progress: no progress survives a kill")
			} else {
				window = min(2*window, 20*time.Second)
			}
		}
		verify()
	}
	t.Logf("killed %d times over %d episodes", kills, episodes)
}
