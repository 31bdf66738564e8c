// Package verify proves archives restorable: it reads an archive back, checks its size and
// SHA-256 against the manifest written beside it, checks its whole structure without Postgres,
// and, given a scratch database, restores it with pg_restore and compares row counts.
package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
)

// Source reads archives back (store.Reader: every kind of destination): what the catalog
// queries to find them, and what verify reads them with.
type Source interface {
	catalog.Reader
}

// Options configure a verification.
type Options struct {
	RestoreTo string // database URL: restore there and compare row counts ("" = no restore)
	// Jobs is how many sessions restore a set (a parallel dump) at once; 0 or 1: one at a time.
	// An archive of one stream restores in one session, in one transaction, whatever Jobs says.
	Jobs int
	// Scratch is a local directory where an archive of one stream is staged for pg_restore -j
	// Jobs when Jobs > 1 (removed afterwards, also on failure); "" restores it in one session.
	Scratch  string
	PgBinDir string // where pg_restore and psql are ("" = PATH)
	// LockTimeout bounds each wait of the restore for a lock another session of the database
	// holds; default 2 minutes (see pgrestore.Options).
	LockTimeout time.Duration
	// Clean drops the archive's objects from RestoreTo before recreating them.
	Clean bool
	// Name names the restore's sessions; default "verify".
	Name string
	// Identities decrypt encrypted archives (.dump.age) while they stream; without them such an
	// archive fails with ErrNoIdentity before anything is read.
	Identities *agecrypt.Identities
}

// ErrNoIdentity: the archive is encrypted and no identity was given.
var ErrNoIdentity = errors.New("the archive is encrypted and no identity was given to decrypt it")

func (o Options) restore() pgrestore.Options {
	name := o.Name
	if name == "" {
		name = "verify"
	}
	return pgrestore.Options{URL: o.RestoreTo, PgBinDir: o.PgBinDir, LockTimeout: o.LockTimeout, Clean: o.Clean, Name: name}
}

// Result is what the verification of one archive found.
type Result struct {
	Key      string // the dump's key
	Manifest catalog.Manifest
	Tables   int
	Rows     int64
	Restored bool
	// Encrypted tells that the archive is encrypted (its manifest says so): it was decrypted
	// while it streamed, and both hashes were checked.
	Encrypted bool
	// Committed tells that the restore committed: the database holds the archive's data, even
	// when a later count fails the verification.
	Committed bool
	// FramingOnly names the tables the backup checked for their framing only (the manifest says
	// so), and OtherFramingOnly counts such large objects and other data: a verification that
	// passed has decompressed them all.
	FramingOnly      []string
	OtherFramingOnly int
	// Findings say how the store's record of the archive differs from its manifest beyond what
	// fails the verification outright (Mismatches: overwritten, written after its manifest):
	// the bytes may match a manifest that was itself replaced. `pgoffsite verify` fails on them.
	Findings []string
	// VersionsErr says why the store's versions of the archive could not be seen (the
	// credentials may not list them): an overwrite cannot be told then.
	VersionsErr error
	// Staged is how many bytes were written to the scratch directory (Options.Scratch) and
	// removed after the restore.
	Staged int64
	// Set says how the restore of a set went: its sessions, what it held in memory.
	Set *pgrestore.SetReport
	Err error
}

// Latest returns the dump key of the newest archive of database on app (catalog.Latest).
func Latest(ctx context.Context, src Source, app, database string) (string, error) {
	k, err := catalog.Latest(ctx, src, app, database)
	if err != nil {
		return "", fmt.Errorf("verify: %w", err)
	}
	return k, nil
}

// LatestEnv returns the dump key of the newest archive of an env:VAR target (catalog.LatestEnv).
func LatestEnv(ctx context.Context, src Source, variable string) (string, error) {
	k, err := catalog.LatestEnv(ctx, src, variable)
	if err != nil {
		return "", fmt.Errorf("verify: %w", err)
	}
	return k, nil
}

// Archive verifies the dump at key against its manifest.
func Archive(ctx context.Context, src Source, key string, o Options) Result {
	res := Result{Key: key}
	res.Err = verify(ctx, src, key, o, &res)
	return res
}

