package s3store

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Checksum is what each upload request carries for the store to check its body against: the
// checksum= parameter of an s3:// destination. The archive's own integrity is proven end to end
// either way (the manifest's SHA-256 of the stream); this is the store's check of each request.
type Checksum string

const (
	// ChecksumAuto is SHA-256, and, on a store that refuses the checksum headers (not AWS),
	// Content-MD5 for the rest of the run, said once in a warning.
	ChecksumAuto   Checksum = "auto"
	ChecksumSHA256 Checksum = "sha256" // x-amz-checksum-sha256, AWS's strong checksum
	ChecksumCRC32C Checksum = "crc32c" // x-amz-checksum-crc32c
	ChecksumMD5    Checksum = "md5"    // Content-MD5, which every S3 implementation honours
	ChecksumNone   Checksum = "none"   // nothing but the signature's payload hash
)

// Checksums are the values checksum= takes.
var Checksums = []Checksum{ChecksumAuto, ChecksumSHA256, ChecksumCRC32C, ChecksumMD5, ChecksumNone}

// ChecksumParam is the parameter that chooses it, for messages.
const ChecksumParam = "checksum="

// Strong tells whether c sends the newer x-amz-checksum-* headers (auto starts with them).
func (c Checksum) Strong() bool {
	return c == "" || c == ChecksumAuto || c == ChecksumSHA256 || c == ChecksumCRC32C
}

// checksums is one store's current checksum: c, until a store that refuses the headers makes
// auto fall back to MD5.
type checksums struct {
	mode     Checksum
	fellBack atomic.Bool
}

// current is the checksum requests carry now.
func (c *checksums) current() Checksum {
	switch {
	case c.mode == "" || c.mode == ChecksumAuto:
		if c.fellBack.Load() {
			return ChecksumMD5
		}
		return ChecksumSHA256
	}
	return c.mode
}

// fallBack turns auto into MD5; true only for the one call that did it.
func (c *checksums) fallBack() bool {
	return (c.mode == "" || c.mode == ChecksumAuto) && c.fellBack.CompareAndSwap(false, true)
}

// canFallBack tells whether a refusal of the headers may still be answered by falling back.
func (c *checksums) canFallBack() bool {
	return (c.mode == "" || c.mode == ChecksumAuto) && !c.fellBack.Load()
}

// bodySum is what one request body carries under a checksum.
type bodySum struct {
	algo   types.ChecksumAlgorithm // "" for MD5 and none
	sha256 *string
	crc32c *string
	md5    *string
}

// sumOf computes buf's checksum under c; sha is buf's SHA-256, which the signature uses anyway.
func sumOf(c Checksum, buf []byte, sha [sha256.Size]byte) bodySum {
	switch c {
	case ChecksumSHA256:
		return bodySum{algo: types.ChecksumAlgorithmSha256, sha256: aws.String(base64.StdEncoding.EncodeToString(sha[:]))}
	case ChecksumCRC32C:
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], crc32.Checksum(buf, crc32.MakeTable(crc32.Castagnoli)))
		return bodySum{algo: types.ChecksumAlgorithmCrc32c, crc32c: aws.String(base64.StdEncoding.EncodeToString(b[:]))}
	case ChecksumMD5:
		m := md5.Sum(buf)
		return bodySum{md5: aws.String(base64.StdEncoding.EncodeToString(m[:]))}
	}
	return bodySum{}
}

// algorithm is what CreateMultipartUpload announces for c's parts.
func algorithm(c Checksum) types.ChecksumAlgorithm {
	return sumOf(c, nil, [sha256.Size]byte{}).algo
}
