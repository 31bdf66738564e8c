package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
)

func (w *world) put(key string, body []byte) {
	w.t.Helper()
	if _, err := w.s3().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &w.bucket, Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		w.t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 4321)
	env := w.env("shop")
	if code, _ := w.run(env, "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	m, dump := w.manifest("shop", "DATABASE")
	counts := map[string]int64{}
	for _, tb := range m.Structure.Tables {
		counts[tb.Name] = tb.Rows
	}
	if counts["orders"] != 4321 || counts["customers"] != 100 {
		t.Fatalf("manifest row counts %v, want orders 4321 and customers 100", counts)
	}

	// Verification needs no Heroku key: it reads the archive with read credentials.
	venv := w.env("shop")
	delete(venv, "HEROKU_API_KEY")
	code, out := w.run(venv, "verify")
	if code != ExitOK || !strings.Contains(out, "verified: size, SHA-256 and structure match the manifest") || !strings.Contains(out, "rows=4421") {
		t.Fatalf("verify of a good archive: exit %d", code)
	}

	// Restore into a scratch database and count.
	_, scratch := w.pg.CreateDB(t, "scratch")
	code, out = w.run(venv, "verify", "--restore-to", scratch)
	if code != ExitOK || !strings.Contains(out, "restored and counted") {
		t.Fatalf("verify --restore-to: exit %d", code)
	}
	if got, err := w.pg.Query(scratchName(scratch), "SELECT count(*) FROM orders"); err != nil || got != "4321" {
		t.Errorf("restored orders: %q %v", got, err)
	}

	key := "pgbackups/" + m.Key
	manifestKey := strings.TrimSuffix(key, ".dump") + ".json"

	// A table the backup checked for framing only: verify decompresses it and says so.
	good := w.object(manifestKey)
	fm := m
	st := *m.Structure
	st.Tables = nil
	for _, tb := range m.Structure.Tables {
		if tb.Name == "orders" {
			tb.Rows, tb.Bytes, tb.FramingOnly = -1, -1, true
		}
		st.Tables = append(st.Tables, tb)
	}
	fm.Structure = &st
	blob, err := json.Marshal(fm)
	if err != nil {
		t.Fatal(err)
	}
	w.put(manifestKey, blob)
	code, out = w.run(venv, "verify")
	if code != ExitOK || !strings.Contains(out, "rows=4421") || !strings.Contains(out, `framing_only_at_backup=["public.orders"]`) {
		t.Errorf("verify of an archive with a framing-only table: exit %d", code)
	}
	w.put(manifestKey, good)
	tests := []struct {
		name   string
		damage func()
		want   string
	}{
		{"byte flipped in a data block", func() {
			b := bytes.Clone(dump)
			b[len(b)-200] ^= 0x40
			w.put(key, b)
		}, "SHA-256"},
		{"truncated archive", func() { w.put(key, dump[:len(dump)/2]) }, "the manifest says"},
		{"swapped manifest", func() {
			other := bytes.Replace(w.object(manifestKey), []byte(m.SHA256), []byte(strings.Repeat("0", 64)), 1)
			w.put(key, dump)
			w.put(manifestKey, other)
		}, "differs from the manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.damage()
			code, out := w.run(venv, "verify")
			if code != ExitFailed || !strings.Contains(out, "summary: FAILED") || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d; output lacks %q", code, tt.want)
			}
		})
	}
}