func verify(ctx context.Context, src Source, key string, o Options, res *Result) error {
	// The store's record first: a dump without a manifest, or one that is not the size its
	// manifest says, fails before a byte of it is read.
	l, lerr := src.List(ctx, catalog.ListingPrefix(key))
	rec, listed := catalog.RecordOf(l, key)
	switch {
	case lerr != nil:
		res.Findings = append(res.Findings, fmt.Sprintf("the store's record of %s (sizes, times, versions) could not be listed, so it was not compared with the manifest: %v", key, lerr))
	case listed && rec.Manifest == nil:
		return fmt.Errorf("verify %s: %w", src.Location(key), errLone(key))
	default:
		res.VersionsErr = l.VersionsErr
	}
	m, err := catalog.ReadManifest(ctx, src, key)
	if err != nil {
		return fmt.Errorf("verify %s: its manifest cannot be read, so the archive cannot be checked: %w", src.Location(key), err)
	}
	res.Manifest = m
	if m.Structure != nil {
		res.FramingOnly, res.OtherFramingOnly = m.Structure.FramingOnly(), m.Structure.OtherFramingOnly
	}
	switch {
	case m.Encryption != nil && !catalog.IsEncrypted(key):
		return fmt.Errorf("verify %s: the manifest describes an encrypted archive (%s), not this plain one", src.Location(key), m.Key)
	case m.Encryption == nil && catalog.IsEncrypted(key):
		return fmt.Errorf("verify %s: the manifest says nothing of encryption, so this encrypted archive cannot be checked", src.Location(key))
	case m.Key != "" && !strings.HasSuffix(key, m.Key) && !strings.HasSuffix(m.Key, key):
		return fmt.Errorf("verify %s: the manifest describes another archive (%s)", src.Location(key), m.Key)
	}
	enc := m.Encryption
	if enc != nil {
		res.Encrypted = true
		switch {
		case enc.Format != "age":
			return fmt.Errorf("verify %s: the manifest says it is encrypted as %q, which pgoffsite cannot decrypt (it writes age)", src.Location(key), enc.Format)
		case o.Identities == nil:
			return fmt.Errorf("verify %s: %w; it is encrypted to %s: set AGE_IDENTITY to the text of one of their identity files, or give --identity FILE",
				src.Location(key), ErrNoIdentity, recipients(enc))
		}
	}
	sizeErr := func(size int64) error {
		what := "archive"
		if enc != nil {
			what = "encrypted archive"
		}
		return fmt.Errorf("verify %s: the %s has %d bytes, the manifest says %d", src.Location(key), what, size, m.Bytes)
	}
	if listed {
		overwrites := catalog.Overwrites(key, rec, m)
		if rec.Dump.Size != m.Bytes {
			// Known from the listing: nothing is downloaded.
			if len(overwrites) > 0 {
				return fmt.Errorf("%w; %s", sizeErr(rec.Dump.Size), strings.Join(overwrites, "; "))
			}
			return sizeErr(rec.Dump.Size)
		}
		res.Findings = append(res.Findings, overwrites...)
	}
	streams, err := catalog.Streams(key, m)
	if err != nil {
		return fmt.Errorf("verify %s: %w", src.Location(key), err)
	}
	if len(streams) > 1 {
		var found []string
		if lerr == nil && listed {
			found = catalog.PartProblems(rec, streams)
		}
		if len(found) > 0 {
			return fmt.Errorf("verify %s: %s", src.Location(key), strings.Join(found, "; "))
		}
		return verifySet(ctx, src, m, streams, o, res)
	}
	body, size, err := src.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("verify %s: %w", src.Location(key), err)
	}
	defer body.Close()
	if size != m.Bytes {
		return sizeErr(size)
	}

	// What the store holds is hashed as it is read; an encrypted one is decrypted on the way, so
	// that the checks and the restore read the plaintext and nothing is written to disk.
	stored := &countingReader{r: body, hash: sha256.New()}
	var in io.Reader = stored
	if enc != nil {
		plain, err := o.Identities.DecryptReader(stored)
		if errors.Is(err, agecrypt.ErrWrongIdentity) {
			return fmt.Errorf("verify %s: %w; the manifest says it is encrypted to %s: give one of their identities in AGE_IDENTITY or --identity FILE",
				src.Location(key), err, recipients(enc))
		}
		if err != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
		in = plain
	}

	hash := sha256.New()
	chk := pgdump.NewChecker(pgdump.Options{})
	var restore *pgrestore.Restore
	var stage *staged
	sinks := []io.Writer{hash, chk}
	if o.RestoreTo != "" && o.Jobs > 1 && o.Scratch != "" {
		if stage, err = stageIn(o.Scratch); err != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
		defer stage.remove()
		sinks = append(sinks, stage)
	} else if o.RestoreTo != "" {
		restore, err = pgrestore.Start(ctx, o.restore())
		if err != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
		sinks = append(sinks, restore)
	}
	n, copyErr := io.Copy(io.MultiWriter(sinks...), in)
	if copyErr == nil && enc != nil {
		// The plaintext ended where age says the file ends; anything after it still counts
		// against the stored size and hash.
		_, copyErr = io.Copy(io.Discard, stored)
	}
	sum, chkErr := chk.Close()
	if err := streamed(streams[0], enc != nil, stored, n, copyErr, hash, sum, chkErr); err != nil {
		if restore == nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
		// pg_restore has not seen the archive's end: stopping it now rolls its transaction back.
		if rerr := restore.Abort(); rerr != nil {
			if copyErr != nil && !errors.Is(copyErr, agecrypt.ErrDamaged) {
				return fmt.Errorf("verify %s: %w", src.Location(key), rerr) // pg_restore stopped reading: its own error says why
			}
			return fmt.Errorf("verify %s: %w; %w", src.Location(key), err, rerr)
		}
		return fmt.Errorf("verify %s: %w; the restore was stopped before it committed, %w", src.Location(key), err, pgrestore.ErrRolledBack)
	}
	res.Tables = len(sum.Tables)
	for _, t := range sum.Tables {
		res.Rows += max(t.Rows, 0)
	}
	if restore != nil {
		if err := restore.Finish(); err != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
	}
	if stage != nil {
		if res.Staged, err = stage.restore(ctx, o); err != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
	}
	if restore != nil || stage != nil {
		return counts(ctx, src, key, o, sum.Tables, res)
	}
	return nil
}

