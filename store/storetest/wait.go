package storetest

import (
	"testing"
	"time"
)

// Eventually polls cond every 10ms until it holds, failing t with what
// when it does not within the given time, and returns how long it took:
// for tests of several instances, whose handover takes real time.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
