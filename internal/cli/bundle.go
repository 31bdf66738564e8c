package cli

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

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// An app bundle is the app's current release, archived under <app>/_app/v<release>/:
// slug.tgz (the slug as Heroku serves it), config.age (the config values, only encrypted to
// ARCHIVE_RECIPIENTS) and release.json (everything else, written last: it marks the release
// as archived, and a release already archived is not archived again).

// bundleDatabase stands for the app's runtime where results name a database.
const bundleDatabase = "_app"

// BundleRecord is release.json. It holds config var names, never their values.
type BundleRecord struct {
	BundleVersion  int               `json:"bundle_version"`
	App            string            `json:"app"`
	Release        int               `json:"release"`
	ReleaseID      string            `json:"release_id"`
	Description    string            `json:"description"`
	Region         string            `json:"region"`
	Space          string            `json:"space,omitempty"`
	Stack          string            `json:"stack"`
	Buildpacks     []string          `json:"buildpacks"`
	ProcessTypes   map[string]string `json:"process_types"`
	Formation      []heroku.Process  `json:"formation"`
	Addons         []heroku.AddonUse `json:"addons"`
	Domains        []heroku.Domain   `json:"domains"`
	ConfigVarNames []string          `json:"config_var_names"`
	// ConfigValues is where the values are, encrypted; nil when ARCHIVE_RECIPIENTS was not set.
	ConfigValues     *BundleConfig `json:"config_values"`
	Slug             *BundleSlug   `json:"slug"`
	ArchivedAt       time.Time     `json:"archived_at"`
	PgoffsiteVersion string        `json:"pgoffsite_version"`
}

// BundleSlug is the slug the release runs; FromRelease is the release whose bundle holds it (an
// earlier one for a release that changed only config).
type BundleSlug struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	FromRelease int    `json:"from_release"`
	Bytes       int64  `json:"bytes"`
	Checksum    string `json:"checksum"`
	Commit      string `json:"commit,omitempty"`
	Stack       string `json:"stack"`
}

// BundleConfig names the encrypted config values and whom they are encrypted to.
type BundleConfig struct {
	Key        string               `json:"key"`
	Recipients []agecrypt.Recipient `json:"recipients"`
}

func bundleKey(app string, release int, name string) string {
	return fmt.Sprintf("%s/%s/v%d/%s", app, bundleDatabase, release, name)
}

// bundler archives app bundles to the job's destinations.
type bundler struct {
	hk       *heroku.Client
	job      *archive.Job
	download *fetch.Ranged
	red      *logging.Redactor
	log      zerolog.Logger
	warned   bool
}

// bundleApps archives the bundle of each app of targets once, whatever its number of databases.
func (b *bundler) bundleApps(ctx context.Context, targets []archive.Target) []archive.Result {
	var results []archive.Result
	seen := map[string]bool{}
	for _, t := range targets {
		if t.Env || seen[t.App] {
			continue
		}
		seen[t.App] = true
		start := time.Now()
		res := b.bundle(ctx, t.App)
		res.Duration = time.Since(start)
		results = append(results, res)
	}
	return results
}

func (b *bundler) bundle(ctx context.Context, app string) archive.Result {
	log := b.log.With().Str("app", app).Str("database", bundleDatabase).Logger()
	res := archive.Result{Target: archive.Target{App: app, Database: bundleDatabase}}
	rec, values, err := b.read(ctx, app)
	if err != nil {
		res.Err = err
		return res
	}
	res.Backup = fmt.Sprintf("v%d", rec.Release)
	log = log.With().Str("release", res.Backup).Logger()
	if rec.Slug != nil {
		stored, err := b.storeSlug(ctx, app, rec.Slug)
		if err != nil {
			res.Err = err
			return res
		}
		res.Bytes += stored.Bytes
	}
	if b.job.Encrypt != nil {
		plain, err := json.Marshal(values)
		if err != nil {
			res.Err = fmt.Errorf("bundle: config of app=%s: %w", app, err)
			return res
		}
		key := bundleKey(app, rec.Release, "config.age")
		stored, err := b.job.StoreStream(ctx, archive.Stream{Key: key, Body: bytes.NewReader(plain), Size: int64(len(plain)),
			ContentType: "application/octet-stream", Encrypt: b.job.Encrypt})
		if err != nil {
			res.Err = fmt.Errorf("bundle: app=%s release=%s: config values: %w", app, res.Backup, err)
			return res
		}
		res.Bytes += stored.Bytes
		rec.ConfigValues = &BundleConfig{Key: key, Recipients: b.job.Encrypt.Describe()}
	} else if !b.warned {
		b.warned = true
		log.Warn().Str("hint", "set ARCHIVE_RECIPIENTS (age public keys) to archive them encrypted").
			Msg("ARCHIVE_RECIPIENTS is not set: config var values are not archived, only their names")
	}
	blob, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		res.Err = fmt.Errorf("bundle: release.json of app=%s: %w", app, err)
		return res
	}
	res.Key = bundleKey(app, rec.Release, "release.json")
	stored, err := b.job.StoreStream(ctx, archive.Stream{Key: res.Key, Body: bytes.NewReader(blob), Size: int64(len(blob)), ContentType: "application/json"})
	res.Copies, res.AlreadyArchived, res.Bytes = stored.Copies, stored.AlreadyArchived, res.Bytes+stored.Bytes
	for _, c := range res.Copies {
		if c.Err == nil {
			res.Location = c.Location
			break
		}
	}
	if err != nil {
		res.Err = fmt.Errorf("bundle: app=%s release=%s: %w", app, res.Backup, err)
		return res
	}
	if res.AlreadyArchived {
		log.Info().Str("key", res.Key).Msg("app bundle already archived by an earlier run")
	} else {
		log.Info().Str("key", res.Key).Int("config_vars", len(rec.ConfigVarNames)).Msg("app bundle archived")
	}
	return res
}

