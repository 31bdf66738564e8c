package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// Findings of the store's record fail a verification, once each, beside its own error.
func TestWithFindings(t *testing.T) {
	if err := WithFindings(nil, nil); err != nil {
		t.Errorf("nothing found: %v", err)
	}
	err := WithFindings(nil, []string{"the archive was overwritten"})
	if err == nil || !strings.Contains(err.Error(), "does not match its manifest: the archive was overwritten; check who holds the uploader's keys") {
		t.Errorf("a finding alone: %v", err)
	}
	base := errors.New("SHA-256 differs; the archive was overwritten")
	if err := WithFindings(base, []string{"the archive was overwritten"}); err != base {
		t.Errorf("a finding the error names already: %v", err)
	}
	err = WithFindings(base, []string{"written after its manifest"})
	if !errors.Is(err, base) || !strings.HasSuffix(err.Error(), "; and written after its manifest") {
		t.Errorf("a finding beside an error: %v", err)
	}
}

// An archive moved to Glacier gets the command that brings it back, with its full key.
func TestGlacierExplain(t *testing.T) {
	g := Glacier{Bucket: "archive", Prefix: "pg"}
	other := errors.New("no such key")
	if err := g.Explain(other, "k.dump"); err != other {
		t.Errorf("another error changed: %v", err)
	}
	err := g.Explain(fmt.Errorf("open: %w", s3store.ErrArchived), "shop/k.dump")
	if !errors.Is(err, s3store.ErrArchived) || !strings.Contains(err.Error(), "--bucket archive --key pg/shop/k.dump ") {
		t.Errorf("an archived archive: %v", err)
	}
}

type recorder struct{ keys []string }

func (r *recorder) Replace(_ context.Context, key string, body []byte) error {
	r.keys = append(r.keys, key)
	return nil
}

// Run verifies each target's newest archive, records the verification, and fails a target
// without archives with what the catalog said.
func TestRun(t *testing.T) {
	s := newStore(t)
	dump, _ := realDump(t)
	archived(t, s, dump, nil)
	keys, err := catalog.Latest(context.Background(), s, "shop", "DATABASE")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	rec := &recorder{}
	d := Deps{Source: s, Records: rec, Log: zerolog.New(&logs), Scrub: func(s string) string { return s }}
	results := Run(context.Background(), d, RunOptions{Targets: []archive.Target{
		{App: "shop", Database: "DATABASE"}, {App: "blog", Database: "DATABASE_URL"}}})
	if len(results) != 2 || results[0].Err != nil || results[0].Key != keys || results[1].Err == nil {
		t.Fatalf("results %+v\n%s", results, logs.String())
	}
	if len(rec.keys) != 1 || rec.keys[0] != catalog.VerifiedKey(keys) {
		t.Errorf("records %v", rec.keys)
	}
	if !strings.Contains(logs.String(), "verified: size, SHA-256 and structure match the manifest") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
