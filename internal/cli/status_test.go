package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// plannedSource yields the backup the test plans next, with the finish time it chose: days of
// archives are made by the real job in a few seconds.
type plannedSource struct {
	app    string
	db     string // the key's database segment; "" = DATABASE
	backup string
	at     time.Time
	dump   []byte
}

func (p *plannedSource) Open(ctx context.Context, t archive.Target) (archive.Backup, error) {
	db := p.db
	if db == "" {
		db = "DATABASE"
	}
	return archive.Backup{Meta: catalog.Meta{App: p.app, Database: db, Backup: p.backup, At: p.at, CreatedAt: p.at.Add(-time.Minute),
		FinishedAt: p.at, Mode: "latest", Origin: catalog.Origin{Source: "pgbackups"}},
		Body: io.NopCloser(bytes.NewReader(p.dump)), Size: int64(len(p.dump))}, nil
}

// s3Requests sits between pgoffsite and MinIO and records every request.
type s3Requests struct {
	mu   sync.Mutex
	seen []string // "METHOD /bucket/key"
	deny string   // PUT requests on paths with this suffix are refused (403)
}

func (s *s3Requests) serve(t *testing.T, endpoint string) string {
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+r.URL.Path)
		deny := s.deny != "" && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, s.deny)
		s.mu.Unlock()
		if deny {
			rw.Header().Set("Content-Type", "application/xml")
			rw.WriteHeader(http.StatusForbidden)
			rw.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>`))
			return
		}
		proxy.ServeHTTP(rw, r) // the Host header is kept, so MinIO's signature check still passes
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// count counts the requests of method on paths ending with one of suffixes, and forgets them.
func (s *s3Requests) count(method string, suffixes ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.seen {
		m, path, _ := strings.Cut(r, " ")
		for _, suf := range suffixes {
			if m == method && strings.HasSuffix(path, suf) {
				n++
				break
			}
		}
	}
	return n
}

func (s *s3Requests) reset() {
	s.mu.Lock()
	s.seen = nil
	s.mu.Unlock()
}

// TestStatusFortyDays: against real MinIO, 40 simulated days of archives of three targets made
// through the backup job — shop with gaps, stale whose newest is three days old, shrunk whose
// newest dump lost most of its rows. status marks exactly the gaps, --json says the same, the
// watchdog exits 1 for the stale and the shrunken target and 0 for a healthy bucket, the
// heartbeat hears it, the HTML report has a calendar per target, and no dump is ever read.
func TestStatusFortyDays(t *testing.T) {
	w := newWorld(t)
	dumpOf := func(rows int) []byte {
		name, dsn := w.pg.CreateDB(t, "status")
		w.pg.Exec(t, name, fmt.Sprintf(`CREATE TABLE orders (id bigserial PRIMARY KEY, note text);
			INSERT INTO orders (note) SELECT md5(g::text) FROM generate_series(1, %d) g;`, rows))
		return w.pg.Dump(t, dsn)
	}
	full, broken := dumpOf(20000), dumpOf(500)
	if len(broken)*3 > len(full) {
		t.Fatalf("dumps of %d and %d bytes: the broken one is not much smaller", len(full), len(broken))
	}

	now := time.Now().UTC()
	at := func(ago int) time.Time {
		return now.Add(-time.Duration(ago)*24*time.Hour - 30*time.Minute).Truncate(time.Second)
	}
	shopGaps := map[int]bool{2: true, 9: true, 10: true, 23: true, 35: true}
	src := &plannedSource{}
	st := s3store.New(w.s3(), s3store.Options{Bucket: w.bucket, Prefix: "pgbackups"})
	job := &archive.Job{Source: src, Destinations: []archive.Destination{{Name: "s3://" + w.bucket + "/pgbackups", Store: st}},
		Version: "test", Log: zerolog.Nop()}
	archived := map[string]map[string]bool{} // app → dates with an archive
	newest := map[string]archive.Result{}
	for ago := 39; ago >= 0; ago-- {
		for _, app := range []string{"shop", "stale", "shrunk"} {
			if (app == "shop" && shopGaps[ago]) || (app == "stale" && ago < 3) {
				continue
			}
			*src = plannedSource{app: app, db: map[string]string{"LEGACY_URL": "LEGACY_URL"}[app], backup: fmt.Sprintf("b%03d", 100-ago), at: at(ago), dump: full}
			if app == "shrunk" && ago == 0 {
				src.dump = broken
			}
			res := job.Archive(context.Background(), archive.Target{App: app, Database: "DATABASE_URL"})
			if res.Err != nil {
				t.Fatalf("%s, %d days ago: %v", app, ago, res.Err)
			}
			if archived[app] == nil {
				archived[app] = map[string]bool{}
			}
			archived[app][at(ago).Format(time.DateOnly)] = true
			newest[app] = res
		}
	}

	reqs := &s3Requests{}
	env := w.env("shop stale shrunk")
	delete(env, "HEROKU_API_KEY") // status reads the bucket only
	env["AWS_ENDPOINT_URL_S3"] = reqs.serve(t, w.minio.Endpoint)
	monitor, env := w.withMonitor(env, "failure")
	env["STATUS_HEARTBEAT_URL"], env["HEARTBEAT_URL"] = env["HEARTBEAT_URL"], "" // status pings its own, never the backup's

	code, out := w.runStdout(env, "status", "--json")
	if code != ExitFailed {
		t.Errorf("status of a bucket with a stale and a shrunken target: exit %d, want 1", code)
	}
	var rep struct {
		Targets []struct {
			App, Database, Destination string
			Newest                     struct {
				Backup     string
				FinishedAt time.Time `json:"finished_at"`
				Bytes      int64
			}
			Days []struct {
				Date, Status string
				Bytes        int64
			}
			Problems []string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Targets) != 3 {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	today := time.Now().UTC()
	for _, e := range rep.Targets {
		if e.Destination != "s3://"+w.bucket+"/pgbackups" || e.Database != "DATABASE_URL" {
			t.Errorf("%s: destination %s, database %s", e.App, e.Destination, e.Database)
		}
		if len(e.Days) != 30 {
			t.Fatalf("%s: %d days, want 30", e.App, len(e.Days))
		}
		var got, want []string
		for i, d := range e.Days {
			date := today.AddDate(0, 0, i-29).Format(time.DateOnly)
			status := "missing"
			if archived[e.App][date] {
				status = "archived"
			}
			want = append(want, date+" "+status)
			got = append(got, d.Date+" "+d.Status)
			if (d.Status == "archived") != (d.Bytes > 0) {
				t.Errorf("%s %s: status %s with %d bytes", e.App, d.Date, d.Status, d.Bytes)
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: calendar\n%s\nwant\n%s", e.App, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		n := newest[e.App]
		if e.Newest.Backup != n.Backup || e.Newest.Bytes != n.Bytes || !e.Newest.FinishedAt.Equal(at(map[string]int{"shop": 0, "stale": 3, "shrunk": 0}[e.App])) {
			t.Errorf("%s: newest %+v, want %s of %d bytes", e.App, e.Newest, n.Backup, n.Bytes)
		}
		problems := strings.Join(e.Problems, "; ")
		switch e.App {
		case "shop":
			if problems != "" {
				t.Errorf("shop: problems %q, want none", problems)
			}
		case "stale":
			if !strings.Contains(problems, "stale: the newest archive (b097) finished 3d 0h ago, longer than BACKUP_MAX_AGE=26h") {
				t.Errorf("stale: problems %q", problems)
			}
		case "shrunk":
			if !strings.Contains(problems, "shrunk: the newest archive (b100)") || !strings.Contains(problems, "STATUS_MAX_SHRINK=50%") {
				t.Errorf("shrunk: problems %q", problems)
			}
		}
	}
	if got := monitor.Seen(); !strings.HasSuffix(got, "POST /ping/9f1c-check-key/fail,POST /hook") {
		t.Errorf("the monitor saw %s, want a failure and the webhook", got)
	}
	if hook := monitor.Bodies()["/hook"]; !strings.Contains(hook, "stale: the newest archive") || !strings.Contains(hook, `"command":"status"`) {
		t.Errorf("webhook body %s", hook)
	}

	for _, tt := range []struct {
		targets string
		code    int
	}{{"shop", ExitOK}, {"stale", ExitFailed}, {"shrunk", ExitFailed}, {"shop:DATABASE", ExitOK}, {"nobody", ExitFailed}} {
		env["BACKUP_TARGETS"] = tt.targets
		if code, out := w.runStdout(env, "status"); code != tt.code {
			t.Errorf("status of %s: exit %d, want %d\n%s", tt.targets, code, tt.code, out)
		}
	}

	// The text calendar of the healthy target.
	env["BACKUP_TARGETS"] = "shop"
	_, text := w.runStdout(env, "status")
	var cal strings.Builder
	for i := range 30 {
		if archived["shop"][today.AddDate(0, 0, i-29).Format(time.DateOnly)] {
			cal.WriteByte('#')
		} else {
			cal.WriteByte('.')
		}
	}
	if !strings.Contains(text, "shop:DATABASE_URL at s3://"+w.bucket+"/pgbackups: OK") || !strings.Contains(text, "30 days    "+cal.String()) {
		t.Errorf("text report lacks the calendar %s:\n%s", cal.String(), text)
	}

	// The HTML report: one calendar per target, as many marked days as archives in 90 days.
	env["BACKUP_TARGETS"] = "shop stale shrunk"
	html := filepath.Join(t.TempDir(), "status.html")
	if code, _ := w.runStdout(env, "status", "--html", html); code != ExitFailed {
		t.Errorf("status --html: exit %d", code)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(src|href)="https?://`).Match(page) {
		t.Error("the HTML report links to something outside")
	}
	// In real headless Chromium: the DOM it built, screenshots at desktop and phone sizes, no
	// console message, no request.
	br := testenv.NewBrowser(t)
	dom, console := br.Run(html, "--dump-dom")
	dir := testenv.Artifacts(t)
	for _, size := range []string{"1280,900", "390,844"} {
		shot := filepath.Join(dir, "status-minio-"+strings.Replace(size, ",", "x", 1)+".png")
		_, c := br.Run(html, "--window-size="+size, "--screenshot="+shot)
		console = append(console, c...)
		if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot: %s", shot)
	}
	if len(console) > 0 || len(br.Requests()) > 0 {
		t.Errorf("console %q, requests %q", console, br.Requests())
	}
	cals := regexp.MustCompile(`(?s)<svg class="calendar" data-target="([^"]*)"[^>]*>(.*?)</svg>`).FindAllStringSubmatch(dom, -1)
	if len(cals) != 3 {
		t.Fatalf("%d calendars in the HTML report, want 3", len(cals))
	}
	for _, c := range cals {
		app, _, _ := strings.Cut(string(c[1]), ":")
		marked := len(regexp.MustCompile(`data-status="(archived|verified|failed)"`).FindAllString(c[2], -1))
		if marked != len(archived[app]) {
			t.Errorf("%s: %d marked days, want %d", c[1], marked, len(archived[app]))
		}
	}

	if n := reqs.count(http.MethodGet, ".dump", ".dump.age"); n != 0 {
		t.Errorf("status read %d dumps", n)
	}
	if n := reqs.count(http.MethodGet, ".json"); n < 100 {
		t.Errorf("status read %d manifests through the proxy, want every one", n)
	}

	// verify records its result where status sees it: the newest day turns verified.
	reqs.reset()
	env["BACKUP_TARGETS"] = "shop"
	if code, _ := w.run(env, "verify"); code != ExitOK {
		t.Fatalf("verify: exit %d", code)
	}
	if reqs.count(http.MethodPut, catalog.VerifiedSuffix) != 1 {
		t.Errorf("verify wrote %d records", reqs.count(http.MethodPut, catalog.VerifiedSuffix))
	}
	reqs.reset()
	_, out = w.runStdout(env, "status", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	last := rep.Targets[0].Days[29]
	if last.Date != at(0).Format(time.DateOnly) || last.Status != "verified" {
		// at(0) is today unless the test runs in the half hour after midnight UTC.
		if archived["shop"][last.Date] {
			t.Errorf("after verify, the newest day is %+v, want verified", last)
		}
	}
	if !strings.Contains(out, `"passed": true`) || reqs.count(http.MethodGet, ".dump") != 0 {
		t.Errorf("status after verify: %s", out)
	}

	// Credentials that may not write the record: a warning, and the verification still passes.
	reqs.mu.Lock()
	reqs.deny = catalog.VerifiedSuffix
	reqs.mu.Unlock()
	code, out = w.run(env, "verify")
	if code != ExitOK || !strings.Contains(out, "cannot record the verification for pgoffsite status") || !strings.Contains(out, "level=warn") {
		t.Errorf("verify without the right to record: exit %d\n%s", code, out)
	}
}

