package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
	"github.com/pgoffsite/pgoffsite/internal/verify/settest"
)

// --- restore --jobs N: a set (a parallel dump) restored in N sessions from MinIO. ---

const jobsSetKey = "shop/DATABASE/2026/11/02/shop-DATABASE-p001-20261102T030000Z.dump"

// bucketPut writes a set's objects into the world's bucket, under ARCHIVE_URL's prefix.
type bucketPut struct{ w *world }

func (p bucketPut) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, err = p.w.s3().PutObject(ctx, &s3.PutObjectInput{Bucket: &p.w.bucket, Key: aws.String("pgbackups/" + obj.Key), Body: bytes.NewReader(b)})
	return err
}

// storedSet makes a database of settest.Schema (with more orders), dumps it as a set into the
// world's bucket, and returns the source database's name.
func (w *world) storedSet(moreOrders int) string {
	w.t.Helper()
	name, dsn := w.pg.CreateDB(w.t, "set_src")
	w.pg.Exec(w.t, name, settest.Schema)
	if moreOrders > 0 {
		w.pg.Exec(w.t, name, "INSERT INTO orders (customer_id, note) SELECT 1 + g % 200, md5(g::text) || md5((-g)::text) FROM generate_series(1, "+
			strconv.Itoa(moreOrders)+") g")
	}
	settest.Dump(w.t, w.pg, dsn, jobsSetKey, settest.Parts).Store(w.t, bucketPut{w})
	return name
}

