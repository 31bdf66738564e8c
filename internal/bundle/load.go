package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
)

// Limits on what restore-app reads: a release.json is a few kilobytes, config values a few
// hundred, and Heroku refuses slugs past 500 MB.
const (
	maxRecordBytes = 16 << 20
	maxValuesBytes = 64 << 20
	MaxSlugBytes   = 1 << 30
)

// Reader opens the objects of the archive (verify's read side).
type Reader interface {
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
}

// Checks are what Load holds a bundle to.
type Checks struct {
	// Identities decrypt config.age; nil when none was given (Load then fails with ErrNoIdentity
	// for a bundle that has config values).
	Identities *agecrypt.Identities
	// VerifyKey, when set, must have signed release.json and the config values.
	VerifyKey VerifyKey
	// AllowUnbound accepts config values in the old format, bound to no release
	// (--allow-unbound-config).
	AllowUnbound bool
}

// Trust is how a loaded bundle is authenticated.
type Trust int

const (
	Unsigned        Trust = iota // no signature, none asked for
	SignedUnchecked              // signed, but no verify key was given to check it
	Verified                     // signed by the verify key
)

// Loaded is a bundle read back and checked: its parts belong together, its slug's bytes are
// those recorded, and with a verify key it is signed by it.
type Loaded struct {
	Key     string // the release.json key
	Record  Record
	Values  map[string]string // decrypted; nil when the bundle holds none
	Unbound bool              // Values are in the old format, accepted by Checks.AllowUnbound
	Trust   Trust
}

// ErrNoIdentity is a bundle with encrypted config values and no identity to decrypt them.
var ErrNoIdentity = errors.New("the bundle's config values are encrypted (config.age): give the identity that decrypts them (AGE_IDENTITY, or --identity FILE)")

// Load reads the bundle whose release.json is key and checks it before anything is made of it.
func Load(ctx context.Context, src Reader, key string, c Checks) (*Loaded, error) {
	app, release, err := ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	raw, err := readAll(ctx, src, key, maxRecordBytes)
	if err != nil {
		return nil, err
	}
	l := &Loaded{Key: key}
	if err := json.Unmarshal(raw, &l.Record); err != nil {
		return nil, fmt.Errorf("read %s: not a bundle's release.json: %w", key, err)
	}
	rec := l.Record
	if err := rec.checkLayout(app, release); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if Completes(key) && rec.ConfigValues == nil {
		return nil, fmt.Errorf("%s: names no config values, which is all a %s is written for: not a bundle's record", key, CompletedName)
	}
	switch {
	case !c.VerifyKey.IsZero():
		if err := rec.Verify(c.VerifyKey); err != nil {
			return nil, fmt.Errorf("%s: %w; refused: it was not written by the bundle runs that hold BUNDLE_SIGNING_KEY (anyone with the uploader's keys can write a bundle)", key, err)
		}
		l.Trust = Verified
	case rec.Signature != nil:
		l.Trust = SignedUnchecked
	}
	if rec.ConfigValues != nil {
		if c.Identities == nil {
			return nil, ErrNoIdentity
		}
		plain, err := decrypt(ctx, src, rec.ConfigValues.Key, c.Identities)
		if err != nil {
			return nil, err
		}
		l.Values, l.Unbound, err = openValues(plain, rec, c.VerifyKey, c.AllowUnbound)
		if errors.Is(err, ErrUnbound) {
			return nil, fmt.Errorf("%s: %w; refused unless --allow-unbound-config (check first that the bundle is one your bundle runs wrote)", rec.ConfigValues.Key, err)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rec.ConfigValues.Key, err)
		}
	}
	if rec.Slug != nil {
		if err := checkSlug(ctx, src, rec.Slug); err != nil {
			return nil, err
		}
	}
	return l, nil
}

var checksumRE = regexp.MustCompile(`^SHA256:[0-9a-f]{64}$`)

