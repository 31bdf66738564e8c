package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// Storer writes an object to every destination (archive.Job).
type Storer interface {
	StoreStream(ctx context.Context, s archive.Stream) (archive.Stored, error)
}

// Redactor learns values that must never be written anywhere in clear.
type Redactor interface {
	Add(secrets ...string)
}

// Writer archives app bundles to the job's destinations.
type Writer struct {
	Heroku *heroku.Client
	Store  Storer
	// Encrypt encrypts the config values (ARCHIVE_RECIPIENTS); nil: only their names are archived.
	Encrypt  archive.Encrypter
	Download *fetch.Ranged
	// Sign signs release.json and the config values (BUNDLE_SIGNING_KEY); zero: unsigned.
	Sign    SigningKey
	Redact  Redactor
	Log     zerolog.Logger
	Version string // pgoffsite's, recorded in release.json
	warned  bool
}

// Apps archives the bundle of each app of targets once, whatever its number of databases.
func (w *Writer) Apps(ctx context.Context, targets []archive.Target) []archive.Result {
	var results []archive.Result
	seen := map[string]bool{}
	for _, t := range targets {
		if t.Env || seen[t.App] {
			continue
		}
		seen[t.App] = true
		if len(seen) == 1 && w.Sign.IsZero() {
			w.Log.Warn().Str("hint", "set BUNDLE_SIGNING_KEY: "+MakeKeyHint).
				Msg("BUNDLE_SIGNING_KEY is not set: bundles are unsigned, and restore-app cannot tell them from bundles written with the uploader's keys")
		}
		start := time.Now()
		res := w.bundle(ctx, t.App)
		res.Duration = time.Since(start)
		results = append(results, res)
	}
	return results
}

func (w *Writer) bundle(ctx context.Context, app string) archive.Result {
	log := w.Log.With().Str("app", app).Str("database", Database).Logger()
	res := archive.Result{Target: archive.Target{App: app, Database: Database}}
	rec, values, err := w.read(ctx, app)
	if err != nil {
		res.Err = err
		return res
	}
	res.Backup = fmt.Sprintf("v%d", rec.Release)
	log = log.With().Str("release", res.Backup).Logger()
	fail := func(what string, err error) archive.Result {
		res.Err = fmt.Errorf("bundle: app=%s release=%s: %s: %w", app, res.Backup, what, err)
		return res
	}
	if rec.Slug != nil {
		stored, err := w.storeSlug(ctx, app, rec.Slug)
		if err != nil {
			res.Err = err
			return res
		}
		res.Bytes += stored.Bytes
	}
	valuesNew := false
	if w.Encrypt != nil {
		rec.ConfigValues = &Config{Key: Key(app, rec.Release, ConfigName), Recipients: w.Encrypt.Describe()}
		plain, err := SealValues(rec, values, w.Sign)
		if err != nil {
			return fail("config values", err)
		}
		stored, err := w.Store.StoreStream(ctx, archive.Stream{Key: rec.ConfigValues.Key, Body: bytes.NewReader(plain), Size: int64(len(plain)),
			ContentType: "application/octet-stream", Encrypt: w.Encrypt})
		if err != nil {
			return fail("config values", err)
		}
		res.Bytes += stored.Bytes
		valuesNew = !stored.AlreadyArchived
	} else if !w.warned {
		w.warned = true
		log.Warn().Str("hint", "set ARCHIVE_RECIPIENTS (age public keys) to archive them encrypted").
			Msg("ARCHIVE_RECIPIENTS is not set: config var values are not archived, only their names")
	}
	if err := rec.Sign(w.Sign); err != nil {
		return fail("sign release.json", err)
	}
	blob, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fail("release.json", err)
	}
	res.Key = Key(app, rec.Release, ReleaseName)
	stored, err := w.Store.StoreStream(ctx, archive.Stream{Key: res.Key, Body: bytes.NewReader(blob), Size: int64(len(blob)), ContentType: "application/json"})
	if err == nil && stored.AlreadyArchived && valuesNew {
		// The release is archived, but not its config values, which were new: an earlier run
		// without ARCHIVE_RECIPIENTS wrote release.json (it is written last, after the values it
		// names). This run completes it with the record naming them.
		res.Key = Key(app, rec.Release, CompletedName)
		stored, err = w.Store.StoreStream(ctx, archive.Stream{Key: res.Key, Body: bytes.NewReader(blob), Size: int64(len(blob)), ContentType: "application/json"})
	}
	res.Copies, res.AlreadyArchived, res.Bytes = stored.Copies, stored.AlreadyArchived, res.Bytes+stored.Bytes
	for _, c := range res.Copies {
		if c.Err == nil {
			res.Location = c.Location
			break
		}
	}
	switch {
	case err != nil:
		res.Err = fmt.Errorf("bundle: app=%s release=%s: %w", app, res.Backup, err)
	case res.AlreadyArchived && valuesNew:
		// Both records were there before this run's values were: not a run's of pgoffsite.
		res.Err = fmt.Errorf("bundle: app=%s release=%s: %s was already there although its config values were not: pgoffsite writes it after them, "+
			"so someone with write access to the bucket wrote it (see the threat model in docs/bucket.md; restore-app refuses it unless it is signed by BUNDLE_SIGNING_KEY)", app, res.Backup, res.Key)
	case res.AlreadyArchived:
		log.Info().Str("key", res.Key).Msg("app bundle already archived by an earlier run")
	case Completes(res.Key):
		log.Info().Str("key", res.Key).Int("config_vars", len(rec.ConfigVarNames)).Bool("signed", rec.Signature != nil).
			Msg("app bundle completed with its config values (archived before ARCHIVE_RECIPIENTS was set)")
	default:
		log.Info().Str("key", res.Key).Int("config_vars", len(rec.ConfigVarNames)).Bool("signed", rec.Signature != nil).Msg("app bundle archived")
	}
	return res
}

