package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
)

// A set (a parallel dump) is one archive: the dump and its parts are each checked as the dump
// alone is — the store's record of its size, its size and SHA-256 as it streams, decryption,
// its structure — and a restore reads them all, in parallel sessions (pgrestore.RestoreSet).

// verifySet checks every stream of a set and, with RestoreTo, restores them all.
func verifySet(ctx context.Context, src Source, m catalog.Manifest, streams []catalog.Stream, o Options, res *Result) error {
	key := streams[0].Key
	if o.RestoreTo != "" && o.Clean {
		return fmt.Errorf("verify %s: the archive is a set of %d streams, restored in several sessions, so only into an empty database: %w",
			src.Location(key), len(streams), errSetClean)
	}
	found := make([][]pgdump.Table, len(streams))
	var mu sync.Mutex
	open := func(ctx context.Context, n int) (io.ReadCloser, error) {
		r, err := openStream(ctx, src, streams[n], m.Encryption != nil, o.Identities, o.RestoreTo != "", func(tables []pgdump.Table) {
			mu.Lock()
			found[n] = tables
			mu.Unlock()
		})
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", src.Location(streams[n].Key), err)
		}
		return r, nil
	}
	if o.RestoreTo == "" {
		for n := range streams {
			r, err := open(ctx, n)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, r)
			r.Close()
			if err != nil {
				return fmt.Errorf("verify %s: %w", src.Location(streams[n].Key), err)
			}
		}
		tally(found, res)
		return nil
	}
	// The row counts are compared before the restore ends, so that a difference empties the
	// database as any other failure of a restore in several sessions does.
	rep, err := pgrestore.RestoreSet(ctx, o.restore(), o.Jobs, len(streams), open, func(ctx context.Context) error {
		return counts(ctx, src, key, o, tally(found, res), res)
	})
	res.Set = &rep
	if err != nil {
		res.Committed, res.Restored = false, false // emptied again, or said not to be
		return fmt.Errorf("verify %s: %w", src.Location(key), err)
	}
	return nil
}

// tally puts the streams' tables and rows in res, and returns the tables.
func tally(found [][]pgdump.Table, res *Result) []pgdump.Table {
	var tables []pgdump.Table
	for _, ts := range found {
		tables = append(tables, ts...)
	}
	res.Tables, res.Rows = len(tables), 0
	for _, t := range tables {
		res.Rows += max(t.Rows, 0)
	}
	return tables
}

// errSetClean refuses --clean for a set.
var errSetClean = errors.New("--clean cannot drop and replace a set's objects; restore into an empty database (createdb NEW) instead")

// openStream opens stream s and returns its plaintext, checked as it streams (checkOptions: for
// restoring, or not): at its end the read fails, naming the stream, unless its size, SHA-256
// (both, when encrypted) and structure are the manifest's; done is then given the stream's
// tables and row counts (counted).
func openStream(ctx context.Context, src Source, s catalog.Stream, encrypted bool, ids *agecrypt.Identities, restoring bool, done func([]pgdump.Table)) (io.ReadCloser, error) {
	if encrypted && ids == nil {
		return nil, ErrNoIdentity
	}
	body, size, err := src.Open(ctx, s.Key)
	if err != nil {
		return nil, err
	}
	if size >= 0 && size != s.Bytes {
		body.Close()
		return nil, fmt.Errorf("%s has %d bytes, the manifest says %d", s.Name(), size, s.Bytes)
	}
	c := &checkedStream{s: s, encrypted: encrypted, body: body, stored: &countingReader{r: body, hash: sha256.New()},
		hash: sha256.New(), chk: pgdump.NewChecker(checkOptions(s, restoring)), done: done}
	c.in = c.stored
	if encrypted {
		plain, err := ids.DecryptReader(c.stored)
		if err != nil {
			body.Close()
			c.chk.Close()
			return nil, fmt.Errorf("%s: %w", s.Name(), err)
		}
		c.in = plain
	}
	return c, nil
}

// checkedStream is one stream's plaintext, checked against its manifest as it is read.
type checkedStream struct {
	s         catalog.Stream
	encrypted bool
	body      io.ReadCloser
	stored    *countingReader
	in        io.Reader
	hash      hash.Hash
	chk       *pgdump.Checker
	n         int64
	done      func([]pgdump.Table)
	closed    bool
	err       error
}

func (c *checkedStream) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.in.Read(p)
	c.n += int64(n)
	c.hash.Write(p[:n])
	if _, werr := c.chk.Write(p[:n]); werr != nil && err == nil {
		err = werr
	}
	if err == nil {
		return n, nil
	}
	if err == io.EOF && c.encrypted {
		// What follows the plaintext's end still counts against the stored size and hash.
		_, err = io.Copy(io.Discard, c.stored)
		if err == nil {
			err = io.EOF
		}
	}
	var copyErr error
	if err != io.EOF {
		copyErr = err
	}
	sum, chkErr := c.chk.Close()
	c.closed = true
	if cerr := streamed(c.s, c.encrypted, c.stored, c.n, copyErr, c.hash, sum, chkErr); cerr != nil {
		c.err = fmt.Errorf("%s: %w", c.s.Name(), cerr)
		if copyErr != nil && strings.Contains(copyErr.Error(), c.s.Name()) {
			c.err = copyErr
		}
		return n, c.err
	}
	c.done(counted(c.s, sum))
	c.err = io.EOF
	return n, io.EOF
}

func (c *checkedStream) Close() error {
	if !c.closed {
		c.chk.Close()
		c.closed = true
	}
	return c.body.Close()
}

// checkOptions is how stream s of a set is checked as it streams. A restore does not decompress
// the tables whose rows the manifest has counted: its pg_restore decompresses every byte, and
// the manifest's counts, which the SHA-256 ties to these very bytes, are what the restored
// database is compared with before the restore ends (a difference empties it again), so
// decompressing them in the check as well would double the restore's work. The tables the
// backup did not count (ARCHIVE_CHECK=header, or checked for framing only) the check
// decompresses and counts itself. (A restore in one transaction checks everything before it
// commits instead: the check's own counts are compared with the manifest's first.)
func checkOptions(s catalog.Stream, restoring bool) pgdump.Options {
	known := manifestCounts(s)
	if !restoring || len(known) == 0 {
		return pgdump.Options{}
	}
	return pgdump.Options{FramingOnly: func(schema, name string) bool {
		_, ok := known[[2]string{schema, name}]
		return ok
	}}
}

// manifestCounts are the tables of stream s whose rows the manifest counted, by schema and name.
func manifestCounts(s catalog.Stream) map[[2]string]pgdump.Table {
	known := map[[2]string]pgdump.Table{}
	if s.Structure != nil {
		for _, t := range s.Structure.Tables {
			if t.Rows >= 0 && !t.FramingOnly {
				known[[2]string{t.Schema, t.Name}] = t
			}
		}
	}
	return known
}

// counted is what the restored database's row counts are compared with: the check's own
// counts, and the manifest's for the tables the check read for framing only (checkOptions).
func counted(s catalog.Stream, sum pgdump.Summary) []pgdump.Table {
	known := manifestCounts(s)
	out := slices.Clone(sum.Tables)
	for i, t := range out {
		if m, ok := known[[2]string{t.Schema, t.Name}]; ok && t.FramingOnly {
			out[i] = m
		}
	}
	return out
}
