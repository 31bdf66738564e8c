package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Stream is an object that is not a pg_dump archive (an app's slug, its release record), stored
// with the same care: one read written to every destination, its size and SHA-256 checked as it
// streams, so that a wrong one is never made visible.
type Stream struct {
	Key         string
	Body        io.Reader
	Size        int64  // exact plaintext size; store.UnknownSize when not known
	SHA256      string // hex digest the plaintext must have; "" when none is known
	ContentType string
	// Encrypt, when set, encrypts the object (the checks still read the plaintext).
	Encrypt Encrypter
}

// Stored is what happened to a Stream: one Copy per destination, in the job's order.
type Stored struct {
	Key             string
	Bytes           int64 // what the stores hold
	AlreadyArchived bool  // every destination had the object already
	Copies          []Copy
}

// ErrMismatch is a stream whose size or SHA-256 is not the one announced.
var ErrMismatch = errors.New("the content does not match its announced size or checksum")

// StoreStream writes s to every destination of the job. A destination where the object exists
// already counts as stored (Put never overwrites). The error names every copy that failed.
func (j *Job) StoreStream(ctx context.Context, s Stream) (Stored, error) {
	res := Stored{Key: s.Key}
	checked := &checkingReader{r: s.Body, size: s.Size, want: strings.ToLower(s.SHA256), h: sha256.New()}
	body, size, err := encrypt(s.Encrypt, checked, s.Size)
	if err != nil {
		return res, fmt.Errorf("archive: encrypt %s: %w", s.Key, err)
	}
	d := j.send(ctx, j.Log, store.Object{Key: s.Key, Size: size, ContentType: s.ContentType}, &meter{r: body})
	res.Copies, res.Bytes, res.AlreadyArchived = d.copies, d.stream.n.Load(), d.everywhere()
	if err := d.failed(s.Key); err != nil {
		return res, err
	}
	return res, copiesErr(s.Key, res.Copies)
}

// checkingReader is a stream's check stage, in place of a dump's structure check: it hashes
// and counts what it reads and turns the end of a stream whose size or digest is wrong into an
// error. The last expected byte is held back until the digest is checked, so a store that stops
// reading at the announced size never completes a wrong object.
type checkingReader struct {
	r    io.Reader
	size int64
	want string
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
	n   int64
	err error
}

func (c *checkingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.size >= 0 && int64(len(p)) > c.size-c.n+1 {
		p = p[:c.size-c.n+1] // one byte past the size is enough to see a stream that is too long
	}
	n, err := c.r.Read(p)
	if c.size >= 0 && c.n+int64(n) > c.size {
		c.err = fmt.Errorf("%w: more than the announced %d bytes", ErrMismatch, c.size)
		return 0, c.err
	}
	c.h.Write(p[:n])
	c.n += int64(n)
	complete := err == io.EOF || (c.size >= 0 && c.n == c.size)
	if !complete {
		if err != nil && err != io.EOF {
			c.err = err
		}
		return n, err
	}
	if err != nil && err != io.EOF {
		c.err = err
		return 0, err
	}
	if c.size >= 0 && c.n != c.size {
		c.err = fmt.Errorf("%w: %d bytes instead of the announced %d", ErrMismatch, c.n, c.size)
		return 0, c.err
	}
	if got := hex.EncodeToString(c.h.Sum(nil)); c.want != "" && got != c.want {
		c.err = fmt.Errorf("%w: SHA-256 %s instead of the announced %s", ErrMismatch, got, c.want)
		return 0, c.err
	}
	return n, err
}
