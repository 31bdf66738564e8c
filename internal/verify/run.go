package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// Deps are what a verification run works with.
type Deps struct {
	Source Source
	// Records keeps the .verified.json records beside the archives for pgoffsite status; nil
	// when the destination cannot keep them.
	Records store.Recorder
	Log     zerolog.Logger
	// Scrub removes the secrets from what a record says: whoever can read the bucket reads it.
	Scrub func(string) string
	// Glacier names the bucket and prefix of an S3 destination, for the way out of an archive
	// that lifecycle rules moved to Glacier.
	Glacier Glacier
}

// RunOptions say what a verification run checks.
type RunOptions struct {
	Options
	// Key is the one archive to verify; "" verifies the newest archive of each of Targets.
	Key     string
	Targets []archive.Target
}

// Run verifies the newest archive of each target (or the one Key) and records each
// verification beside its archive; it logs one line per verified archive and returns one
// result per archive, for the run's summary and notification.
func Run(ctx context.Context, d Deps, o RunOptions) []archive.Result {
	if o.Key != "" {
		t := archive.Target{App: "-", Database: "-"}
		if info, ok := catalog.ParseKey(o.Key); ok {
			t = archive.Target{App: info.App, Database: info.Database}
		}
		return []archive.Result{check(ctx, d, o.Options, t, o.Key)}
	}
	var results []archive.Result
	for _, t := range o.Targets {
		var k string
		var err error
		if t.Env {
			k, err = LatestEnv(ctx, d.Source, t.Database)
		} else {
			k, err = Latest(ctx, d.Source, t.App, t.Database)
		}
		if err != nil {
			results = append(results, archive.Result{Target: t, Err: err})
			continue
		}
		results = append(results, check(ctx, d, o.Options, t, k))
	}
	return results
}

// check verifies the archive at key, logs what it found and records it.
func check(ctx context.Context, d Deps, o Options, t archive.Target, k string) archive.Result {
	log := d.Log
	begin := time.Now()
	r := archive.Result{Target: t, Key: k, Location: d.Source.Location(k)}
	v := Archive(ctx, d.Source, k, o)
	v.Err = WithFindings(v.Err, v.Findings)
	if v.VersionsErr != nil {
		log.Warn().Str("app", t.App).Str("database", t.Database).Str("location", r.Location).Err(v.VersionsErr).
			Msg("the store's versions of the archive were not compared: an overwrite cannot be seen")
	}
	r.Backup, r.Bytes, r.Err, r.Duration = v.Manifest.Backup, v.Manifest.StoredBytes(), d.Glacier.Explain(v.Err, k), time.Since(begin)
	if r.Err == nil {
		restored := ""
		if v.Restored {
			restored = ", restored and counted"
		}
		ev := log.Info().Str("app", t.App).Str("database", t.Database).Str("backup", r.Backup).Int64("bytes", r.Bytes).
			Int("tables", v.Tables).Int64("rows", v.Rows).Str("location", r.Location)
		if v.Encrypted {
			ev = ev.Bool("encrypted", true).Int64("plaintext_bytes", v.Manifest.PlainBytes())
		}
		if set := v.Manifest.Set; set != nil {
			ev = ev.Int("streams", 1+len(set.Parts))
		}
		if len(v.FramingOnly) > 0 || v.OtherFramingOnly > 0 {
			// The backup could not vouch for this data; this verification has decompressed it.
			ev = ev.Strs("framing_only_at_backup", v.FramingOnly).Int("other_framing_only_at_backup", v.OtherFramingOnly)
		}
		msg := "verified: size, SHA-256 and structure match the manifest"
		if v.Encrypted {
			msg = "verified: decrypted while streaming; size and SHA-256 of the encrypted and the decrypted archive, and the structure, match the manifest"
		}
		ev.Msg(msg + restored)
	}
	Record(ctx, d, k, v, nil)
	return r
}

// WithFindings fails a verification on what the store's record of the archive shows beyond its
// bytes (Result.Findings): an archive overwritten, or written after its manifest, may match a
// manifest that was replaced with it.
func WithFindings(err error, findings []string) error {
	var extra []string
	for _, f := range findings {
		if err == nil || !strings.Contains(err.Error(), f) {
			extra = append(extra, f)
		}
	}
	switch {
	case len(extra) == 0:
		return err
	case err == nil:
		return fmt.Errorf("the store's record of the archive does not match its manifest: %s; check who holds the uploader's keys", strings.Join(extra, "; "))
	}
	return fmt.Errorf("%w; and %s", err, strings.Join(extra, "; "))
}

// Record keeps what the verification found beside the manifest (.verified.json) for pgoffsite
// status. It cannot fail the verification: a destination or credentials that do not allow it
// are a warning. A drill passes what it did beyond the verification; v.Err is then the drill's
// own verdict.
func Record(ctx context.Context, d Deps, key string, v Result, drill *catalog.Drill) {
	info, ok := catalog.ParseKey(key)
	if !ok {
		return
	}
	if d.Records == nil {
		d.Log.Warn().Str("location", d.Source.Location(key)).Msg("this destination cannot keep verification records: pgoffsite status will not show this verification")
		return
	}
	vr := catalog.Verification{Key: key, Backup: v.Manifest.Backup, VerifiedAt: time.Now().UTC(), Passed: v.Err == nil,
		Tables: v.Tables, Rows: v.Rows, Restored: v.Restored, PgoffsiteVersion: version.Version, Drill: drill}
	if vr.Backup == "" {
		vr.Backup = info.Backup
	}
	if v.Err != nil {
		vr.Error = d.Scrub(v.Err.Error())
	}
	body, err := json.MarshalIndent(vr, "", "  ")
	if err == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = d.Records.Replace(rctx, catalog.VerifiedKey(key), body)
	}
	if err != nil {
		d.Log.Warn().Err(err).Str("location", d.Source.Location(catalog.VerifiedKey(key))).
			Msg("cannot record the verification for pgoffsite status (the verification's result is unchanged; the verifier's credentials need the policy of pgoffsite policy --reader)")
	}
}

// Glacier is where an S3 destination keeps its archives: the bucket and the prefix the keys
// are under. It is empty for the other kinds, whose archives never move to Glacier.
type Glacier struct{ Bucket, Prefix string }

// Explain adds the way out to an archive that lifecycle rules moved to Glacier.
func (g Glacier) Explain(err error, key string) error {
	if !errors.Is(err, s3store.ErrArchived) {
		return err
	}
	full := key
	if g.Prefix != "" {
		full = g.Prefix + "/" + key
	}
	return fmt.Errorf("%w: restore it from Glacier first (hours for GLACIER, up to 12 h for DEEP_ARCHIVE): aws s3api restore-object --bucket %s --key %s --restore-request 'Days=3,GlacierJobParameters={Tier=Standard}', then run verify again",
		err, g.Bucket, full)
}
