package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Reader is what the newest-archive query reads of a destination (store.Reader: every kind).
type Reader interface {
	List(ctx context.Context, prefix string) (store.Listing, error)
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Location(key string) string
}

// Latest returns the dump key of the newest archive of database on app, database named as
// BACKUP_TARGETS names it: DATABASE_URL, DATABASE, HEROKU_POSTGRESQL_PINK[_URL], an add-on name,
// or any of them behind other-app::. Newest is by the backup's finish time, which Key writes into
// every key, bounded by when the store wrote the dump (a key named for a day in the future is
// not the newest for ever): one listing orders them all, with no object read per archive, and a dump whose
// manifest is missing still counts (and then fails its verification rather than being passed
// over for an older one, also when an add-on name is matched by the manifests beside it).
// Backups finished in the same second go by transfer number.
//
// The backup job resolves the name with Heroku and files the archive under the attachment Heroku
// answered with (Key); a reader runs without a Heroku key, so it matches the name the way
// Heroku resolves it: an attachment name, with or without _URL, matches the key's database
// segment; an add-on name matches the manifest's addon.
func Latest(ctx context.Context, src Reader, app, database string) (string, error) {
	prefix := app + "/"
	l, err := src.List(ctx, prefix)
	if err != nil {
		return "", fmt.Errorf("list the archives of %s:%s: %w", app, database, err)
	}
	dumps, manifests := newestFirst(l, app)
	segment, addon := KeyNames(database)
	orphans := map[string]string{} // database segment → its newest dump without a manifest
	for _, d := range dumps {
		if d.info.Database == segment {
			return d.key, nil
		}
		if addon == "" {
			continue
		}
		mk := ManifestKey(d.key)
		if !manifests[mk] {
			if _, ok := orphans[d.info.Database]; !ok {
				orphans[d.info.Database] = d.key
			}
			continue
		}
		m, err := readManifest(ctx, src, mk)
		if err != nil {
			// Unreadable, it might be this add-on's newest: stop rather than pick an older one.
			return "", fmt.Errorf("find the newest archive of %s:%s: %w", app, database, err)
		}
		if m.Addon == addon {
			// A newer dump beside it without a manifest is, by where the job filed it, most
			// likely this add-on's newest: take that one, which then fails its verification,
			// rather than an older one.
			if k, ok := orphans[d.info.Database]; ok {
				return k, nil
			}
			return d.key, nil
		}
	}
	return "", noArchive(src, prefix, app, database, dumps)
}

// dump is a dump key in a listing and what the key tells.
type dump struct {
	key  string
	info KeyInfo
}

// newestFirst is app's dumps in l, newest first (their times bounded by the store's clock), and
// the keys of the manifests listed beside them.
func newestFirst(l store.Listing, app string) ([]dump, map[string]bool) {
	var dumps []dump
	manifests := map[string]bool{}
	for _, o := range l.Objects {
		k := o.Key
		if strings.HasSuffix(k, ".json") {
			manifests[k] = true
		} else if info, ok := ParseKey(k); ok && info.App == app {
			info.FinishedAt = storedBy(o, info.FinishedAt)
			dumps = append(dumps, dump{k, info})
		}
	}
	sort.Slice(dumps, func(i, j int) bool {
		a, b := dumps[i].info, dumps[j].info
		if !a.FinishedAt.Equal(b.FinishedAt) {
			return a.FinishedAt.After(b.FinishedAt)
		}
		if a.Num != b.Num {
			return a.Num > b.Num
		}
		return dumps[i].key > dumps[j].key
	})
	return dumps, manifests
}

// noArchive says that no archive of app:database is under prefix, and which databases of app have some.
func noArchive(src Reader, prefix, app, database string, dumps []dump) error {
	var found []string
	for _, d := range dumps {
		if !slices.Contains(found, d.info.Database) {
			found = append(found, d.info.Database)
		}
	}
	if len(found) == 0 {
		return fmt.Errorf("no archive of %s:%s under %s: no archive of %s at all (has the backup run with this ARCHIVE_URL?)",
			app, database, src.Location(prefix), app)
	}
	sort.Strings(found)
	return fmt.Errorf("no archive of %s:%s under %s; %s has archives of %s",
		app, database, src.Location(prefix), app, strings.Join(found, ", "))
}

// LatestEnv returns the dump key of the newest archive of an env:VAR target: the job files
// them under VAR in place of app and database.
func LatestEnv(ctx context.Context, src Reader, variable string) (string, error) {
	l, err := src.List(ctx, variable+"/")
	if err != nil {
		return "", fmt.Errorf("list the archives of env:%s: %w", variable, err)
	}
	var newest string
	var at time.Time
	for _, o := range l.Objects {
		k := o.Key
		info, ok := ParseKey(k)
		if !ok || info.App != variable || info.Database != KeyDatabase(variable) {
			continue
		}
		info.FinishedAt = storedBy(o, info.FinishedAt)
		if newest == "" || info.FinishedAt.After(at) || (info.FinishedAt.Equal(at) && k > newest) {
			newest, at = k, info.FinishedAt
		}
	}
	if newest == "" {
		return "", fmt.Errorf("no archive of env:%s under %s (has the backup run with this ARCHIVE_URL?)", variable, src.Location(variable+"/"))
	}
	return newest, nil
}

// storedBy bounds the finish time a key claims by when the store wrote the dump: a key named
// for a day in the future (anyone with the uploader's keys can choose one) is not the newest.
func storedBy(o store.Info, claimed time.Time) time.Time {
	if !o.Modified.IsZero() && claimed.After(o.Modified) {
		return o.Modified
	}
	return claimed
}

// addonNameRE is the shape of a Heroku add-on name: lowercase, unlike an attachment's.
var addonNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// KeyNames is how a database named as BACKUP_TARGETS names it maps to the archives: the key
// segment its archives are filed under when Heroku resolves it by attachment name, and the
// add-on name it may be instead ("" when it cannot be one), matched against the manifests'
// addon. other-app::NAME names NAME as attached to other-app; the job files it under NAME on
// the app. Latest and pgoffsite status share it.
func KeyNames(database string) (segment, addon string) {
	if _, name, ok := strings.Cut(database, "::"); ok {
		database = name
	}
	segment = KeyDatabase(strings.TrimSuffix(strings.ToUpper(database), "_URL"))
	if addonNameRE.MatchString(database) {
		addon = database
	}
	return segment, addon
}

// ReadManifest reads the manifest beside the dump at key, e.g. to size a restore before it starts.
func ReadManifest(ctx context.Context, src Reader, key string) (Manifest, error) {
	return readManifest(ctx, src, ManifestKey(key))
}

func readManifest(ctx context.Context, src Reader, key string) (Manifest, error) {
	var m Manifest
	return m, readJSON(ctx, src, "manifest", key, &m)
}

// ReadVerification reads the verification record beside the dump at key (VerifiedKey).
func ReadVerification(ctx context.Context, src Reader, key string) (Verification, error) {
	var v Verification
	return v, readJSON(ctx, src, "verification record", VerifiedKey(key), &v)
}

// readJSON reads the small JSON record (what: "manifest") at key.
func readJSON(ctx context.Context, src Reader, what, key string, v any) error {
	body, _, err := src.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("read %s %s: %w", what, src.Location(key), err)
	}
	defer body.Close()
	if err := json.NewDecoder(io.LimitReader(body, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("%s %s is not valid JSON: %w", what, src.Location(key), err)
	}
	return nil
}