// An archive that lifecycle rules moved to Glacier cannot be read until restored: S3 answers
// InvalidObjectState, and verify says which command restores it. MinIO reaches that state only
// after days, so a proxy in front of it answers for the dump as S3 does.
func TestVerifyArchivedInGlacier(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 10)
	if code, _ := w.run(w.env("shop"), "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	m, _ := w.manifest("shop", "DATABASE")
	target, err := url.Parse(w.minio.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	glacier := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, ".dump") {
			rw.Header().Set("Content-Type", "application/xml")
			rw.WriteHeader(http.StatusForbidden)
			rw.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object's storage class</Message><StorageClass>GLACIER</StorageClass><RequestId>R1</RequestId><HostId>H1</HostId></Error>`))
			return
		}
		proxy.ServeHTTP(rw, r) // the Host header is kept, so MinIO's signature check still passes
	}))
	defer glacier.Close()

	venv := w.env("shop")
	delete(venv, "HEROKU_API_KEY")
	venv["AWS_ENDPOINT_URL_S3"] = glacier.URL
	code, out := w.run(venv, "verify")
	want := "aws s3api restore-object --bucket " + w.bucket + " --key pgbackups/" + m.Key
	if code != ExitFailed || !strings.Contains(out, "summary: FAILED") || !strings.Contains(out, want) {
		t.Errorf("exit %d; output lacks %q:\n%s", code, want, out)
	}
}

// scratchName is the database name of a test DSN.
func scratchName(dsn string) string {
	name := dsn[strings.LastIndex(dsn, "/")+1:]
	return strings.SplitN(name, "?", 2)[0]
}

// With several archives of a database, verify checks the newest, however BACKUP_TARGETS names
// the database: an attachment name with or without _URL, an add-on name, other-app::NAME.
func TestVerifyNewestArchiveByEveryName(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.sim.AddApp("warehouse")
	w.database("shop", "HEROKU_POSTGRESQL_PINK", 10)
	w.database("warehouse", "DATABASE", 20)
	env := w.env("shop:HEROKU_POSTGRESQL_PINK shop:warehouse::DATABASE_URL")
	for range 2 {
		if code, _ := w.run(env, "backup"); code != ExitOK {
			t.Fatal("backup failed")
		}
	}
	// The newest backup of each database, from the manifests the job wrote.
	newest := map[string]catalog.Manifest{} // by the key's database segment
	for _, k := range w.keys() {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		var m catalog.Manifest
		if err := json.Unmarshal(w.object(k), &m); err != nil {
			t.Fatal(err)
		}
		if old, ok := newest[m.Database]; !ok || m.BackupFinishedAt.After(old.BackupFinishedAt) ||
			m.BackupFinishedAt.Equal(old.BackupFinishedAt) && m.Backup > old.Backup {
			newest[m.Database] = m
		}
	}
	pink, wh := newest["HEROKU_POSTGRESQL_PINK"], newest["DATABASE"]
	if pink.Addon == "" || wh.BillingApp != "warehouse" || pink.Backup == wh.Backup && pink.BillingApp == wh.BillingApp {
		t.Fatalf("archives: %+v", newest)
	}

	venv := w.env("shop:HEROKU_POSTGRESQL_PINK_URL shop:" + pink.Addon + " shop:warehouse::DATABASE_URL shop:warehouse::" + wh.Addon)
	delete(venv, "HEROKU_API_KEY")
	code, out := w.run(venv, "verify")
	if code != ExitOK {
		t.Fatalf("verify: exit %d", code)
	}
	want := map[string][]string{ // database as named → its newest backup and rows (customers' 100 + orders')
		"HEROKU_POSTGRESQL_PINK_URL": {pink.Backup, "110"},
		pink.Addon:                   {pink.Backup, "110"},
		"warehouse::DATABASE_URL":    {wh.Backup, "120"},
		"warehouse::" + wh.Addon:     {wh.Backup, "120"},
	}
	for db, bk := range want {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "verified:") && strings.Contains(line, " database="+db+" ") {
				found = true
				if !strings.Contains(line, " backup="+bk[0]+" ") || !strings.Contains(line, " rows="+bk[1]+" ") {
					t.Errorf("%s: verified another archive than its newest, %s with %s rows: %s", db, bk[0], bk[1], line)
				}
			}
		}
		if !found {
			t.Errorf("%s: no archive verified", db)
		}
	}
}
