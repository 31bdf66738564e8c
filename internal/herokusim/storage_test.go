package herokusim

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stored is a simulator holding backups made earlier (no capture needed), under a settable clock.
type stored struct {
	s            *Sim
	clk          *clock
	data         string
	dump         []byte
	num, otherNo int
}

func newStored(t *testing.T) *stored {
	st := &stored{clk: newClock(), dump: fakeDump(100_000)}
	st.s = New(Options{Token: token, Now: st.clk.Now})
	st.s.AddApp("shop")
	addon := st.s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", "postgres://u:p@127.0.0.1:1/d")
	st.num = st.s.AddBackup("shop", addon, dumpFile(t, st.dump))
	st.otherNo = st.s.AddBackup("shop", addon, dumpFile(t, fakeDump(10)))
	_, st.data = Serve(t, st.s)
	return st
}

// get fetches a signed URL without failing on a broken body: the read error is returned.
func get(t *testing.T, method, u string, header ...string) (answer, error) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}, err
}

func mustGet(t *testing.T, method, u string, header ...string) answer {
	t.Helper()
	a, err := get(t, method, u, header...)
	if err != nil {
		t.Fatalf("%s: body: %v", method, err)
	}
	return a
}

// s3Code checks an S3 error answer and returns its code.
func s3Code(t *testing.T, a answer, status int) string {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/xml" {
		t.Fatalf("error Content-Type %q", ct)
	}
	body := string(a.body)
	i, j := strings.Index(body, "<Code>"), strings.Index(body, "</Code>")
	if !strings.Contains(body, "<Error>") || i < 0 || j < i {
		t.Fatalf("not an S3 error document: %q", body)
	}
	return body[i+len("<Code>") : j]
}

