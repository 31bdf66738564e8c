package agecrypt

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// The age v1 payload (https://age-encryption.org/v1): a 16-byte nonce, then the plaintext in
// 64 KiB chunks, each sealed with a 16-byte ChaCha20-Poly1305 tag; an empty plaintext is one
// empty chunk.
const (
	nonceSize = 16
	chunkSize = 64 << 10
	tagSize   = 16
)

// maxHeaderSize bounds the header read back from age: a few hundred bytes per recipient.
const maxHeaderSize = 1 << 20

// ciphertextSize is the exact size of the age file of a plaintext of plainSize bytes behind a
// header of headerSize bytes.
func ciphertextSize(headerSize int, plainSize int64) int64 {
	chunks := (plainSize + chunkSize - 1) / chunkSize
	if chunks == 0 {
		chunks = 1
	}
	return int64(headerSize) + nonceSize + plainSize + chunks*tagSize
}

// EncryptReader returns the ciphertext of plain as a reader (pull-based: no goroutine, one
// chunk of memory), and its exact size when plainSize >= 0 (-1 stays -1: unknown). A read error
// from plain is returned as is and no final chunk is ever written, so a stream cut short can
// never decrypt as complete. When plainSize is known, plain must deliver exactly that many bytes:
// fewer (a clean EOF too early) or more fail the ciphertext the same way, so that the size
// announced is the size produced or the stream fails.
func (r *Recipients) EncryptReader(plain io.Reader, plainSize int64) (io.Reader, int64, error) {
	if r == nil || len(r.list) == 0 {
		return nil, 0, errors.New("agecrypt: encrypt: no recipients")
	}
	if plainSize < -1 {
		return nil, 0, fmt.Errorf("agecrypt: encrypt: plaintext size %d is invalid (a size, or -1 for unknown)", plainSize)
	}
	// age.EncryptReader serves the header and the nonce from memory before it first reads plain.
	// Reading them back here, and no further, gives their exact length without touching plain.
	src := plain
	if plainSize >= 0 {
		src = &sizedReader{r: plain, want: plainSize}
	}
	cipher, err := age.EncryptReader(src, r.list...)
	if err != nil {
		return nil, 0, fmt.Errorf("agecrypt: encrypt: %w", err)
	}
	head, err := readHeader(cipher)
	if err != nil {
		return nil, 0, fmt.Errorf("agecrypt: encrypt: %w", err)
	}
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(cipher, nonce); err != nil {
		return nil, 0, fmt.Errorf("agecrypt: encrypt: read back the nonce: %w", err)
	}
	size := int64(-1)
	if plainSize >= 0 {
		size = ciphertextSize(len(head), plainSize)
	}
	return io.MultiReader(bytes.NewReader(append(head, nonce...)), cipher), size, nil
}

// readHeader reads the age header from r one byte at a time, so as never to read past it: it
// ends with the line that starts with "--- " (the MAC line; stanza lines start with "-> " and
// their bodies are base64, which has no '-').
func readHeader(r io.Reader) ([]byte, error) {
	var head []byte
	lineStart := 0
	b := make([]byte, 1)
	for len(head) < maxHeaderSize {
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("read back the header: %w", err)
		}
		head = append(head, b[0])
		if b[0] != '\n' {
			continue
		}
		if bytes.HasPrefix(head[lineStart:], []byte("--- ")) {
			return head, nil
		}
		lineStart = len(head)
	}
	return nil, fmt.Errorf("read back the header: longer than %d bytes; give fewer recipients", maxHeaderSize)
}

// sizedReader fails a plaintext that is not of the size announced.
type sizedReader struct {
	r    io.Reader
	want int64
	got  int64
}

func (s *sizedReader) Read(p []byte) (int, error) {
	// At most one byte beyond the size, to see whether the plaintext is longer.
	if rest := s.want - s.got + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := s.r.Read(p)
	s.got += int64(n)
	switch {
	case s.got > s.want:
		return 0, fmt.Errorf("agecrypt: encrypt: the plaintext is longer than the %d bytes announced", s.want)
	case err == io.EOF && s.got < s.want:
		return n, fmt.Errorf("agecrypt: encrypt: the plaintext ended after %d of the %d bytes announced: %w", s.got, s.want, io.ErrUnexpectedEOF)
	}
	return n, err
}
