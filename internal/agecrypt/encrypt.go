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
// never decrypt as complete. plain must deliver exactly plainSize bytes for the size to hold.
func (r *Recipients) EncryptReader(plain io.Reader, plainSize int64) (io.Reader, int64, error) {
	if r == nil || len(r.list) == 0 {
		return nil, 0, errors.New("agecrypt: encrypt: no recipients")
	}
	if plainSize < -1 {
		return nil, 0, fmt.Errorf("agecrypt: encrypt: plaintext size %d is invalid (a size, or -1 for unknown)", plainSize)
	}
	// age.EncryptReader serves the header and the nonce from memory before it first reads plain.
	// Reading them back here, and no further, gives their exact length without touching plain.
	cipher, err := age.EncryptReader(plain, r.list...)
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
