package harness_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/cmd/herald/harness"
)

// TestOnlyTestsImportHarness keeps the harness out of the product: it
// builds and runs binaries, and belongs to tests alone.
func TestOnlyTestsImportHarness(t *testing.T) {
	const self = "herald/cmd/herald/harness"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "herald/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) > 1 && fields[0] != self && strings.Contains(" "+strings.Join(fields[1:], " ")+" ", " "+self+" ") {
			t.Errorf("%s imports %s outside its tests", fields[0], self)
		}
	}
}

func TestPublisherServesFeedsWithETags(t *testing.T) {
	pub := harness.NewPublisher(t, harness.PublisherOptions{ETags: true})
	published := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	pub.Add("north", harness.Item{GUID: "n1", Title: "Older", Summary: "<p>One.</p>", Published: published},
		harness.Item{GUID: "n2", Title: "Newer", Summary: "<p>Two.</p>", Body: "<p>All of two.</p>", Published: published.Add(time.Hour)})
	get := func(etag string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", pub.FeedURL("north"), nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	if _, ok := pub.FirstServed("n1"); ok {
		t.Error("n1 served before any request")
	}
	resp, body := get("")
	var doc struct {
		Items []struct {
			GUID    string `xml:"guid"`
			Content string `xml:"http://purl.org/rss/1.0/modules/content/ encoded"`
		} `xml:"channel>item"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v\n%s", resp.StatusCode, err, body)
	}
	if len(doc.Items) != 2 || doc.Items[0].GUID != "n2" || doc.Items[0].Content != "<p>All of two.</p>" || doc.Items[1].Content != "" {
		t.Errorf("items %+v, want n2 (with its body) then n1 (without)", doc.Items)
	}
	if _, ok := pub.FirstServed("n1"); !ok {
		t.Error("n1 served but not recorded")
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := get(etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("with the current ETag: %d, want 304", resp.StatusCode)
	}
	pub.Add("north", harness.Item{GUID: "n3", Title: "Newest", Published: published.Add(2 * time.Hour)})
	if resp, _ := get(etag); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
		t.Errorf("after a new item: %d with ETag %q, want 200 with a new one", resp.StatusCode, resp.Header.Get("ETag"))
	}
	resp, err := http.Get(pub.FeedURL("south"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a feed nothing was added to: %d, want 404", resp.StatusCode)
	}
}

func TestProcessLogsMemoryAndStop(t *testing.T) {
	p := harness.Start(t, filepath.Join(t.TempDir(), "p.log"), "sh", "-c",
		`echo '{"level":"INFO","msg":"ready to serve"}' >&2; echo 'plain line' >&2; exec sleep 30`)
	if !p.WaitLog("ready to", 10*time.Second) || !p.WaitLog("plain line", time.Second) {
		t.Fatalf("log messages not seen; %v", p.Check())
	}
	if p.WaitLog("never written", 50*time.Millisecond) {
		t.Error("WaitLog found a message that was never written")
	}
	if p.PeakRSS() <= 0 {
		t.Error("no peak RSS for a running process")
	}
	if err := p.Check(); err != nil {
		t.Fatalf("running process reported as ended: %v", err)
	}
	p.Stop(t)
	if !p.Exited() || p.Check() == nil {
		t.Error("stopped process not reported as ended")
	}
}

// TestCommandsRunSideBySide runs two commands that each wait for the
// other to start, so they finish only if Start does not wait; and checks
// that a command's peak memory is its own, not the test process's.
func TestCommandsRunSideBySide(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-herald")
	// fake-herald NAME --config FILE OTHER: marks NAME started, waits for
	// OTHER, and stays a moment so that its memory is read.
	script := "#!/bin/sh\ntouch \"" + dir + "/$1\"\nwhile [ ! -e \"" + dir + "/$4\" ]; do sleep 0.01; done\necho \"$1 done\"\nsleep 0.2\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// The test process holds far more memory than the commands use.
	ballast := make([]byte, 256<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	in := harness.NewInstance(t, bin, dir)
	a := in.Start(time.Minute, "a", "b")
	b := in.Start(time.Minute, "b", "a")
	ra, rb := a.Wait(), b.Wait()
	if ra.Stdout != "a done\n" || rb.Stdout != "b done\n" {
		t.Errorf("stdout %q and %q, want each command's own", ra.Stdout, rb.Stdout)
	}
	for _, r := range []harness.Result{ra, rb} {
		if r.MaxRSS <= 0 || r.MaxRSS > 64<<20 {
			t.Errorf("peak RSS %d bytes: want the command's own, a few MB (the test process holds %d)", r.MaxRSS, len(ballast))
		}
		if r.Elapsed < 200*time.Millisecond {
			t.Errorf("elapsed %v, want at least the command's 0.2 s", r.Elapsed)
		}
	}
}
