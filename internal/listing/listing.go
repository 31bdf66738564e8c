// Package listing finds archives for people: every archive at a destination (or of one target),
// newest first, each held to the store's own record of it and to its verification record by
// catalog's rules, and the one resolver of what restore, verify and restore-app take as --from
// (latest, TARGET@YYYY-MM-DD, a key, a location). The bucket is hostile input: an archive is one
// whose manifest proves it, and anything else listed is shown with the reason, never as an
// archive.
package listing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// UsageError is what was asked that names nothing at the destination (a malformed target or
// --from, no archive that day, an ambiguous target): its message says what to ask instead.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usage(format string, a ...any) error { return &UsageError{msg: fmt.Sprintf(format, a...)} }

// Archive is one dump at the destination as listing sees it.
type Archive struct {
	Key    string `json:"key"` // under the destination: what --from takes
	Target string `json:"target"`
	Backup string `json:"backup"`
	// TakenAt is when the backup was taken (the manifest's backup_created_at); zero when unknown.
	TakenAt time.Time `json:"backup_at"`
	// FinishedAt is when it finished as far as the store vouches for it (catalog.Finished).
	FinishedAt     time.Time `json:"finished_at"`
	Bytes          int64     `json:"bytes"`                     // what the store holds
	PlaintextBytes int64     `json:"plaintext_bytes,omitempty"` // encrypted ones: the dump's own size
	Encrypted      bool      `json:"encrypted"`
	// Parts is how many streams a set (a parallel dump) is stored as, Bytes being their sum;
	// absent for an archive of one stream.
	Parts     int       `json:"parts,omitempty"`
	Retention string    `json:"retention,omitempty"`
	Verified  *Verified `json:"verified"`
	// Problems say why the dump is not an archive to trust (catalog.Judge); empty for a good one.
	Problems []string `json:"problems"`
	// Notes are worth knowing but do not make it untrustworthy (a manifest in Glacier).
	Notes []string `json:"notes,omitempty"`

	info  catalog.KeyInfo
	addon string // the manifest's add-on name
}

// OK tells that the archive's manifest proves it.
func (a Archive) OK() bool { return len(a.Problems) == 0 }

// Verified is the verification record kept beside an archive.
type Verified struct {
	Passed   bool      `json:"passed"`
	At       time.Time `json:"at"`
	Restored bool      `json:"restored"` // restored into a scratch database and counted
	Drill    bool      `json:"drill"`
	Error    string    `json:"error,omitempty"`
	// Problems say why the record is not this archive's (catalog.VerificationProblems): then it
	// is no verdict.
	Problems []string `json:"problems,omitempty"`
}

// Trusted tells that the record is this archive's verdict.
func (v *Verified) Trusted() bool { return v != nil && len(v.Problems) == 0 }

// reads bounds the manifests and records read at once.
const reads = 8

// List returns the archives at src of target (as BACKUP_TARGETS names it: app, app:DATABASE,
// env:VAR; "" for all), newest first by the time the store vouches for. Each dump is judged by
// catalog.Judge and its verification record by catalog.VerificationProblems.
func List(ctx context.Context, src catalog.Reader, target string, now time.Time) ([]Archive, error) {
	t, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	l, err := src.List(ctx, t.prefix())
	if err != nil {
		return nil, fmt.Errorf("list the archives under %s: %w", src.Location(t.prefix()), err)
	}
	var all []*Archive
	for _, o := range l.Objects {
		info, ok := catalog.ParseKey(o.Key)
		if !ok || !t.mayHold(info) {
			continue
		}
		all = append(all, &Archive{Key: o.Key, Target: targetName(info), Backup: info.Backup, info: info,
			Encrypted: catalog.IsEncrypted(o.Key), Problems: []string{}})
	}
	readAll(ctx, src, l, all, now)
	all = append(all, orphanManifests(l, t)...)
	all = append(all, orphanParts(l, t)...)
	out := []Archive{}
	for _, a := range all {
		if t.matches(a) {
			out = append(out, *a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.FinishedAt.Equal(b.FinishedAt) {
			return a.FinishedAt.After(b.FinishedAt)
		}
		if a.info.Num != b.info.Num {
			return a.info.Num > b.info.Num
		}
		return a.Key > b.Key
	})
	return out, nil
}

// readAll reads each archive's manifest and verification record, a few at a time, and judges it.
func readAll(ctx context.Context, src catalog.Reader, l store.Listing, all []*Archive, now time.Time) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, reads)
	for _, a := range all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			read(ctx, src, l, a, now)
		}()
	}
	wg.Wait()
}

