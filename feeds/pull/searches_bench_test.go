package pull_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"herald/feeds/netguard"
	"herald/feeds/pull"
	"herald/store"
	"herald/store/storetest"
)

// pullBenchOtherWords are words the generated feed never uses, for
// searches that match none of its releases, as most followed searches
// match none of one pull's.
var pullBenchOtherWords = strings.Fields(`aviation badger bereavement biodiversity carbon charity childcare coroner
	dementia diesel drought embassy energy estuary farming fisheries forestry gambling heritage hydrogen immigration
	insolvency landfill libraries lottery maternity mortgage museums nursing obesity orchards pandemic parole pesticides
	plastics pollen quarry refugees rivers salmon sanctions solar stamp steel tariffs tenancy tobacco tourism uranium
	vaccines vaping wetlands whales wildfire woodland youth zoning`)

// pullBenchSearches follows n searches, one subscription each, spread as
// a newsroom's would be: most pair a word of the feed with one it never
// uses (matched by no release, though their feed word could pick them as
// candidates), some are prefixes, some are limited to a department, and,
// unless unmatched, one in fifty is a place and a subject the feed does
// use.
func pullBenchSearches(ctx context.Context, b *testing.B, db *store.DB, n int, unmatched bool) {
	other, err := db.UpsertDepartment(ctx, store.Department{Slug: "inland", Name: "Department for Inland Affairs"})
	if err != nil {
		b.Fatal(err)
	}
	coastal, err := db.DepartmentBySlug(ctx, "coastal")
	if err != nil {
		b.Fatal(err)
	}
	var wishes []storetest.Wish
	err = db.InTx(ctx, func(tx *store.Tx) error {
		wishes = wishes[:0]
		for i := 0; i < n; i++ {
			feedWord := strings.Fields(pullBenchWords[i%len(pullBenchWords)])[0]
			otherWord := pullBenchOtherWords[(i/len(pullBenchWords))%len(pullBenchOtherWords)]
			spec := store.SearchSpec{Name: "search"}
			switch {
			case i%50 == 0 && !unmatched:
				spec.Query = store.NormalizeSearchText(pullBenchPlaces[(i/50)%len(pullBenchPlaces)] + " " + feedWord)
			case i%7 == 0 && unmatched:
				spec.Query = store.NormalizeSearchText(fmt.Sprintf("%s%d* %s", otherWord, i, feedWord))
			case i%7 == 0:
				spec.Query = store.NormalizeSearchText(otherWord[:3] + "* " + feedWord)
			default:
				spec.Query = store.NormalizeSearchText(fmt.Sprintf("%s %s%d", feedWord, otherWord, i/(len(pullBenchWords)*len(pullBenchOtherWords))))
			}
			switch i % 5 {
			case 1:
				spec.DepartmentID = coastal.ID
			case 2:
				spec.DepartmentID = other.ID
			}
			s, err := tx.EnsureSearch(spec)
			if err != nil {
				return err
			}
			wishes = append(wishes, storetest.Wish{Address: fmt.Sprintf("reader%d@example.org", i),
				Target: store.Target{SearchID: s.ID}, Frequency: store.Frequencies()[i%3]})
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	storetest.SubscribeMany(b, db, wishes)
}

// BenchmarkPull10kSearches is BenchmarkPull10k with every release one to
// alert about (the source's back catalogue was read before), so each is
// matched against the followed searches: none; 10,000 of them, each with
// one subscription, of which 200 match releases of the feed; and 10,000
// that match none of them.
//
//	go test -run '^$' -bench Pull10kSearches -benchtime=3x -cpu 1 ./feeds/pull/
func BenchmarkPull10kSearches(b *testing.B) {
	b.Run("searches=0", func(b *testing.B) { benchPullSearches(b, 0, false) })
	b.Run("searches=10000", func(b *testing.B) { benchPullSearches(b, 10000, false) })
	b.Run("searches=10000,unmatched", func(b *testing.B) { benchPullSearches(b, 10000, true) })
}

func benchPullSearches(b *testing.B, searches int, unmatched bool) {
	const n = 10000
	feed := pullBenchFeed(n)
	srv := pullBenchServer(b, feed)
	ctx := context.Background()
	b.SetBytes(int64(len(feed)))
	var matches int
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, src := pullBenchStore(ctx, b, srv.URL)
		// The back catalogue, read before: what the pull brings is new.
		if _, err := db.ApplyPull(ctx, src.ID, nil, store.PullOptions{}); err != nil {
			b.Fatal(err)
		}
		pullBenchSearches(ctx, b, db, searches, unmatched)
		p := pull.NewPuller(db, pull.Config{MaxBody: 64 << 20, Timeout: 5 * time.Minute, Guard: netguard.Guard{AllowPrivate: true},
			AlertMaxAge: 100 * 365 * 24 * time.Hour}, nil)
		runtime.GC() // the setup's garbage is not the pull's
		b.StartTimer()

		before := cpuTime(b)
		reports, err := p.Pull(ctx, pull.Request{})
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - before
		if len(reports) != 1 || reports[0].New != n || reports[0].Alerts != n {
			b.Fatalf("reports = %+v, want %d new releases to alert about", reports, n)
		}

		b.StopTimer()
		pending, err := db.PendingAlerts(ctx, 0, n+1)
		if err != nil {
			b.Fatal(err)
		}
		matches = 0
		for _, r := range pending {
			matches += len(r.SearchIDs)
		}
		if (searches > 0 && !unmatched) != (matches > 0) {
			b.Fatalf("%d matches of followed searches", matches)
		}
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(matches)/n, "searches/entry")
	// This process's CPU time for the pull: with SQLite, all of it, and a
	// steadier figure than the elapsed time on a machine others share.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
