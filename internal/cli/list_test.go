package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/listing"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// pgDump is a real custom-format dump of a database of w.shop with rows orders.
func (w *world) pgDump(rows int) []byte {
	w.t.Helper()
	_, url := w.shop(rows)
	out, err := exec.Command(w.pg.Bin("pg_dump"), "--format=custom", "--dbname="+url).Output()
	if err != nil {
		w.t.Fatalf("pg_dump: %v", err)
	}
	return out
}

// Three archives made by the backup job with the uploader's keys, days apart, each of a database
// with another number of orders: list, with the reader's keys, shows them newest first with
// their columns, and each --from form restores or verifies the archive it names.
func TestListAndFrom(t *testing.T) {
	k := newKeyed(t)
	w := k.w
	now := time.Now().UTC()
	rows := map[string]int{"b040": 140, "b041": 141, "b042": 142}
	ats := map[string]time.Time{"b040": now.Add(-50 * time.Hour), "b041": now.Add(-26 * time.Hour), "b042": now.Add(-2 * time.Hour)}
	keys := map[string]string{}
	for _, b := range []string{"b040", "b041", "b042"} {
		k.dump = w.pgDump(rows[b])
		keys[b] = k.archive(b, ats[b])
	}
	date := func(b string) string { return ats[b].Format("2006-01-02") }
	env := withEnv(k.readerEnv) // BACKUP_TARGETS=shop for verify; restore --to postgres:// reads no Heroku key

	// verify --from TARGET@day checks that day's archive and records it beside it.
	code, out := w.run(env, "verify", "--from", "shop:DATABASE_URL@"+date("b041"))
	if code != ExitOK || !strings.Contains(out, "key="+keys["b041"]) || !strings.Contains(out, "verified") {
		t.Fatalf("verify --from shop:DATABASE_URL@%s: exit %d", date("b041"), code)
	}
	verifiedOn := time.Now().UTC().Format("2006-01-02")

	code, out = w.run(env, "list")
	if code != ExitOK {
		t.Fatalf("list: exit %d", code)
	}
	i40, i41, i42 := strings.Index(out, keys["b040"]), strings.Index(out, keys["b041"]), strings.Index(out, keys["b042"])
	if i42 < 0 || i41 < i42 || i40 < i41 {
		t.Errorf("list is not newest first: b042 at %d, b041 at %d, b040 at %d", i42, i41, i40)
	}
	if row := line(out, keys["b041"]); !strings.Contains(row, "passed "+verifiedOn) || !strings.Contains(row, "shop:DATABASE") {
		t.Errorf("b041's row: %q", row)
	}
	if row := line(out, keys["b042"]); !strings.Contains(row, "never") || !strings.Contains(row, ats["b042"].Format("2006-01-02 15:04")) {
		t.Errorf("b042's row: %q", row)
	}

	code, out = w.run(env, "list", "shop:DATABASE_URL", "--json")
	var rep listing.Report
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); code != ExitOK || err != nil || len(rep.Archives) != 3 {
		t.Fatalf("list --json: exit %d, %v, %+v", code, err, rep)
	}
	for i, b := range []string{"b042", "b041", "b040"} {
		a := rep.Archives[i]
		if a.Key != keys[b] || a.Backup != b || !a.OK() || a.Encrypted || a.Bytes == 0 || !a.FinishedAt.Equal(ats[b].Truncate(time.Second)) {
			t.Errorf("archive %d: %+v, want %s", i, a, b)
		}
	}
	if v := rep.Archives[1].Verified; !v.Trusted() || !v.Passed {
		t.Errorf("b041's verification: %+v", v)
	}

	// Each --from form restores the archive it names: its own number of orders.
	location := "s3://" + w.bucket + "/pgbackups/" + keys["b040"]
	for from, b := range map[string]string{"latest": "b042", "shop:DATABASE@" + date("b041"): "b041", location: "b040", keys["b041"]: "b041"} {
		name, dsn := w.pg.CreateDB(t, "from")
		if code, _ := w.run(env, "restore", "--from", from, "--to", dsn); code != ExitOK {
			t.Errorf("restore --from %s: exit %d", from, code)
			continue
		}
		if got, err := w.pg.Query(name, "SELECT count(*) FROM orders"); err != nil || got != map[string]string{"b040": "140", "b041": "141", "b042": "142"}[b] {
			t.Errorf("restore --from %s: orders %q %v, want %s's", from, got, err, b)
		}
	}
	_, dsn := w.pg.CreateDB(t, "nothing")
	for from, want := range map[string]string{
		"shop:DATABASE@2001-02-03":         "holds no archive of that day (2001-02-03, RETENTION_TIMEZONE's days); the nearest days with one: --from shop:DATABASE@" + date("b040"),
		"s3://elsewhere/x/" + keys["b040"]: "is at none of ARCHIVE_URL's destinations (1 s3://" + w.bucket + "/pgbackups)",
		"shop@yesterday":                   "is none of latest",
	} {
		if code, out := w.run(env, "restore", "--from", from, "--to", dsn); code != ExitUsage || !strings.Contains(out, want) {
			t.Errorf("restore --from %s: exit %d, want 2 and %q", from, code, want)
		}
	}
}