// checkLayout holds release.json to the bundle's layout: it describes the release its key names,
// and its parts are under that release's own APP/_app/vN/ — the slug may be under an earlier
// release's, which a release that changed only config vars shares.
func (r Record) checkLayout(app string, release int) error {
	var ps []string
	switch {
	case r.BundleVersion > Version:
		return fmt.Errorf("bundle_version %d is newer than this pgoffsite reads (%d): restore it with a newer pgoffsite", r.BundleVersion, Version)
	case r.BundleVersion < 1:
		return fmt.Errorf("bundle_version %d: not a bundle's release.json", r.BundleVersion)
	}
	if r.App != app || r.Release != release {
		ps = append(ps, fmt.Sprintf("it describes %s v%d, not the release its key names (%s v%d)", r.App, r.Release, app, release))
	}
	if c := r.ConfigValues; c != nil {
		if own := Key(app, release, ConfigName); c.Key != own {
			ps = append(ps, fmt.Sprintf("its config values are at %s, not at the bundle's own %s", c.Key, own))
		}
	}
	if s := r.Slug; s != nil {
		switch {
		case s.FromRelease < 1 || s.FromRelease > release:
			ps = append(ps, fmt.Sprintf("its slug comes from release v%d, which is not this one nor an earlier one", s.FromRelease))
		case s.Key != Key(app, s.FromRelease, SlugName):
			ps = append(ps, fmt.Sprintf("its slug is at %s, not at %s (the bundle's own, or that of the earlier release it names)", s.Key, Key(app, s.FromRelease, SlugName)))
		}
		if !checksumRE.MatchString(s.Checksum) {
			ps = append(ps, fmt.Sprintf("its slug's checksum %q is not SHA256:<64 hex digits>", s.Checksum))
		}
		if s.Bytes <= 0 || s.Bytes > MaxSlugBytes {
			ps = append(ps, fmt.Sprintf("its slug's size %d is not one of a slug (1 byte to %d MiB)", s.Bytes, MaxSlugBytes>>20))
		}
	}
	if len(ps) > 0 {
		return fmt.Errorf("refused: %s; pgoffsite never writes such a bundle (each part is under the bundle's own APP/_app/vN/), so someone else did", strings.Join(ps, "; "))
	}
	return nil
}

func readAll(ctx context.Context, src Reader, key string, limit int64) ([]byte, error) {
	rc, _, err := src.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", key, err)
	case int64(len(b)) > limit:
		return nil, fmt.Errorf("read %s: more than %d MiB, far more than a bundle's part of this kind", key, limit>>20)
	}
	return b, nil
}

func decrypt(ctx context.Context, src Reader, key string, ids *agecrypt.Identities) ([]byte, error) {
	rc, _, err := src.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	plain, err := ids.DecryptReader(rc)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", key, err)
	}
	b, err := io.ReadAll(io.LimitReader(plain, maxValuesBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("decrypt %s: %w", key, err)
	case len(b) > maxValuesBytes:
		return nil, fmt.Errorf("decrypt %s: more than %d MiB of config values", key, maxValuesBytes>>20)
	}
	return b, nil
}

// checkSlug reads the archived slug through and checks its size and SHA-256 against release.json,
// before anything is made of the bundle.
func checkSlug(ctx context.Context, src Reader, s *Slug) error {
	rc, err := openSlug(ctx, src, s)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return err
	}
	return nil
}

// openSlug opens the archived slug as a reader that fails, instead of giving its last byte, when
// the bytes are not the size and checksum release.json records: a PUT that reads it never
// completes with other bytes.
func openSlug(ctx context.Context, src Reader, s *Slug) (io.ReadCloser, error) {
	rc, size, err := src.Open(ctx, s.Key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Key, err)
	}
	if size >= 0 && size != s.Bytes {
		rc.Close()
		return nil, fmt.Errorf("the archived slug %s is %d bytes, its release.json says %d: %w", s.Key, size, s.Bytes, ErrSlugMismatch)
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(s.Checksum, "SHA256:"))
	return &checkedSlug{rc: rc, key: s.Key, size: s.Bytes, want: want, h: sha256.New()}, nil
}

// ErrSlugMismatch is an archived slug whose bytes are not those its release.json records.
var ErrSlugMismatch = errors.New("the slug is not the one the bundle records")

// checkedSlug hashes what it reads and holds the last byte back until the whole slug has been
// read and its digest checked.
type checkedSlug struct {
	rc   io.ReadCloser
	key  string
	size int64
	want []byte
	h    hash.Hash
	n    int64
	done bool
}

func (c *checkedSlug) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.n < c.size-1 {
		if rest := c.size - 1 - c.n; int64(len(p)) > rest {
			p = p[:rest]
		}
		k, err := c.rc.Read(p)
		c.h.Write(p[:k])
		c.n += int64(k)
		if err == io.EOF {
			return k, c.mismatch(fmt.Sprintf("it ends after %d bytes, its release.json says %d", c.n, c.size))
		}
		return k, err
	}
	// The last byte: read it, make sure nothing follows, and check the digest before giving it.
	var last [1]byte
	if _, err := io.ReadFull(c.rc, last[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, c.mismatch(fmt.Sprintf("it ends after %d bytes, its release.json says %d", c.n, c.size))
		}
		return 0, err
	}
	var extra [1]byte
	if k, _ := io.ReadFull(c.rc, extra[:]); k > 0 {
		return 0, c.mismatch(fmt.Sprintf("it is longer than the %d bytes its release.json says", c.size))
	}
	c.h.Write(last[:])
	if got := c.h.Sum(nil); string(got) != string(c.want) {
		return 0, c.mismatch(fmt.Sprintf("its SHA-256 is %x, its release.json says %x", got, c.want))
	}
	c.n++
	c.done = true
	p[0] = last[0]
	return 1, nil
}

func (c *checkedSlug) mismatch(why string) error {
	return fmt.Errorf("the archived slug %s: %s: %w", c.key, why, ErrSlugMismatch)
}

func (c *checkedSlug) Close() error { return c.rc.Close() }
