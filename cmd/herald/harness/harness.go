// Package harness runs the herald binary as an operator would, for the
// tests and benchmarks that measure it from outside: the reliability
// suite of cmd/herald and the benchmarks in bench/. It owns what they
// share: building the binary, free loopback ports, an installation (a
// config file and a database) and its commands, `herald serve` and other
// long-running processes with their logs, readiness and peak memory, and a
// publisher of RSS feeds on loopback. The SMTP server they send to is
// alerts/smtptest's.
//
// It is a normal package so that tests in several packages can import
// it; only tests may (harness_test.go checks).
//
//	bin := harness.Build(t)
//	pub := harness.NewPublisher(t, harness.PublisherOptions{ETags: true})
//	pub.Add("news", harness.Item{GUID: "n1", Title: "Pier reopens", Published: time.Now()})
//	in := harness.NewInstance(t, bin, t.TempDir())
//	in.Config["departments"] = []map[string]any{{"slug": "coast", "name": "Coast Office"}}
//	in.Config["sources"] = []map[string]any{{"name": "news", "url": pub.FeedURL("news"), "department": "coast"}}
//	in.UseSMTP(smtptest.Start(t, smtptest.Options{}), 5*time.Second, 100)
//	in.WriteConfig()
//	in.Run(time.Minute, "pull")
//	s := in.Serve()
//	s.WaitReady(t, time.Minute)
//	feed := in.Get("/feeds/all.atom")
//	s.Stop(t)
package harness

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Credentials and sender every installation is configured with. They are
// invented; the reliability suite looks for them in logs, where they must
// never appear.
const (
	AdminToken = "herald-harness-admin-token-0123456789"
	TokenKey   = "herald harness token key, invented for tests and benchmarks"
	From       = "Herald <alerts@news.example.org>"
)

// Build builds herald/cmd/herald with CGO_ENABLED=0, as released, into a
// directory removed when tb ends, and returns the binary's path.
func Build(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "herald")
	cmd := exec.Command("go", "build", "-o", bin, "herald/cmd/herald")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago. Another process may take it before it is used; the port is chosen
// by the kernel, so that is unlikely.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Tail is the last n bytes of s, marked as cut when it is: the end of a
// log is where a failure shows.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Gunzip decodes a gzip body, as a client that asked for one must.
func Gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
