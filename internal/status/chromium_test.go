package status

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// pngSize reads the width and height of a PNG file.
func pngSize(t *testing.T, path string) (int, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 24 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %v (%d bytes)", path, err, len(b))
	}
	return int(binary.BigEndian.Uint32(b[16:20])), int(binary.BigEndian.Uint32(b[20:24]))
}

// The detector of console errors and of requests can fail: a page with a script error and an
// external image is caught on both counts.
func TestChromiumSeesErrorsAndRequests(t *testing.T) {
	br := testenv.NewBrowser(t)
	bad := filepath.Join(t.TempDir(), "bad.html")
	if err := os.WriteFile(bad, []byte(`<!DOCTYPE html><html><body><img src="http://example.invalid/x.png"><script>nosuch();</script></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, console := br.Run(bad, "--dump-dom")
	if len(console) == 0 || !strings.Contains(strings.Join(console, "\n"), "nosuch") {
		t.Errorf("console errors not seen: %q", console)
	}
	if reqs := br.Requests(); len(reqs) != 1 || !strings.Contains(reqs[0], "example.invalid") {
		t.Errorf("requests %q, want the image's", reqs)
	}
}

var (
	calendarRE = regexp.MustCompile(`(?s)<svg class="calendar" data-target="([^"]*)"[^>]*>(.*?)</svg>`)
	markedRE   = regexp.MustCompile(`data-status="(archived|verified|failed)"`)
	dayRE      = regexp.MustCompile(`<rect class="day `)
)

// calendars reads each calendar of a page: target → marked days, and the days drawn.
func calendars(dom string) (marked map[string]int, days map[string]int, order []string) {
	marked, days = map[string]int{}, map[string]int{}
	for _, m := range calendarRE.FindAllStringSubmatch(dom, -1) {
		name := m[1]
		order = append(order, name)
		marked[name] = len(markedRE.FindAllString(m[2], -1))
		days[name] = len(dayRE.FindAllString(m[2], -1))
	}
	return marked, days, order
}

// TestHTMLReportInChromium renders the report of three targets (one healthy with gaps and
// verifications, one stale, one shrunken, at two destinations) in real headless Chromium at
// desktop and phone sizes: screenshots are kept, the DOM has one calendar per target with the
// right number of marked days, nothing is logged to the console, nothing is fetched, and the
// page is no wider than a phone's screen.
func TestHTMLReportInChromium(t *testing.T) {
	br := testenv.NewBrowser(t)
	primary, second := newBucket(), newBucket()
	keys := fortyDays(t, primary, "shop", 3, 4, 11)
	primary.verified(t, keys[1], true, now.Add(-20*time.Hour))
	primary.verified(t, keys[7], false, now.Add(-7*24*time.Hour))
	fortyDays(t, primary, "blog", 0, 1, 2, 3)
	fortyDays(t, primary, "crm", 0)
	primary.archive(t, "crm", "DATABASE", 300, now.Add(-2*time.Hour), 200_000, 0, "")
	fortyDays(t, second, "shop", 3, 4, 11, 20)
	targets := []Target{{App: "shop", Database: "DATABASE"}, {App: "blog", Database: "DATABASE"}, {App: "crm", Database: "DATABASE"}}
	r := Report{GeneratedAt: now, Timezone: "UTC", MaxAge: "26h", MaxShrink: 0.5}
	for _, d := range []struct {
		name string
		src  *bucket
	}{{"s3://acme-archive/pgbackups", primary}, {"sftp://backup@vault.example.com/srv/pg", second}} {
		for _, tg := range targets {
			r.Targets = append(r.Targets, Build(context.Background(), d.src, d.name, tg, opts()))
		}
	}
	wantMarked := map[string]int{"shop:DATABASE": 37, "blog:DATABASE": 36, "crm:DATABASE": 40}
	if primary.dumpsOpened()+second.dumpsOpened() != 0 {
		t.Fatal("status read a dump")
	}

	var page bytes.Buffer
	if err := WriteHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	assertSelfContained(t, page.String())
	dir := testenv.Artifacts(t)
	file := filepath.Join(dir, "status.html")
	if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	dom, console := br.Run(file, "--dump-dom")
	marked, days, order := calendars(dom)
	if fmt.Sprint(order) != "[shop:DATABASE blog:DATABASE crm:DATABASE]" {
		t.Errorf("calendars in the DOM: %q, want one per target", order)
	}
	for name, want := range wantMarked {
		if marked[name] != want || days[name] != 90 {
			t.Errorf("%s: %d marked of %d days, want %d of 90", name, marked[name], days[name], want)
		}
	}
	for _, s := range []string{"sftp://backup@vault.example.com/srv/pg", "stale: the newest archive", "shrunk: the newest archive (b300)",
		`data-status="failed"`, `data-status="verified"`, "passed", "Archive size per day"} {
		if !strings.Contains(dom, s) {
			t.Errorf("the page lacks %q", s)
		}
	}
	if n := strings.Count(dom, `<svg class="sizes"`); n != 3 {
		t.Errorf("%d size charts, want 3", n)
	}

	// Phone width: a copy with a measuring script says whether the page is wider than the screen.
	measured := filepath.Join(dir, "status-measured.html")
	probe := `<script>document.documentElement.setAttribute("data-overflow", String(document.documentElement.scrollWidth - window.innerWidth))</script></body>`
	if err := os.WriteFile(measured, bytes.Replace(page.Bytes(), []byte("</body>"), []byte(probe), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range []string{"1280,900", "390,844"} {
		mdom, mconsole := br.Run(measured, "--window-size="+size, "--dump-dom")
		m := regexp.MustCompile(`data-overflow="(-?\d+)"`).FindStringSubmatch(mdom)
		if m == nil {
			t.Fatalf("%s: the measuring script did not run: %.300s", size, mdom)
		}
		if over, _ := strconv.Atoi(m[1]); over > 0 {
			t.Errorf("at %s the page is %d px wider than the window", size, over)
		}
		console = append(console, mconsole...)
	}

	for _, shot := range []struct{ name, size string }{{"status-1280x900.png", "1280,900"}, {"status-390x844.png", "390,844"}} {
		path := filepath.Join(dir, shot.name)
		_, c := br.Run(file, "--window-size="+shot.size, "--screenshot="+path)
		console = append(console, c...)
		w, h := pngSize(t, path)
		if fmt.Sprintf("%d,%d", w, h) != shot.size {
			t.Errorf("screenshot %s is %dx%d", shot.name, w, h)
		}
		t.Logf("screenshot: %s", path)
	}
	if len(console) > 0 {
		t.Errorf("console messages: %q", console)
	}
	if reqs := br.Requests(); len(reqs) > 0 {
		t.Errorf("the page made requests: %q", reqs)
	}
}