// runStdout is run, returning what the command wrote to stdout alone (the report).
func (w *world) runStdout(env map[string]string, args ...string) (int, string) {
	w.t.Helper()
	for _, k := range configVars {
		w.t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		w.t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := w.execute(context.Background(), args, &stdout, &stderr)
	w.t.Logf("pgoffsite %s → exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	w.assertNoSecrets(stdout.String() + stderr.String())
	return code, stdout.String()
}

// runEnv runs `pgoffsite args...` with exactly env set; it returns the exit status, stdout and
// stderr.
func runEnv(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := testRun(context.Background(), args, &stdout, &stderr)
	t.Logf("pgoffsite %s → exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return code, stdout.String(), stderr.String()
}

// TestStatusEveryDestination: by default every destination of ARCHIVE_URL, each target at each
// one entry (env:VAR targets too); --destination picks one; bad input is a usage error naming
// what to fix, before anything is read.
func TestStatusEveryDestination(t *testing.T) {
	dump, err := os.ReadFile("../archive/testdata/shop.dump")
	if err != nil {
		t.Fatal(err)
	}
	first, second := t.TempDir(), t.TempDir()
	src := &plannedSource{}
	now := time.Now().UTC()
	for dir, app := range map[string]string{first: "shop", second: "LEGACY_URL"} {
		st, err := filestore.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		job := &archive.Job{Source: src, Destinations: []archive.Destination{{Name: "file://" + dir, Store: st}}, Version: "test", Log: zerolog.Nop()}
		for ago := 2; ago >= 0; ago-- {
			*src = plannedSource{app: app, db: map[string]string{"LEGACY_URL": "LEGACY_URL"}[app], backup: fmt.Sprintf("b%03d", 10-ago), at: now.Add(-time.Duration(ago)*24*time.Hour - 2*time.Minute).Truncate(time.Second), dump: dump}
			if res := job.Archive(context.Background(), archive.Target{App: app, Database: "DATABASE"}); res.Err != nil {
				t.Fatal(res.Err)
			}
		}
	}
	const secret = "legacy-pa55word-91c"
	env := map[string]string{"BACKUP_TARGETS": "shop env:LEGACY_URL", "ARCHIVE_URL": "file://" + first + " file://" + second,
		"LEGACY_URL": "postgres://app:" + secret + "@127.0.0.1:1/legacy"}

	code, out, errs := runEnv(t, env, "status", "--json")
	if code != ExitFailed || strings.Contains(out+errs, secret) {
		t.Fatalf("exit %d (want 1: each target lacks archives at one destination), or the secret is in the output", code)
	}
	var rep struct {
		Targets []struct {
			App, Database, Destination string
			Problems                   []string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rep.Targets {
		got = append(got, fmt.Sprintf("%s:%s@%s ok=%v", e.App, e.Database, strings.TrimPrefix(e.Destination, "file://"), len(e.Problems) == 0))
	}
	want := []string{"shop:DATABASE_URL@" + first + " ok=true", "env:LEGACY_URL@" + first + " ok=false",
		"shop:DATABASE_URL@" + second + " ok=false", "env:LEGACY_URL@" + second + " ok=true"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	env["BACKUP_TARGETS"] = "shop"
	if code, out, _ := runEnv(t, env, "status", "--destination", "1"); code != ExitOK || strings.Count(out, " at file://") != 1 {
		t.Errorf("--destination 1: exit %d", code)
	}
	env["BACKUP_TARGETS"] = "env:LEGACY_URL"
	if code, _, _ := runEnv(t, env, "status", "--destination", "file://"+second); code != ExitOK {
		t.Errorf("--destination file://%s: exit %d", second, code)
	}
	// A verification that fails is recorded too (file:// destination), and status shows it.
	var dumps []string
	filepath.WalkDir(first, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".dump") {
			dumps = append(dumps, p)
		}
		return nil
	})
	if len(dumps) != 3 {
		t.Fatalf("dumps %v", dumps)
	}
	newestDump := dumps[len(dumps)-1] // the keys sort by time
	blob, err := os.ReadFile(newestDump)
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)/2] ^= 0xff
	if err := os.WriteFile(newestDump, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	venv := withEnv(env, "BACKUP_TARGETS", "shop", "ARCHIVE_URL", "file://"+first)
	if code, _, _ := runEnv(t, venv, "verify"); code != ExitFailed {
		t.Fatalf("verify of a damaged archive: exit %d", code)
	}
	rec, err := os.ReadFile(strings.TrimSuffix(newestDump, ".dump") + catalog.VerifiedSuffix)
	if err != nil || !strings.Contains(string(rec), `"passed": false`) || !strings.Contains(string(rec), "SHA-256") {
		t.Fatalf("record of the failed verification: %s %v", rec, err)
	}
	code, out, _ = runEnv(t, venv, "status")
	if code != ExitOK || !strings.Contains(out, "##X  ") || !strings.Contains(out, "warning    the newest verification (b010") {
		t.Errorf("status after a failed verification: exit %d\n%s", code, out)
	}

	for _, tt := range []struct {
		args []string
		set  map[string]string
		want string
	}{
		{[]string{"status", "--destination", "3"}, nil, "--destination 3: ARCHIVE_URL names 2 destination(s)"},
		{[]string{"status", "--html", filepath.Join(first, "no", "such", "report.html")}, nil, "the directory " + filepath.Join(first, "no", "such") + " does not exist"},
		{[]string{"status", "extra"}, nil, "takes no arguments"},
		{[]string{"status"}, map[string]string{"STATUS_MAX_SHRINK": "half"}, "STATUS_MAX_SHRINK"},
		{[]string{"status"}, map[string]string{"BACKUP_MAX_AGE": "1 day"}, "BACKUP_MAX_AGE"},
	} {
		e := withEnv(env)
		for k, v := range tt.set {
			e[k] = v
		}
		if code, _, errs := runEnv(t, e, tt.args...); code != ExitUsage || !strings.Contains(errs, tt.want) {
			t.Errorf("%q %v: exit %d, want 2 and %q", tt.args, tt.set, code, tt.want)
		}
	}
}

// A store that refuses connections for the whole run: exit 1 soon, naming the target and the
// destination, no secret in the output.
func TestStatusStoreDown(t *testing.T) {
	port := testenv.FreePort(t)
	env := map[string]string{"BACKUP_TARGETS": "shop", "ARCHIVE_URL": "s3://archive-bucket/pg", "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "AKIASTATUSTEST", "AWS_SECRET_ACCESS_KEY": "status-secret-key-0123456789",
		"AWS_ENDPOINT_URL_S3": fmt.Sprintf("http://127.0.0.1:%d", port), "S3_FORCE_PATH_STYLE": "true"}
	start := time.Now()
	code, out, errs := runEnv(t, env, "status")
	if code != ExitFailed || !strings.Contains(out, "PROBLEM    cannot list the archives of shop:DATABASE_URL at s3://archive-bucket/pg") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if strings.Contains(out+errs, "status-secret-key") || strings.Contains(out, "list-type=") {
		t.Error("the secret key is in the output")
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("took %s", d)
	}
}