// read gathers the current release's record and the config values (which go to the redactor
// at once: they are never written anywhere in clear).
func (w *Writer) read(ctx context.Context, app string) (Record, map[string]string, error) {
	fail := func(err error) (Record, map[string]string, error) {
		return Record{}, nil, fmt.Errorf("bundle: app=%s: %w", app, err)
	}
	info, err := w.Heroku.AppInfo(ctx, app)
	if err != nil {
		return fail(err)
	}
	if err := heroku.NeedsSlugs(info); err != nil {
		return fail(err)
	}
	rel, slugFrom, err := w.current(ctx, app)
	if err != nil {
		return fail(err)
	}
	vars, err := w.Heroku.ConfigVars(ctx, app)
	if err != nil {
		return fail(err)
	}
	values := make(map[string]string, len(vars))
	names := make([]string, 0, len(vars))
	for k, v := range vars {
		values[k] = v.Reveal()
		names = append(names, k)
		if len(v.Reveal()) >= 4 {
			w.Redact.Add(v.Reveal())
		}
	}
	sort.Strings(names)
	rec := Record{BundleVersion: Version, App: app, Release: rel.Version, ReleaseID: rel.ID, Description: rel.Description,
		Region: info.Region, Space: info.Space, Stack: info.Stack, ConfigVarNames: names,
		ArchivedAt: time.Now().UTC().Truncate(time.Second), PgoffsiteVersion: w.Version}
	if rec.Formation, err = w.Heroku.Formation(ctx, app); err != nil {
		return fail(err)
	}
	if rec.Buildpacks, err = w.Heroku.Buildpacks(ctx, app); err != nil {
		return fail(err)
	}
	if rec.Addons, err = w.Heroku.AddonUses(ctx, app); err != nil {
		return fail(err)
	}
	if rec.Domains, err = w.Heroku.Domains(ctx, app); err != nil {
		return fail(err)
	}
	if slugID := slugFrom.SlugID; slugID != "" {
		from := slugFrom.Version
		sl, err := w.Heroku.Slug(ctx, app, slugID)
		if err != nil {
			return fail(err)
		}
		rec.ProcessTypes = sl.ProcessTypes
		rec.Slug = &Slug{ID: sl.ID, Key: Key(app, from, SlugName), FromRelease: from, Bytes: sl.Size,
			Checksum: sl.Checksum, Commit: sl.Commit, Stack: sl.Stack}
	}
	return rec, values, nil
}

// current finds the app's current release (the newest may have failed: Heroku marks the
// current one) and the release its slug is filed with: the oldest of the releases back to the
// one that released it, so that every bundle of a release running that slug names the same key
// and it is stored once, however many config changes came since (Heroku's config releases carry
// the slug they run; one without a slug runs the slug before it). slugFrom is the zero Release
// when no release has a slug.
func (w *Writer) current(ctx context.Context, app string) (cur, slugFrom heroku.Release, err error) {
	found := false
	err = w.Heroku.EveryRelease(ctx, app, func(r heroku.Release) bool {
		switch {
		case !found && !r.Current:
			return true
		case !found:
			found, cur = true, r
		case r.SlugID != "" && slugFrom.SlugID != "" && r.SlugID != slugFrom.SlugID:
			return false // an earlier slug: the run of this one ended
		}
		if r.SlugID != "" {
			slugFrom = r
		}
		return true
	})
	if err == nil && !found {
		err = errors.New("Heroku names no current release")
	}
	return cur, slugFrom, err
}

// storeSlug streams the slug from its blob URL to every destination, checked against the size
// and checksum Heroku gives: a wrong one is never made visible.
func (w *Writer) storeSlug(ctx context.Context, app string, s *Slug) (archive.Stored, error) {
	where := fmt.Sprintf("bundle: app=%s slug %s", app, s.ID)
	sum, ok := strings.CutPrefix(s.Checksum, "SHA256:")
	if !ok {
		return archive.Stored{}, fmt.Errorf("%s: Heroku gives no SHA256 checksum (%q): the slug cannot be checked", where, s.Checksum)
	}
	urlFn := func(ctx context.Context) (string, time.Time, error) {
		sl, err := w.Heroku.Slug(ctx, app, s.ID)
		if err != nil {
			return "", time.Time{}, err
		}
		w.Redact.Add(sl.BlobURL)
		return sl.BlobURL, time.Now().Add(50 * time.Minute), nil
	}
	body, size, err := w.Download.Open(ctx, urlFn)
	if err != nil {
		return archive.Stored{}, fmt.Errorf("%s: download: %w", where, err)
	}
	defer body.Close()
	if size != s.Bytes {
		return archive.Stored{}, fmt.Errorf("%s: the blob is %d bytes, Heroku says the slug is %d: %w", where, size, s.Bytes, archive.ErrMismatch)
	}
	stored, err := w.Store.StoreStream(ctx, archive.Stream{Key: s.Key, Body: body, Size: s.Bytes, SHA256: sum, ContentType: "application/gzip"})
	if err != nil {
		return stored, fmt.Errorf("%s: %w", where, err)
	}
	return stored, nil
}