func TestSignedURL(t *testing.T) {
	st := newStored(t)
	u, expires := publicURL(t, st.data, "shop", st.num)
	if want := st.clk.Now().Add(time.Hour).Format("2006-01-02 15:04:05 -0700"); expires != want {
		t.Fatalf("expires_at %q, want %q", expires, want)
	}
	pu, _ := url.Parse(u)
	q := pu.Query()
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || q.Get("X-Amz-Expires") != "3600" || q.Get("X-Amz-SignedHeaders") != "host" ||
		q.Get("X-Amz-Credential") == "" || q.Get("X-Amz-Date") != "20260314T092653Z" || len(q.Get("X-Amz-Signature")) != 64 ||
		!strings.HasSuffix(pu.Path, ".dump") {
		t.Fatalf("signed URL shape: path %s query %v", pu.Path, q)
	}

	t.Run("GET serves the backup", func(t *testing.T) {
		a := mustGet(t, "GET", u)
		if a.status != 200 || !bytes.Equal(a.body, st.dump) {
			t.Fatalf("status %d, %d bytes, want %d", a.status, len(a.body), len(st.dump))
		}
		if a.header.Get("Content-Length") != strconv.Itoa(len(st.dump)) || a.header.Get("Accept-Ranges") != "bytes" ||
			!strings.HasPrefix(a.header.Get("ETag"), `"`) || a.header.Get("Last-Modified") == "" {
			t.Fatalf("headers %v", a.header)
		}
	})
	t.Run("HEAD is refused", func(t *testing.T) {
		a := mustGet(t, "HEAD", u)
		if a.status != 403 || a.header.Get("Content-Type") != "application/xml" {
			t.Fatalf("HEAD: %d %q", a.status, a.header.Get("Content-Type"))
		}
		if code := s3Code(t, mustGet(t, "DELETE", u), 403); code != "SignatureDoesNotMatch" {
			t.Fatalf("DELETE: %s", code)
		}
	})
	t.Run("an Authorization header is refused", func(t *testing.T) {
		if code := s3Code(t, mustGet(t, "GET", u, "Authorization", "Bearer "+token), 400); code != "InvalidArgument" {
			t.Fatal(code)
		}
	})
	t.Run("a tampered signature is refused", func(t *testing.T) {
		bad := strings.Replace(u, "X-Amz-Signature=", "X-Amz-Signature=00", 1)
		if code := s3Code(t, mustGet(t, "GET", bad), 403); code != "SignatureDoesNotMatch" {
			t.Fatal(code)
		}
	})
	t.Run("a longer lifetime than signed is refused", func(t *testing.T) {
		bad := strings.Replace(u, "X-Amz-Expires=3600", "X-Amz-Expires=7200", 1)
		if code := s3Code(t, mustGet(t, "GET", bad), 403); code != "SignatureDoesNotMatch" {
			t.Fatal(code)
		}
	})
	t.Run("a signature is bound to its object", func(t *testing.T) {
		other, _ := publicURL(t, st.data, "shop", st.otherNo)
		po, _ := url.Parse(other)
		swapped := *pu
		swapped.Path = po.Path
		if code := s3Code(t, mustGet(t, "GET", swapped.String()), 403); code != "SignatureDoesNotMatch" {
			t.Fatal(code)
		}
	})
	t.Run("no signature is refused", func(t *testing.T) {
		bare := *pu
		bare.RawQuery = ""
		if code := s3Code(t, mustGet(t, "GET", bare.String()), 403); code != "AccessDenied" {
			t.Fatal(code)
		}
	})
	t.Run("the query string is never recorded", func(t *testing.T) {
		for _, r := range st.s.Requests() {
			if r.API == "storage" && strings.Contains(r.Path, "X-Amz") {
				t.Fatalf("recorded %q", r.Path)
			}
		}
	})
	t.Run("expired an hour later", func(t *testing.T) {
		st.clk.Advance(time.Hour)
		if a := mustGet(t, "GET", u, "Range", "bytes=0-4"); a.status != 206 {
			t.Fatalf("at the last second: %d", a.status)
		}
		st.clk.Advance(time.Second)
		a := mustGet(t, "GET", u)
		if code := s3Code(t, a, 403); code != "AccessDenied" || !strings.Contains(string(a.body), "<Message>Request has expired</Message>") {
			t.Fatalf("%s: %s", code, a.body)
		}
	})
}

