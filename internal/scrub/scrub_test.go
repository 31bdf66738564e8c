package scrub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestScrub(t *testing.T) {
	const key = "hrku-0f8c2b7d-4a51-4c1e-9d3a"
	tests := []struct {
		name, in string
		leaks    []string // must be gone
		keeps    []string // must stay
	}{
		{"registered secret", "heroku: 401 for key " + key, []string{key}, []string{"heroku: 401 for key " + Mask}},
		{"secret inside another", "k=" + key + "-longer", []string{key}, []string{"k=" + Mask}},
		{"signed URL query", "GET https://b.s3.amazonaws.com/x.dump?X-Amz-Algorithm=A&X-Amz-Signature=abc123&y=z failed",
			[]string{"abc123", "y=z", "X-Amz-Algorithm=A"}, []string{"https://b.s3.amazonaws.com/x.dump?" + Mask, " failed"}},
		{"signing parameter alone", `param X-Amz-Security-Token=FQoGZX&X-Amz-Credential=AKIA/x`, []string{"FQoGZX", "AKIA/x"},
			[]string{"X-Amz-Security-Token=" + Mask, "X-Amz-Credential=" + Mask}},
		{"database URL", "dial postgres://u1:p4ss/w0rd@h:5432/d: refused", []string{"p4ss", "w0rd"}, []string{"postgres://u1:" + Mask + "@h:5432/d"}},
		{"postgresql URL", "postgresql://user:hunter2@db", []string{"hunter2"}, []string{"postgresql://user:" + Mask + "@db"}},
		{"any URL's password", "s3://AKIA:hunter2pass@acme/x and https://u:pw123@host/", []string{"hunter2pass", "pw123"},
			[]string{"s3://AKIA:" + Mask + "@acme/x", "https://u:" + Mask + "@host/"}},
		{"plain text untouched", "upload finished app=shop bytes=42", nil, []string{"upload finished app=shop bytes=42"}},
		{"URL without query or password untouched", "https://api.heroku.com/apps/shop", nil, []string{"https://api.heroku.com/apps/shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(key).Scrub(tt.in)
			for _, l := range tt.leaks {
				if strings.Contains(got, l) {
					t.Errorf("Scrub(%q) = %q: %q is still there", tt.in, got, l)
				}
			}
			for _, k := range tt.keeps {
				if !strings.Contains(got, k) {
					t.Errorf("Scrub(%q) = %q, want it to hold %q", tt.in, got, k)
				}
			}
			if String(tt.in, key) != got {
				t.Errorf("String and Redactor.Scrub differ")
			}
		})
	}
}

func TestShortAndPaddedSecrets(t *testing.T) {
	r := New("abc", "", "  padded-secret\n")
	if got := r.Scrub("abc is a word"); got != "abc is a word" {
		t.Errorf("a value shorter than %d was scrubbed: %q", MinSecretLen, got)
	}
	if got := r.Scrub("x padded-secret y"); got != "x "+Mask+" y" {
		t.Errorf("a secret registered with spaces around it was not scrubbed: %q", got)
	}
}

func TestNilRedactorAppliesPatterns(t *testing.T) {
	var r *Redactor
	if got := r.Scrub("postgres://u:pw@h/d"); strings.Contains(got, "pw") {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestWrap(t *testing.T) {
	var b bytes.Buffer
	r := &Redactor{}
	w := r.Wrap(&b)
	r.Add("late-added-secret") // registered after Wrap: still scrubbed
	n, err := fmt.Fprint(w, "a late-added-secret b")
	if err != nil || n != len("a late-added-secret b") {
		t.Fatalf("Write = %d, %v; want the input's length", n, err)
	}
	if b.String() != "a "+Mask+" b" {
		t.Errorf("wrapped output %q", b.String())
	}
}

func TestConcurrentAddAndScrub(t *testing.T) {
	r := &Redactor{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() { defer wg.Done(); r.Add(fmt.Sprintf("secret-%06d", i)) }()
		go func() { defer wg.Done(); r.Scrub("secret-000001") }()
	}
	wg.Wait()
	if got := r.Scrub("secret-000003"); got != Mask {
		t.Errorf("Scrub = %q", got)
	}
}

// A URL inside JSON ends at its escaped quote: scrubbing a JSON body keeps it valid JSON.
func TestScrubKeepsJSONValid(t *testing.T) {
	in, _ := json.Marshal(map[string]string{"error": `Put "http://127.0.0.1:9000/b/k.dump?x-id=PutObject&X-Amz-Signature=abc123": refused`})
	out := String(string(in))
	var back map[string]string
	if err := json.Unmarshal([]byte(out), &back); err != nil {
		t.Fatalf("scrubbed JSON is invalid: %v\n%s", err, out)
	}
	if strings.Contains(out, "abc123") || strings.Contains(out, "x-id") {
		t.Errorf("query left in %s", out)
	}
}

// StripURL drops the URL from the message and keeps the error's chain.
func TestStripURL(t *testing.T) {
	cause := errors.New("connection refused")
	err := fmt.Errorf("s3: put object s3://b/k: operation failed: %w", &url.Error{Op: "Put", URL: "http://h/b/k?X-Amz-Signature=s3cr3t", Err: cause})
	got := StripURL(err)
	if want := "s3: put object s3://b/k: operation failed: connection refused"; got.Error() != want {
		t.Errorf("message %q, want %q", got, want)
	}
	var ue *url.Error
	if !errors.Is(got, cause) || !errors.As(got, &ue) {
		t.Error("the chain is lost")
	}
	if StripURL(nil) != nil || StripURL(cause) != cause {
		t.Error("errors without a URL must pass unchanged")
	}
}

// TestValuesKeepsShapes: Values removes the secrets it is given and nothing else, so that text
// pgoffsite writes (a fix naming postgres://user:password@host) is shown as written.
func TestValuesKeepsShapes(t *testing.T) {
	fix := "set it to the database's URL, postgres://user:password@host:port/database, not key-0123456789"
	if got, want := Values(fix, "key-0123456789"), strings.Replace(fix, "key-0123456789", Mask, 1); got != want {
		t.Errorf("Values = %q, want %q", got, want)
	}
	if got := String(fix); !strings.Contains(got, "user:"+Mask+"@") {
		t.Errorf("String keeps the shape rules: %q", got)
	}
}