func isEmpty(t *testing.T, pg *testenv.Postgres, dsn string) []string {
	t.Helper()
	objs, err := pgrestore.Objects(context.Background(), pgrestore.Options{URL: dsn, PgBinDir: pg.BinDir})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestRestoreJobsFromSet(t *testing.T) {
	w := newWorld(t)
	source := w.storedSet(0)
	want := settest.Fingerprint(t, w.pg, source)
	env := w.restoreEnv()

	for _, jobs := range []string{"2", "4"} {
		name, dsn := w.pg.CreateDB(t, "set_restored")
		code, out := w.run(env, "restore", "--from", jobsSetKey, "--to", dsn, "--jobs", jobs)
		if code != ExitOK || !strings.Contains(out, "a set of 3 streams") || !strings.Contains(out, "restore finished") {
			t.Fatalf("--jobs %s: exit %d", jobs, code)
		}
		if got := settest.Fingerprint(t, w.pg, name); got != want {
			t.Errorf("--jobs %s: the restored database differs from the source:\n--- source\n%s\n--- restored\n%s", jobs, want, got)
		}
	}

	// A database that is not empty: refused before anything of the archive is read.
	busy, busyDSN := w.pg.CreateDB(t, "busy")
	w.pg.Exec(t, busy, `CREATE TABLE sentinel (x int)`)
	code, out := w.run(env, "restore", "--from", jobsSetKey, "--to", busyDSN, "--jobs", "2")
	if code != ExitFailed || !strings.Contains(out, "table public.sentinel") || !strings.Contains(out, "only into an empty database") ||
		!strings.Contains(out, "createdb NEW") || strings.Contains(out, "restore started") {
		t.Errorf("--jobs 2 into a database that is not empty: exit %d", code)
	}
	code, out = w.run(env, "restore", "--from", jobsSetKey, "--to", busyDSN, "--jobs", "2", "--clean", "--confirm", busy)
	if code != ExitFailed || !strings.Contains(out, "drop --clean") || strings.Contains(out, "restore started") {
		t.Errorf("--jobs 2 --clean: exit %d", code)
	}
	// A set's manifest read with --jobs 1 restores it too, in one session at a time.
	one, oneDSN := w.pg.CreateDB(t, "set_one")
	if code, _ := w.run(env, "restore", "--from", jobsSetKey, "--to", oneDSN); code != ExitOK {
		t.Fatalf("--jobs 1: exit %d", code)
	}
	if got := settest.Fingerprint(t, w.pg, one); got != want {
		t.Errorf("--jobs 1: the restored database differs from the source")
	}
	// Heroku restores one URL: a set is refused, saying how to restore it instead.
	code, out = w.run(w.env(""), "restore", "--from", jobsSetKey, "--to", "shop", "--confirm", "shop")
	if code != ExitFailed || !strings.Contains(out, "Heroku restores one URL") || !strings.Contains(out, "--jobs N") {
		t.Errorf("a set into Heroku: exit %d", code)
	}
	// Flag mistakes are usage errors.
	if code, out := w.run(env, "restore", "--from", jobsSetKey, "--to", oneDSN, "--scratch", t.TempDir()); code != ExitUsage || !strings.Contains(out, "--jobs 2 or more") {
		t.Errorf("--scratch without --jobs: exit %d", code)
	}
	if code, _ := w.run(env, "restore", "--from", jobsSetKey, "--to", oneDSN, "--jobs", "0"); code != ExitUsage {
		t.Errorf("--jobs 0: exit %d", code)
	}
}

// An archive of one stream: --jobs alone restores it in one session and says how to get more;
// with --scratch it is staged for pg_restore -j, and the file is gone afterwards.
func TestRestoreJobsOneStream(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 777)
	if code, _ := w.run(w.env("shop"), "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	m, _ := w.manifest("shop", "DATABASE")
	env := w.restoreEnv()

	name, dsn := w.pg.CreateDB(t, "one_stream")
	code, out := w.run(env, "restore", "--from", m.Key, "--to", dsn, "--jobs", "2")
	if code != ExitOK || !strings.Contains(out, "restores in one session whatever --jobs says") || !strings.Contains(out, "PG_DUMP_JOBS") || !strings.Contains(out, "--scratch DIR") {
		t.Errorf("--jobs 2 without --scratch: exit %d", code)
	}
	if n, _ := w.pg.Query(name, "SELECT count(*) FROM orders"); n != "777" {
		t.Errorf("orders: %s", n)
	}

	scratch := t.TempDir()
	name, dsn = w.pg.CreateDB(t, "scratch")
	code, out = w.run(env, "restore", "--from", m.Key, "--to", dsn, "--jobs", "2", "--scratch", scratch)
	if code != ExitOK || !strings.Contains(out, "pg_restore -j 2") || !strings.Contains(out, "staged_bytes="+strconv.Itoa(int(m.Bytes))) || !strings.Contains(out, "was removed") {
		t.Errorf("--jobs 2 --scratch: exit %d", code)
	}
	if n, _ := w.pg.Query(name, "SELECT count(*) FROM orders"); n != "777" {
		t.Errorf("orders: %s", n)
	}
	if files, _ := os.ReadDir(scratch); len(files) != 0 {
		t.Errorf("left in the scratch directory: %v", files)
	}
}

// SIGTERM mid-restore of a set: every session stopped, the database empty again, exit 143
// within 20 s.
func TestRestoreJobsSIGTERM(t *testing.T) {
	w := newWorld(t)
	w.storedSet(300000)
	x := testenv.StartToxiproxy(t)
	proxy := x.Proxy(t, strings.TrimPrefix(w.minio.Endpoint, "http://"))
	proxy.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": 150}) // KB/s: half a minute for the data
	env := w.restoreEnv()
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	name, dsn := w.pg.CreateDB(t, "set_sigterm")
	cmd, out := startBinary(t, env, "restore", "--from", jobsSetKey, "--to", dsn, "--jobs", "2")
	// Stop it once the schema is there and the data is arriving.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n, _ := w.pg.Query(name, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %'"); n != "" && n != "0" {
			break
		}
	}
	if len(isEmpty(t, w.pg, dsn)) == 0 {
		t.Fatalf("nothing was restored before the SIGTERM:\n%s", out.String())
	}
	w.terminate(cmd, out)
	if objs := isEmpty(t, w.pg, dsn); len(objs) > 0 {
		t.Errorf("the database is not empty after the SIGTERM: %v", objs)
	}
	if !strings.Contains(out.String(), "empty again") {
		t.Errorf("the log does not say the database was emptied")
	}
}

// A drill of a set: the newest archive of the target is a set, restored with --jobs 2 into the
// throwaway add-on, counted and checked.
func TestDrillSet(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	key := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "p001", At: time.Now().Add(time.Minute)})
	name, dsn := w.pg.CreateDB(t, "set_src")
	w.pg.Exec(t, name, settest.Schema)
	settest.Dump(t, w.pg, dsn, key, settest.Parts).Store(t, bucketPut{w})
	env["DRILL_CHECKS"] = "select count(*) = 5000 from orders"
	code, out := w.run(env, "drill", "--jobs", "2")
	if code != ExitOK || !strings.Contains(out, key) || !strings.Contains(out, "rows=8800") || !strings.Contains(out, "drill database deleted") {
		t.Fatalf("drill of a set: exit %d", code)
	}
	if code, out := w.run(env, "drill", "--jobs", "0"); code != ExitUsage || !strings.Contains(out, "--jobs 0") {
		t.Errorf("drill --jobs 0: exit %d", code)
	}
}