func TestPublicURLRefusals(t *testing.T) {
	st := newStored(t)
	a := call(t, "POST", st.data+"/client/v11/apps/shop/transfers/99/actions/public-url", token, nil)
	if a.status != 404 || a.obj(t)["id"] != "not_found" {
		t.Fatalf("unknown backup: %d %s", a.status, a.body)
	}
	if d := call(t, "DELETE", st.data+"/client/v11/apps/shop/transfers/"+strconv.Itoa(st.num), token, nil); d.status != 200 || d.obj(t)["deleted_at"] == nil {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	a = call(t, "POST", st.data+"/client/v11/apps/shop/transfers/"+strconv.Itoa(st.num)+"/actions/public-url", token, nil)
	if a.status != 404 || a.obj(t)["id"] != "not_found" {
		t.Fatalf("deleted backup: %d %s", a.status, a.body)
	}
}

func TestRange(t *testing.T) {
	st := newStored(t)
	u, _ := publicURL(t, st.data, "shop", st.num)
	size := len(st.dump)
	for _, c := range []struct {
		rng        string
		from, to   int // inclusive; to < 0: a 200 with the whole object
		contentRng string
	}{
		{"bytes=0-4", 0, 4, "bytes 0-4/100000"},
		{"bytes=99990-", 99990, size - 1, "bytes 99990-99999/100000"},
		{"bytes=-10", size - 10, size - 1, "bytes 99990-99999/100000"},
		{"bytes=50000-200000", 50000, size - 1, "bytes 50000-99999/100000"},
		{"bytes=0-1,5-6", 0, -1, ""}, // S3 serves no multi-range: the whole object
		{"bytes=junk", 0, -1, ""},
	} {
		t.Run(c.rng, func(t *testing.T) {
			a := mustGet(t, "GET", u, "Range", c.rng)
			if c.to < 0 {
				if a.status != 200 || !bytes.Equal(a.body, st.dump) {
					t.Fatalf("status %d, %d bytes", a.status, len(a.body))
				}
				return
			}
			if a.status != 206 || a.header.Get("Content-Range") != c.contentRng || !bytes.Equal(a.body, st.dump[c.from:c.to+1]) ||
				a.header.Get("Content-Length") != strconv.Itoa(c.to-c.from+1) {
				t.Fatalf("status %d, Content-Range %q, Content-Length %q, %d bytes", a.status, a.header.Get("Content-Range"), a.header.Get("Content-Length"), len(a.body))
			}
		})
	}
	for _, rng := range []string{"bytes=100000-", "bytes=200000-200010", "bytes=-0"} {
		t.Run(rng+" is unsatisfiable", func(t *testing.T) {
			a := mustGet(t, "GET", u, "Range", rng)
			if code := s3Code(t, a, 416); code != "InvalidRange" || a.header.Get("Content-Range") != "bytes */100000" {
				t.Fatalf("%s, Content-Range %q", code, a.header.Get("Content-Range"))
			}
		})
	}
}

func TestStorageFaults(t *testing.T) {
	st := newStored(t)
	u, _ := publicURL(t, st.data, "shop", st.num)
	f := st.s.Faults()

	t.Run("cut after N bytes, K times", func(t *testing.T) {
		f.CutStorage(1000, 2)
		for i := range 2 {
			a, err := get(t, "GET", u)
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(a.body) != 1000 || !bytes.Equal(a.body, st.dump[:1000]) {
				t.Fatalf("cut %d: err %v, %d bytes", i, err, len(a.body))
			}
		}
		if a := mustGet(t, "GET", u); !bytes.Equal(a.body, st.dump) {
			t.Fatalf("after the cuts: %d bytes", len(a.body))
		}
		f.CutStorage(10, 1)
		a, err := get(t, "GET", u, "Range", "bytes=500-999")
		if a.status != 206 || !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(a.body, st.dump[500:510]) {
			t.Fatalf("ranged cut: %d, err %v, %d bytes", a.status, err, len(a.body))
		}
	})

	t.Run("an error page served as the object", func(t *testing.T) {
		f.SetStorageErrorPage(true)
		a := mustGet(t, "GET", u, "Range", "bytes=200000-")
		f.SetStorageErrorPage(false)
		if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !bytes.HasPrefix(a.body, []byte("<!DOCTYPE html>")) {
			t.Fatalf("%d %q %q", a.status, a.header.Get("Content-Type"), a.body)
		}
		if a := mustGet(t, "GET", u, "Range", "bytes=0-4"); string(a.body) != "PGDMP" {
			t.Fatalf("after: %q", a.body)
		}
	})

	t.Run("a Content-Length one byte too long", func(t *testing.T) {
		f.SetWrongContentLength(true)
		defer f.SetWrongContentLength(false)
		a, err := get(t, "GET", u)
		if a.status != 200 || a.header.Get("Content-Length") != "100001" || !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(a.body, st.dump) {
			t.Fatalf("%d, Content-Length %q, err %v, %d bytes", a.status, a.header.Get("Content-Length"), err, len(a.body))
		}
		a, err = get(t, "GET", u, "Range", "bytes=0-4")
		if err != nil || a.status != 206 || a.header.Get("Content-Range") != "bytes 0-4/100001" || string(a.body) != "PGDMP" {
			t.Fatalf("first range: %d %q %v %q", a.status, a.header.Get("Content-Range"), err, a.body)
		}
		a, err = get(t, "GET", u, "Range", "bytes=99995-100000")
		if a.status != 206 || a.header.Get("Content-Range") != "bytes 99995-100000/100001" || !errors.Is(err, io.ErrUnexpectedEOF) || len(a.body) != 5 {
			t.Fatalf("last range: %d %q %v %d bytes", a.status, a.header.Get("Content-Range"), err, len(a.body))
		}
		a, err = get(t, "GET", u, "Range", "bytes=100000-")
		if a.status != 206 || a.header.Get("Content-Range") != "bytes 100000-100000/100001" || !errors.Is(err, io.ErrUnexpectedEOF) || len(a.body) != 0 {
			t.Fatalf("the byte that is not there: %d %q %v %d bytes", a.status, a.header.Get("Content-Range"), err, len(a.body))
		}
	})

	t.Run("a short URL lifetime", func(t *testing.T) {
		f.SetURLTTL(2 * time.Second)
		short, expires := publicURL(t, st.data, "shop", st.num)
		f.SetURLTTL(0)
		if want := st.clk.Now().Add(2 * time.Second).Format("2006-01-02 15:04:05 -0700"); expires != want || !strings.Contains(short, "X-Amz-Expires=2&") {
			t.Fatalf("expires_at %q, want %q", expires, want)
		}
		if a := mustGet(t, "GET", short, "Range", "bytes=0-4"); a.status != 206 {
			t.Fatalf("before expiry: %d", a.status)
		}
		st.clk.Advance(3 * time.Second)
		if code := s3Code(t, mustGet(t, "GET", short, "Range", "bytes=5-9"), 403); code != "AccessDenied" {
			t.Fatal(code)
		}
		if _, expires := publicURL(t, st.data, "shop", st.num); expires != st.clk.Now().Add(time.Hour).Format("2006-01-02 15:04:05 -0700") {
			t.Fatalf("after SetURLTTL(0): expires_at %q", expires)
		}
	})
}

func TestAPIFaults(t *testing.T) {
	a := newAccount(t)
	f := a.s.Faults()

	f.FailNext("platform", http.StatusTooManyRequests, 2, 1500*time.Millisecond)
	if d := call(t, "GET", a.data+"/client/v11/apps/shop-core/transfers", token, nil); d.status != 200 {
		t.Fatalf("the Data API took a Platform fault: %d", d.status)
	}
	for i := range 2 {
		ans := call(t, "GET", a.platform+"/account", token, nil)
		if ans.status != 429 || ans.obj(t)["id"] != "rate_limit" || ans.header.Get("Retry-After") != "2" || ans.header.Get("RateLimit-Remaining") != "0" {
			t.Fatalf("answer %d: %d %v %s", i, ans.status, ans.header, ans.body)
		}
	}
	if ans := call(t, "GET", a.platform+"/account", token, nil); ans.status != 200 {
		t.Fatalf("after the faults: %d", ans.status)
	}

	f.FailNextPath("data", "/backups", http.StatusServiceUnavailable, 1, 0)
	if d := call(t, "GET", a.data+"/client/v11/apps/shop-core/transfers", token, nil); d.status != 200 {
		t.Fatalf("another path took the fault: %d", d.status)
	}
	f.FailCaptures(5, "pg_dump: error: simulated")
	ans := call(t, "POST", a.data+"/client/v11/databases/"+a.mainDB+"/backups", token, nil)
	if ans.status != 503 || ans.obj(t)["id"] != "unavailable" {
		t.Fatalf("capture: %d %s", ans.status, ans.body)
	}
	f.Reset()
	f.FailNext("data", http.StatusForbidden, 1, 0)
	if ans := call(t, "GET", a.data+"/client/v11/apps/shop-core/transfers", token, nil); ans.status != 403 || ans.obj(t)["id"] != "forbidden" {
		t.Fatalf("forced 403: %d %s", ans.status, ans.body)
	}
	if len(a.s.faults.failNext) != 0 || a.s.faults.failCaptures != 0 {
		t.Fatalf("Reset left knobs on")
	}
}
