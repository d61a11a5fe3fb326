package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/alerts/smtptest"
	"herald/cmd/herald/harness"
	"herald/store"
	"herald/store/storetest"
)

// BenchmarkDigestFanout sends a daily digest to 100,000 subscribers with
// the Herald binary, against an SMTP server on loopback in this process.
// Each subscriber follows one to three of 200 topics; 300 releases arrived
// in the period, so every subscriber gets a digest of a few releases.
// Subscribers are written straight into the database (importing them is
// not what is measured); releases come from two real pulls, and the daily
// period ends at the next whole minute after them.
//
// The commands are timed as an operator would run them once the period
// has ended: `herald digest --no-send` composes and queues the period's
// digests, then `herald digest` finds the period done and sends the outbox
// (4 connections, no rate cap). It reports messages per second of each and
// overall, and the peak resident memory of each process.
//
// On PostgreSQL it also measures two instances sharing the sending, as two
// `herald serve` processes do: the digests are composed once, by one
// process (the leader composes), and the outbox is sent by two `herald
// digest` processes started together, which claim messages with FOR
// UPDATE SKIP LOCKED as every instance's outbox delivery does; once with
// 2 connections each (the same 4 in all as one instance) and once with 4
// each. Each way of sending, one instance included, then starts from its
// own copy of the database as composing left it (storetest.Clone), and
// the compose figures are shared.
// Metrics of two instances are prefixed 2x2- and 2x4- (instances x
// connections each); their peak memory is the larger of the two senders',
// and lesser-share-% the part of the messages the less busy one sent.
//
//	go test -run '^$' -bench DigestFanout -benchtime 1x ./bench/
func BenchmarkDigestFanout(b *testing.B) {
	n := 100_000
	if v := os.Getenv("BENCH_SUBSCRIBERS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	bin := heraldBinary(b)
	for i := 0; i < b.N; i++ {
		benchDigestFanout(b, bin, n)
	}
}

var (
	queuedRE = regexp.MustCompile(`(\d+) messages queued`)
	sentRE   = regexp.MustCompile(`(\d+) messages sent`)
)

func benchDigestFanout(b *testing.B, bin string, subscribers int) {
	b.StopTimer()
	const topics, releases = 200, 300
	pub := harness.NewPublisher(b, harness.PublisherOptions{ETags: true})
	now := time.Now().UTC().Truncate(time.Second)
	for n := 1; n <= 5; n++ {
		pub.Add("coastal", sampleItem(n, now.Add(-time.Duration(6-n)*24*time.Hour)))
	}
	in := newInstance(b, bin, pub)
	var tl []map[string]any
	for i := range topics {
		tl = append(tl, map[string]any{"slug": fmt.Sprintf("topic-%03d", i), "title": fmt.Sprintf("Subject %03d", i),
			"match": map[string]any{"keywords": []string{fmt.Sprintf("subject%03d", i)}}})
	}
	in.Config["topics"] = tl
	in.WriteConfig()
	in.Run(time.Minute, "pull") // the back catalogue: never alerted
	for i := range releases {
		it := sampleItem(100+i, now.Add(-time.Hour), fmt.Sprintf("subject%03d", i%topics), fmt.Sprintf("subject%03d", (i*7)%topics))
		pub.Add("coastal", it)
	}
	in.Run(time.Minute, "pull")
	// The daily period ends at the next whole minute, after the releases
	// were stored; the digest runs once it has, on the real clock, as the
	// scheduler of `herald serve` would run it.
	end := time.Now().UTC().Add(2 * time.Second).Truncate(time.Minute).Add(time.Minute)
	in.Config["schedule"] = map[string]any{"pull": "0 0 1 1 *", "daily_digest": fmt.Sprintf("%d %d * * *", end.Minute(), end.Hour()),
		"weekly_digest": "0 0 1 1 *"}
	in.WriteConfig()
	insertSubscribers(b, in.Database, subscribers, topics)
	time.Sleep(time.Until(end.Add(time.Second)))

	b.StartTimer()
	compose := in.Run(10*time.Minute, "digest", "--frequency", "daily", "--no-send")
	b.StopTimer()
	if queued := sumMatches(queuedRE, compose.Stdout); queued != subscribers {
		b.Fatalf("queued %d digests for %d subscribers\n%s", queued, subscribers, compose.Stdout)
	}
	b.ReportMetric(float64(subscribers)/compose.Elapsed.Seconds(), "compose-msgs/s")
	b.ReportMetric(float64(compose.MaxRSS)/(1<<20), "compose-peak-RSS-MB")
	b.ReportMetric(float64(subscribers), "subscribers")

	type sending struct {
		prefix           string
		instances, conns int
	}
	ways := []sending{{"", 1, 4}}
	if storetest.Engine() == store.Postgres {
		ways = append(ways, sending{"2x2-", 2, 2}, sending{"2x4-", 2, 4})
	}
	for _, w := range ways {
		// Each way of sending starts from the outbox as composing left
		// it: from a copy of the database when there are several.
		database := in.Database
		if len(ways) > 1 {
			database = storetest.Clone(b, in.Database)
		}
		send := sendOutbox(b, in, database, w.instances, w.conns, subscribers)
		b.ReportMetric(float64(subscribers)/send.Elapsed.Seconds(), w.prefix+"send-msgs/s")
		b.ReportMetric(float64(subscribers)/(compose.Elapsed+send.Elapsed).Seconds(), w.prefix+"msgs/s")
		b.ReportMetric(float64(send.MaxRSS)/(1<<20), w.prefix+"send-peak-RSS-MB")
		b.ReportMetric(float64(send.connections), w.prefix+"smtp-connections")
		if w.instances > 1 {
			b.ReportMetric(100*float64(send.least)/float64(subscribers), w.prefix+"lesser-share-%")
		}
	}
}

// sent is how a composed outbox was sent: the time from the senders'
// start to the last one's end, the largest peak memory among them, the
// fewest messages one of them sent, and how many SMTP connections they
// opened in all.
type sent struct {
	harness.Result
	least, connections int
}

// sendOutbox sends the outbox of database, in's or a copy of it, with
// instances `herald digest` processes started together (each finding the
// period done and draining the outbox), each with conns SMTP connections,
// to a new SMTP server; the sending is timed.
func sendOutbox(b *testing.B, in *harness.Instance, database string, instances, conns, subscribers int) sent {
	b.Helper()
	srv := smtptest.Start(b, smtptest.Options{CountOnly: true})
	defer srv.Close()
	var senders []*harness.Instance
	for range instances {
		tw := in.Twin(workDir(b))
		tw.Database, tw.Config["database"] = database, database
		tw.UseSMTP(srv, 30*time.Second, 1_000_000)["concurrency"] = conns
		tw.WriteConfig()
		senders = append(senders, tw)
	}
	b.StartTimer()
	var cmds []*harness.Command
	for _, tw := range senders {
		cmds = append(cmds, tw.Start(15*time.Minute, "digest", "--frequency", "daily"))
	}
	var out sent
	out.least = subscribers
	total := 0
	var stdout []string
	for _, c := range cmds {
		r := c.Wait()
		n := sumMatches(sentRE, r.Stdout)
		total += n
		out.least = min(out.least, n)
		out.Elapsed = max(out.Elapsed, r.Elapsed)
		out.MaxRSS = max(out.MaxRSS, r.MaxRSS)
		stdout = append(stdout, r.Stdout)
		if !strings.Contains(r.Stdout, "no daily digest period was due") {
			b.Fatalf("a sender found a digest period to compose:\n%s", r.Stdout)
		}
	}
	b.StopTimer()
	if total != subscribers || srv.Count() != subscribers {
		b.Fatalf("%d senders sent %d messages, the SMTP server got %d; want %d\n%s", instances, total, srv.Count(), subscribers,
			strings.Join(stdout, "\n"))
	}
	out.connections = srv.Connections()
	return out
}

// useSMTP points the installation's mail at srv without the default rate
// cap: these runs measure what Herald can do.
func useSMTP(in *harness.Instance, srv *smtptest.Server) {
	in.UseSMTP(srv, 30*time.Second, 1_000_000)
}

func sumMatches(re *regexp.Regexp, s string) int {
	n := 0
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// insertSubscribers writes n confirmed subscribers, each with one to three
// active daily subscriptions to random topics, in one transaction.
func insertSubscribers(b *testing.B, dbPath string, n, topics int) {
	b.Helper()
	ctx := context.Background()
	db := storetest.OpenFile(b, dbPath, storetest.NewClock(time.Now().Add(-30*24*time.Hour)))
	defer db.Close()
	ids := map[string]int64{}
	ts, err := db.Topics(ctx, false)
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range ts {
		ids[t.Slug] = t.ID
	}
	rng := rand.New(rand.NewPCG(3, 5))
	var wishes []storetest.Wish
	for i := range n {
		for range 1 + rng.IntN(3) {
			wishes = append(wishes, storetest.Wish{Address: fmt.Sprintf("reader%d@example.net", i),
				Target: store.Target{TopicID: ids[fmt.Sprintf("topic-%03d", rng.IntN(topics))]}, Frequency: store.FrequencyDaily})
		}
	}
	storetest.SubscribeMany(b, db, wishes)
}

// BenchmarkImmediateAlerts measures how long 10,000 subscribers wait for
// an immediate alert: `herald serve` pulls every second; the clock starts
// when the publisher first returns the new release to a pull and stops
// when the SMTP server on loopback has accepted the 10,000th email. In
// between are the pull, the feed renders, composing and queueing the
// alerts and sending them (4 connections, no rate cap). The subscribers
// come in with `herald subscribers import`.
//
//	go test -run '^$' -bench ImmediateAlerts -benchtime 1x ./bench/
func BenchmarkImmediateAlerts(b *testing.B) {
	n := 10_000
	if v := os.Getenv("BENCH_IMMEDIATE"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	bin := heraldBinary(b)
	for i := 0; i < b.N; i++ {
		benchImmediate(b, bin, n)
	}
}

func benchImmediate(b *testing.B, bin string, subscribers int) {
	b.StopTimer()
	srv := smtptest.Start(b, smtptest.Options{CountOnly: true})
	pub := harness.NewPublisher(b, harness.PublisherOptions{ETags: true})
	now := time.Now().UTC().Truncate(time.Second)
	for n := 1; n <= 5; n++ {
		pub.Add("coastal", sampleItem(n, now.Add(-time.Duration(6-n)*24*time.Hour)))
	}
	in := newInstance(b, bin, pub)
	useSMTP(in, srv)
	in.Config["schedule"] = map[string]any{"pull": "@every 1s", "daily_digest": "0 0 1 1 *", "weekly_digest": "0 0 1 1 *"}
	in.WriteConfig()
	in.Run(time.Minute, "pull")

	rows := make([]string, subscribers)
	for i := range rows {
		rows[i] = fmt.Sprintf("reader%d@example.net,,coastal,immediately", i)
	}
	in.ImportSubscribers(rows)

	herald := in.Serve()
	herald.WaitReady(b, time.Minute)
	if srv.Count() != 0 {
		b.Fatalf("%d messages sent before the new release", srv.Count())
	}

	b.StartTimer()
	it := sampleItem(1000, time.Now().UTC().Truncate(time.Second))
	pub.Add("coastal", it)
	var first, last time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c := srv.Count()
		if c > 0 && first.IsZero() {
			first = time.Now()
		}
		if c >= subscribers {
			last = time.Now()
			break
		}
		if err := herald.Check(); err != nil {
			b.Fatal(err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d alerts accepted after 5 minutes", c, subscribers)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	found, ok := pub.FirstServed(it.GUID)
	if !ok {
		b.Fatal("the publisher never served the new release")
	}
	time.Sleep(500 * time.Millisecond)
	if c := srv.Count(); c != subscribers {
		b.Fatalf("SMTP server got %d messages for %d subscribers", c, subscribers)
	}
	b.ReportMetric(last.Sub(found).Seconds(), "pull-to-last-s")
	b.ReportMetric(first.Sub(found).Seconds(), "pull-to-first-s")
	b.ReportMetric(float64(subscribers)/last.Sub(found).Seconds(), "msgs/s")
	b.ReportMetric(float64(herald.PeakRSS())/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(subscribers), "subscribers")
	herald.Stop(b)
}