func read(ctx context.Context, src catalog.Reader, l store.Listing, a *Archive, now time.Time) {
	rec, _ := catalog.RecordOf(l, a.Key)
	a.Bytes = rec.StoredBytes()
	var m *catalog.Manifest
	if rec.Manifest != nil {
		got, err := catalog.ReadManifest(ctx, src, a.Key)
		switch {
		case errors.Is(err, store.ErrArchived):
			a.Notes = append(a.Notes, fmt.Sprintf("the manifest of %s is in an archive storage class (Glacier): its size and time are the store's, unchecked against the manifest", a.Key))
		case err != nil:
			a.Problems = append(a.Problems, fmt.Sprintf("%s: its manifest cannot be read, so it does not count as an archive: %v", a.Key, err))
		default:
			m = &got
			a.TakenAt, a.Retention, a.addon = got.BackupCreatedAt, got.Retention, got.Addon
			if got.Encryption != nil {
				a.PlaintextBytes = got.PlainBytes()
			}
			if got.Set != nil {
				a.Parts = len(got.Set.Parts) + 1
			}
		}
	}
	finished, problems := catalog.Judge(a.Key, a.info, rec, m, now)
	a.FinishedAt, a.Problems = finished, append(a.Problems, problems...)
	vk := catalog.VerifiedKey(a.Key)
	recorded, ok := l.Find(vk)
	if !ok {
		return
	}
	v, err := catalog.ReadVerification(ctx, src, a.Key)
	if err != nil {
		a.Verified = &Verified{Problems: []string{err.Error()}}
		return
	}
	a.Verified = &Verified{Passed: v.Passed, At: v.VerifiedAt, Restored: v.Restored, Drill: v.Drill != nil, Error: v.Error,
		Problems: catalog.VerificationProblems(a.Key, a.info, rec, v, recorded, now)}
}

// orphanManifests are the manifests in l without their dump: each is listed where its archive
// would be, as what it is.
func orphanManifests(l store.Listing, t target) []*Archive {
	var out []*Archive
	for _, o := range l.Objects {
		base, ok := strings.CutSuffix(o.Key, ".json")
		if !ok || strings.HasSuffix(o.Key, catalog.VerifiedSuffix) {
			continue
		}
		dumpKey := base + ".dump"
		if b, enc := strings.CutSuffix(base, catalog.EncryptedSuffix); enc {
			dumpKey = b + ".dump" + catalog.EncryptedSuffix
		}
		info, ok := catalog.ParseKey(dumpKey)
		if _, listed := l.Find(dumpKey); listed || !ok || !t.mayHold(info) {
			continue
		}
		finished := info.FinishedAt
		if !o.Modified.IsZero() && finished.After(o.Modified) {
			finished = o.Modified
		}
		out = append(out, &Archive{Key: dumpKey, Target: targetName(info), Backup: info.Backup, FinishedAt: finished, info: info,
			Encrypted: catalog.IsEncrypted(dumpKey), Problems: []string{fmt.Sprintf("%s is a manifest without its dump (%s is not there): the dump was removed, or someone else wrote the manifest; there is no archive to restore", o.Key, dumpKey)}})
	}
	return out
}

// orphanParts are the sets whose parts are listed without their dump or manifest
// (catalog.LoneSets): each is listed once, where its archive would be, as what it is.
func orphanParts(l store.Listing, t target) []*Archive {
	var out []*Archive
	for _, dumpKey := range catalog.LoneSets(l) {
		info, _ := catalog.ParseKey(dumpKey)
		if !t.mayHold(info) {
			continue
		}
		out = append(out, &Archive{Key: dumpKey, Target: targetName(info), Backup: info.Backup, FinishedAt: info.FinishedAt, info: info,
			Encrypted: catalog.IsEncrypted(dumpKey), Problems: []string{catalog.LoneParts(dumpKey)}})
	}
	return out
}

// targetName names the target whose archive a key is, as BACKUP_TARGETS names it: app:DATABASE
// (the attachment the key files it under), or env:VAR, which the job files under VAR twice.
func targetName(info catalog.KeyInfo) string {
	if info.Database == catalog.KeyDatabase(info.App) {
		return "env:" + info.App
	}
	return info.App + ":" + info.Database
}

// target is a TARGET as asked: "" is every archive.
type target struct {
	asked, app, segment, addon string
}

func parseTarget(s string) (target, error) {
	t := target{asked: s}
	switch {
	case s == "":
	case strings.HasPrefix(s, "env:"):
		t.app = strings.TrimPrefix(s, "env:")
		t.segment = catalog.KeyDatabase(t.app)
	default:
		app, db, _ := strings.Cut(s, ":")
		t.app = app
		if db != "" {
			t.segment, t.addon = catalog.KeyNames(db)
		}
	}
	if strings.ContainsAny(t.app, "/@ ") || (s != "" && t.app == "") {
		return t, usage("%q is not a target: name one as BACKUP_TARGETS does (app, app:DATABASE or env:VAR), or none for every archive", s)
	}
	return t, nil
}

func (t target) prefix() string {
	if t.app == "" {
		return ""
	}
	return t.app + "/"
}

// mayHold tells a key that may be the target's before its manifest is read (an add-on name is
// matched by the manifests).
func (t target) mayHold(info catalog.KeyInfo) bool {
	return t.app == "" || (info.App == t.app && (t.segment == "" || t.addon != "" || info.Database == t.segment))
}

func (t target) matches(a *Archive) bool {
	return t.segment == "" || a.info.Database == t.segment || (t.addon != "" && a.addon == t.addon)
}