// counts compares the row counts of the restored database with the archive's.
func counts(ctx context.Context, src Source, key string, o Options, tables []pgdump.Table, res *Result) error {
	res.Committed = true
	counted, err := pgrestore.CountRows(ctx, o.restore(), tables, o.Jobs)
	if err != nil {
		return fmt.Errorf("verify %s: %w", src.Location(key), err)
	}
	if err := pgrestore.SameCounts(tables, counted, "the restored database"); err != nil {
		return fmt.Errorf("verify %s: %w", src.Location(key), err)
	}
	res.Restored = true
	return nil
}

// ErrNoManifest reports a dump with no manifest beside it.
var ErrNoManifest = errors.New("no manifest beside the dump")

// errLone explains a dump without its manifest: what leaves one, and what to do.
func errLone(key string) error {
	return fmt.Errorf("%w (%s): a backup run stopped between writing the dump and its manifest, or someone else wrote it; it cannot be checked and does not count as an archive: remove it with the bucket owner's credentials once you know which",
		ErrNoManifest, catalog.ManifestKey(key))
}

// recipients names what an archive is encrypted to, by fingerprint: enough to tell which
// identity file opens it, nothing secret.
func recipients(enc *catalog.Encryption) string {
	if len(enc.Recipients) == 0 {
		return "recipients the manifest does not name"
	}
	var names []string
	for _, r := range enc.Recipients {
		names = append(names, fmt.Sprintf("%s (%s)", r.Fingerprint, r.Type))
	}
	return strings.Join(names, ", ")
}

// countingReader counts and hashes what is read through it.
type countingReader struct {
	r    io.Reader
	n    int64
	hash hash.Hash
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.hash.Write(p[:n])
	return n, err
}

// streamed checks what streaming the archive found against its manifest: every byte read, the
// size, the SHA-256, the structure, and the per-table row counts. For an encrypted archive the
// stored bytes are the ciphertext, checked against the manifest's bytes and sha256, and the
// plaintext against its encryption block.
func streamed(s catalog.Stream, encrypted bool, stored *countingReader, n int64, copyErr error, sha hash.Hash, sum pgdump.Summary, chkErr error) error {
	if copyErr != nil {
		return fmt.Errorf("reading: %w", copyErr)
	}
	if encrypted {
		if stored.n != s.Bytes {
			return fmt.Errorf("read %d bytes of the encrypted archive, the manifest says %d", stored.n, s.Bytes)
		}
		if got := hex.EncodeToString(stored.hash.Sum(nil)); got != s.SHA256 {
			return fmt.Errorf("SHA-256 %s of the encrypted archive differs from the manifest's %s: the archive was altered or damaged", got, s.SHA256)
		}
		if n != s.PlaintextBytes {
			return fmt.Errorf("decrypted %d bytes, the manifest says the plaintext has %d", n, s.PlaintextBytes)
		}
		if got := hex.EncodeToString(sha.Sum(nil)); got != s.PlaintextSHA256 {
			return fmt.Errorf("SHA-256 %s of the decrypted archive differs from the manifest's plaintext_sha256 %s: the archive was altered or damaged", got, s.PlaintextSHA256)
		}
	} else {
		if n != s.Bytes {
			return fmt.Errorf("read %d bytes, the manifest says %d", n, s.Bytes)
		}
		if got := hex.EncodeToString(sha.Sum(nil)); got != s.SHA256 {
			return fmt.Errorf("SHA-256 %s differs from the manifest's %s: the archive was altered or damaged", got, s.SHA256)
		}
	}
	if chkErr != nil {
		return fmt.Errorf("the archive is damaged: %w", chkErr)
	}
	if s.Structure != nil {
		return pgrestore.SameCounts(s.Structure.Tables, sum.Tables, "the archive")
	}
	return nil
}
