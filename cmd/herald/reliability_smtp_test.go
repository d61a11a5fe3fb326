package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"herald/alerts/smtptest"
	"herald/cmd/herald/harness"
)

// testSMTPFaults sends 600 immediate alerts through a relay that answers
// 4xx to a third of them once, 5xx to some addresses always, 4xx to a few
// always, stalls and hangs up: every message must end delivered or failed
// for good, none lost, and only a message whose delivery the relay never
// confirmed may arrive twice (with the same Message-ID).
func testSMTPFaults(t *testing.T, bin string, fig *figures) {
	smtp := smtptest.Start(t, smtptest.Options{})
	pub := harness.NewPublisher(t, harness.PublisherOptions{ETags: true})
	in := harness.NewInstance(t, bin, t.TempDir())
	in.Config["departments"] = []map[string]any{{"slug": "coastal", "name": "Coastal Office"}}
	in.Config["sources"] = []map[string]any{{"name": "coastal-news", "url": pub.FeedURL("coastal-news"), "department": "coastal", "format": "rss"}}
	in.UseSMTP(smtp, 2*time.Second, 1000)["retry_max_age"] = "20s"
	in.WriteConfig()
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 3 {
		pub.Add("coastal-news", harness.Item{GUID: fmt.Sprintf("old-%d", i), Title: fmt.Sprintf("Older notice %d", i),
			Summary: "<p>From the archive.</p>", Published: now.Add(-time.Duration(72+i) * time.Hour)})
	}
	in.Run(2*time.Minute, "pull")

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
	in.ImportSubscribers(rows)
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

	s := in.Serve()
	s.WaitReady(t, time.Minute)
	pub.Add("coastal-news", harness.Item{GUID: "new-1", Title: "Harbour wall repairs finished ahead of the storm season",
		Summary: "<p>The works finished a week early.</p>", Published: time.Now().UTC().Add(-time.Minute).Truncate(time.Second)})
	if code, body := in.API("POST", "/api/v1/sources/coastal-news/pull", nil); code != http.StatusOK {
		t.Fatalf("pull: %d %s", code, body)
	}
	start := time.Now()
	for {
		c := outboxCounts(t, in)
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
	outbox := in.QueryStrings(`SELECT to_addr, status, message_id, attempts, last_error FROM outbox WHERE kind = 'immediate'`)
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
	if problems := logProblems(in, false); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	if leaks := infoLeaks(in, "@example.net", harness.AdminToken); len(leaks) > 0 {
		t.Errorf("%d info-level log lines hold an address or secret, first: %s", len(leaks), leaks[0])
	}
	s.Stop(t)
	fig.add(t, "smtp faults: %d messages; injected: %d answered 4xx once (%.0f%% with the always-4xx), %d 5xx always, %d 4xx always, "+
		"%d stalls, %d dropped at RCPT, %d dropped after DATA; %d delivered, %d failed for good, %d lost, "+
		"%d duplicates (same Message-ID); settled in %s",
		n, count["4xx-once"], 100*float64(count["4xx-once"]+count["4xx-always"])/n, count["5xx"], count["4xx-always"],
		count["stall"], count["drop"], count["drop-after-data"], delivered, failed, lost, dups, settle.Round(time.Second))
}
