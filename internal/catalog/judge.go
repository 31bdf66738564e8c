package catalog

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Judge holds the archive at key to the store's record of it (r): it returns when the archive
// finished as far as the store vouches for it (Finished) and, each in a sentence naming the key,
// why it is not an archive to trust — no manifest beside it, a manifest that does not describe
// what the store holds (Mismatches), a time in the future. m is nil when the manifest could not
// be read; a caller that could not read it says why itself (none is said here).
func Judge(key string, info KeyInfo, r Record, m *Manifest, now time.Time) (finished time.Time, problems []string) {
	if r.Manifest == nil {
		parts := ""
		if len(r.Parts) > 0 {
			parts = fmt.Sprintf(" (nor its %d parts beside it)", len(r.Parts))
		}
		return Finished(r, info.FinishedAt), []string{fmt.Sprintf("%s has no manifest beside it: a backup run stopped between writing the dump and its manifest, or someone else wrote it; it does not count as an archive and cannot be verified: remove it%s with the bucket owner's credentials once you know which", key, parts)}
	}
	if m == nil {
		return Finished(r, info.FinishedAt), nil
	}
	problems = Mismatches(key, r, *m)
	if streams, err := Streams(key, *m); err != nil {
		problems = append(problems, err.Error())
	} else {
		problems = append(problems, PartProblems(r, streams)...)
	}
	claimed := info.FinishedAt
	if !m.BackupFinishedAt.IsZero() {
		claimed = m.BackupFinishedAt
	}
	for _, c := range []struct {
		what string
		at   time.Time
	}{{"its key", info.FinishedAt}, {"its manifest", claimed}} {
		if InFuture(c.at, now) {
			problems = append(problems, fmt.Sprintf("%s: %s says the backup finished %s, in the future (now %s): the key or manifest was not written by a backup run, or the clock that wrote it is wrong",
				key, c.what, c.at.UTC().Format("2006-01-02 15:04 UTC"), now.UTC().Format("2006-01-02 15:04 UTC")))
			break
		}
	}
	return Finished(r, claimed), problems
}

// VerificationProblems says why the verification record v, found beside the dump at key and
// written by the store at recorded, is not that archive's: it names another archive or backup,
// claims a time in the future, or claims a check of the dump before the store held it, or was
// written before it. A record the uploader's keys forged in one of these ways is shown as such,
// never as a verdict.
func VerificationProblems(key string, info KeyInfo, r Record, v Verification, recorded store.Info, now time.Time) []string {
	var out []string
	if v.Key != "" && !strings.HasSuffix(key, v.Key) && !strings.HasSuffix(v.Key, key) {
		out = append(out, fmt.Sprintf("the verification record beside %s is of another archive (%s)", key, v.Key))
	}
	if v.Backup != "" && v.Backup != info.Backup {
		out = append(out, fmt.Sprintf("the verification record beside %s is of backup %s, not %s", key, v.Backup, info.Backup))
	}
	stored := r.Dump.Modified
	switch {
	case InFuture(v.VerifiedAt, now):
		out = append(out, fmt.Sprintf("the verification record beside %s says it was made %s, in the future", key, stamp(v.VerifiedAt)))
	case !stored.IsZero() && v.VerifiedAt.Add(writeSlack).Before(stored):
		out = append(out, fmt.Sprintf("the verification record beside %s says it was made %s, before the store held the dump (%s)", key, stamp(v.VerifiedAt), stamp(stored)))
	case !stored.IsZero() && !recorded.Modified.IsZero() && recorded.Modified.Add(writeSlack).Before(stored):
		out = append(out, fmt.Sprintf("the verification record beside %s was written %s, before the dump it vouches for (%s)", key, stamp(recorded.Modified), stamp(stored)))
	}
	return out
}
