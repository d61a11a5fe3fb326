package main_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/alerts/smtptest"
	"herald/cmd/herald/harness"
)

// testLoad has 200 clients poll feeds, with and without validators and
// gzip, while a pull brings new releases, immediate alerts go out and a
// daily digest is composed and sent: no errors, no SQLite lock errors,
// and a request whose ETag is current always gets its 304.
func testLoad(t *testing.T, bin string, fig *figures, rng *rand.Rand) {
	smtp := smtptest.Start(t, smtptest.Options{CountOnly: true})
	pub := harness.NewPublisher(t, harness.PublisherOptions{ETags: true})
	in := harness.NewInstance(t, bin, t.TempDir())
	var w world
	w.configure(in, pub)
	in.Config["schedule"] = map[string]any{"pull": "0 0 1 1 *", "daily_digest": "@every 5s", "weekly_digest": "0 0 1 1 *"}
	in.UseSMTP(smtp, 5*time.Second, 5000)
	in.WriteConfig()
	w.wave(pub, 0, 12)
	in.Run(2*time.Minute, "pull")
	in.ImportSubscribers(w.subscribe(1200))
	s := in.Serve()
	s.WaitReady(t, time.Minute)

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
				req, _ := http.NewRequest("GET", in.Base()+u, nil)
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
						if _, err := harness.Gunzip(body); err != nil {
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
		if code, body := in.API("POST", "/api/v1/sources/"+d.Slug+"-news/pull", nil); code != http.StatusOK {
			t.Errorf("pull %s during the load: %d %s", d.Slug, code, body)
		}
	}
	// Then the daily digest (a 5-second period here) composes and sends.
	for {
		digests := in.QueryInt(`SELECT coalesce(sum(enqueued), 0) FROM digest_runs WHERE status = 'done'`)
		c := outboxCounts(t, in)
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
	digests := in.QueryInt(`SELECT coalesce(sum(enqueued), 0) FROM digest_runs WHERE status = 'done'`)
	immediate := in.QueryInt(`SELECT count(*) FROM outbox WHERE kind = 'immediate'`)
	total := ok200.Load() + ok304.Load() + errs.Load()
	if errs.Load() > 0 {
		t.Errorf("%d of %d requests failed, first: %s", errs.Load(), total, firstErr)
	}
	if stale.Load() > 0 {
		t.Errorf("%d conditional requests with the current ETag got 200 instead of 304", stale.Load())
	}
	if problems := logProblems(in, true); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	rss := s.PeakRSS()
	s.Stop(t)
	fig.add(t, "load: %d clients for %s while a pull stored %d releases (%d immediate alerts) and a daily digest went to %d subscribers "+
		"(%d emails sent): %d requests (%.0f/s), %d answered 200 and %d 304; %d errors; %d conditional requests, "+
		"%d answered 200 with an unchanged ETag; no \"database is locked\"; peak RSS %d MB",
		clients, elapsed.Round(100*time.Millisecond), newReleases, immediate, digests, smtp.Count(), total,
		float64(total)/elapsed.Seconds(), ok200.Load(), ok304.Load(), errs.Load(), conditional.Load(), stale.Load(), rss>>20)
}