// What the uploader's keys can write into the bucket is shown for what it is: a newer dump
// without a manifest, a manifest without its dump, a verification record that claims a check
// made before the dump existed. --from latest passes over the dump without a manifest, saying so.
func TestListHostileBucket(t *testing.T) {
	k := newKeyed(t)
	w := k.w
	now := time.Now().UTC()
	good := k.archive("b040", now.Add(-3*time.Hour))
	lone := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b041", At: now.Add(-time.Hour)})
	k.put(lone, k.dump)
	orphan := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b039", At: now.Add(-30 * time.Hour)})
	blob, _ := json.Marshal(catalog.Manifest{ManifestVersion: 1, App: "shop", Database: "DATABASE", Backup: "b039", Bytes: 5, Key: orphan})
	k.put(catalog.ManifestKey(orphan), blob)
	forged, _ := json.Marshal(catalog.Verification{Key: good, Backup: "b040", VerifiedAt: now.Add(-4 * time.Hour), Passed: true, Restored: true})
	k.put(catalog.VerifiedKey(good), forged)

	code, out := w.run(k.readerEnv, "list")
	if code != ExitOK {
		t.Fatalf("list: exit %d", code)
	}
	for _, want := range []string{
		"PROBLEM    " + lone + " has no manifest beside it",
		"PROBLEM    " + catalog.ManifestKey(orphan) + " is a manifest without its dump",
		"PROBLEM    the verification record beside " + good + " says it was made",
		"before the store held the dump",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	for key, want := range map[string]string{lone: "NOT AN ARCHIVE", orphan: "NOT AN ARCHIVE", good: "record untrusted"} {
		if row := line(out, key); !strings.Contains(row, want) || strings.Contains(row, "passed") {
			t.Errorf("row of %s: %q, want %q", key, row, want)
		}
	}

	code, out = w.run(k.readerEnv, "verify", "--from", "latest")
	if code != ExitOK || !strings.Contains(out, "key="+good) || !strings.Contains(out, "a newer dump is not an archive to trust") {
		t.Errorf("verify --from latest: exit %d", code)
	}
}

// line is the line of out that names key in a row of the table.
func line(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, key) {
			return l
		}
	}
	return ""
}

// restore-app takes a bundle by app and day: APP@latest and APP@YYYY-MM-DD resolve to the
// release.json the bundle wrote, and a day without one names the day that has one.
func TestRestoreAppFromByDay(t *testing.T) {
	w := newWorld(t)
	app := newBundleApp(t, w)
	key := testenv.NewAgeKey(t)
	priv, pub, _ := signingKey(t)
	env := withEnv(w.env("shop"), "ARCHIVE_RECIPIENTS", key.Recipient, "BUNDLE_SIGNING_KEY", priv)
	if code, _ := w.run(env, "bundle"); code != ExitOK {
		t.Fatalf("bundle: exit %d", code)
	}
	relKey := fmt.Sprintf("shop/_app/v%d/release.json", app.release)
	renv := withEnv(w.env("shop"), "AGE_IDENTITY", key.Text, "BUNDLE_VERIFY_KEY", pub)
	today := time.Now().UTC().Format("2006-01-02")
	if code, out := w.run(renv, "restore-app", "--from", "shop@2001-02-03", "--to", "shop-restored", "--confirm", "shop-restored"); code != ExitUsage ||
		!strings.Contains(out, "the nearest days with one: --from shop@"+today) {
		t.Errorf("restore-app --from a day without a bundle: exit %d", code)
	}
	code, out := w.run(renv, "restore-app", "--from", "shop@"+today, "--to", "shop-restored", "--confirm", "shop-restored")
	if code != ExitOK || !strings.Contains(out, "key="+relKey) {
		t.Fatalf("restore-app --from shop@%s: exit %d", today, code)
	}
	if st, ok := w.sim.App("shop-restored"); !ok || !bytes.Equal(st.Slug, app.tarball) {
		t.Error("restore-app --from APP@day did not restore the bundle's slug")
	}
}