// read gathers the current release's record and the config values (which go to the redactor
// at once: they are never written anywhere in clear).
func (b *bundler) read(ctx context.Context, app string) (BundleRecord, map[string]string, error) {
	fail := func(err error) (BundleRecord, map[string]string, error) {
		return BundleRecord{}, nil, fmt.Errorf("bundle: app=%s: %w", app, err)
	}
	releases, err := b.hk.Releases(ctx, app, 200)
	if err != nil {
		return fail(err)
	}
	cur := -1
	for i, r := range releases {
		if r.Current {
			cur = i
			break
		}
	}
	if cur < 0 {
		return fail(errors.New("Heroku names no current release"))
	}
	rel := releases[cur]
	info, err := b.hk.AppInfo(ctx, app)
	if err != nil {
		return fail(err)
	}
	vars, err := b.hk.ConfigVars(ctx, app)
	if err != nil {
		return fail(err)
	}
	values := make(map[string]string, len(vars))
	names := make([]string, 0, len(vars))
	for k, v := range vars {
		values[k] = v.Reveal()
		names = append(names, k)
		if len(v.Reveal()) >= 4 {
			b.red.Add(v.Reveal())
		}
	}
	sort.Strings(names)
	rec := BundleRecord{BundleVersion: 1, App: app, Release: rel.Version, ReleaseID: rel.ID, Description: rel.Description,
		Region: info.Region, Space: info.Space, Stack: info.Stack, ConfigVarNames: names,
		ArchivedAt: time.Now().UTC().Truncate(time.Second), PgoffsiteVersion: version.Version}
	if rec.Formation, err = b.hk.Formation(ctx, app); err != nil {
		return fail(err)
	}
	if rec.Buildpacks, err = b.hk.Buildpacks(ctx, app); err != nil {
		return fail(err)
	}
	if rec.Addons, err = b.hk.AddonUses(ctx, app); err != nil {
		return fail(err)
	}
	if rec.Domains, err = b.hk.Domains(ctx, app); err != nil {
		return fail(err)
	}
	// The slug: this release's, filed with the oldest listed release that runs it; for a release
	// without one, that of the newest earlier release with one. Either way one copy per slug.
	slugID, from := rel.SlugID, 0
	for _, r := range releases[cur:] {
		switch {
		case slugID == "" && r.SlugID != "":
			slugID, from = r.SlugID, r.Version
		case slugID != "" && r.SlugID == slugID:
			from = r.Version
		}
	}
	if slugID != "" {
		sl, err := b.hk.Slug(ctx, app, slugID)
		if err != nil {
			return fail(err)
		}
		rec.ProcessTypes = sl.ProcessTypes
		rec.Slug = &BundleSlug{ID: sl.ID, Key: bundleKey(app, from, "slug.tgz"), FromRelease: from, Bytes: sl.Size,
			Checksum: sl.Checksum, Commit: sl.Commit, Stack: sl.Stack}
	}
	return rec, values, nil
}

// storeSlug streams the slug from its blob URL to every destination, checked against the size
// and checksum Heroku gives: a wrong one is never made visible.
func (b *bundler) storeSlug(ctx context.Context, app string, s *BundleSlug) (archive.Stored, error) {
	where := fmt.Sprintf("bundle: app=%s slug %s", app, s.ID)
	sum, ok := strings.CutPrefix(s.Checksum, "SHA256:")
	if !ok {
		return archive.Stored{}, fmt.Errorf("%s: Heroku gives no SHA256 checksum (%q): the slug cannot be checked", where, s.Checksum)
	}
	urlFn := func(ctx context.Context) (string, time.Time, error) {
		sl, err := b.hk.Slug(ctx, app, s.ID)
		if err != nil {
			return "", time.Time{}, err
		}
		b.red.Add(sl.BlobURL)
		return sl.BlobURL, time.Now().Add(50 * time.Minute), nil
	}
	body, size, err := b.download.Open(ctx, urlFn)
	if err != nil {
		return archive.Stored{}, fmt.Errorf("%s: download: %w", where, err)
	}
	defer body.Close()
	if size != s.Bytes {
		return archive.Stored{}, fmt.Errorf("%s: the blob is %d bytes, Heroku says the slug is %d: %w", where, size, s.Bytes, archive.ErrMismatch)
	}
	stored, err := b.job.StoreStream(ctx, archive.Stream{Key: s.Key, Body: body, Size: s.Bytes, SHA256: sum, ContentType: "application/gzip"})
	if err != nil {
		return stored, fmt.Errorf("%s: %w", where, err)
	}
	return stored, nil
}

// newBundler wires a bundler for the run.
func newBundler(cfg config.Config, job *archive.Job, red *logging.Redactor, log zerolog.Logger) *bundler {
	return &bundler{hk: herokuClient(cfg), job: job, red: red, log: log,
		download: &fetch.Ranged{HTTP: downloadClient(), Options: fetch.Options{Concurrency: cfg.Concurrency}}}
}
