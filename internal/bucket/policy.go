package bucket

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"

	"github.com/pgoffsite/pgoffsite/internal/retention"
)

// Sids of the bucket policy statements setup owns. Statements with other
// Sids are never touched.
const (
	SidDenyInsecureTransport = "PgoffsiteDenyInsecureTransport"
	SidDenyVersionDelete     = "PgoffsiteDenyVersionDelete"
)

// policyMaxBytes is the S3 limit on a bucket policy's size.
const policyMaxBytes = 20 * 1024

// PolicyLimits explains what the bucket policy set up by pgoffsite protects
// against and what it does not, for docs/bucket.md and the setup command.
const PolicyLimits = `What the bucket policy does:
  - It denies every request made without TLS (aws:SecureTransport false),
    whoever makes it.
  - It denies s3:DeleteObjectVersion on the archive prefix and
    s3:DeleteBucket to every principal, the bucket owner's users and roles
    included. With versioning on, a plain delete or overwrite only adds a new
    version; the archived bytes stay until the lifecycle rules remove them,
    and those keep a replaced version at least as long as its archive would
    have been kept.
  - Together with the uploader's own policy (s3:PutObject and
    s3:AbortMultipartUpload under the prefix, and no write without
    If-None-Match), stolen uploader credentials can add objects but cannot
    read, list, overwrite or destroy archives.

What it does NOT prevent:
  - Lifecycle expiry: lifecycle rules are carried out by S3 itself and bucket
    policies do not apply to them. Archives and old versions are removed
    when the expiry and noncurrent-version-expiry days say so; whoever can
    change the lifecycle configuration (s3:PutLifecycleConfiguration) can
    shorten them.
  - An administrator removing the statements: the account root user, and any
    principal allowed s3:PutBucketPolicy or s3:DeleteBucketPolicy, can
    delete or rewrite the policy and then delete versions. That is a
    deliberate two-step action, not something a leaked uploader key can do.
    Keep those permissions away from day-to-day credentials; for protection
    even against the root user, use Object Lock in COMPLIANCE mode.
  - Suspending versioning (s3:PutBucketVersioning) by an administrator:
    later overwrites would then replace data. Object Lock buckets cannot
    suspend versioning.`

// statement is one policy statement as JSON values, so that foreign
// statements survive a merge untouched.
type statement = map[string]any

func bucketARN(bucket string) string { return "arn:aws:s3:::" + bucket }

// objectsARN covers every key under prefix ("" = the whole bucket).
func objectsARN(bucket, prefix string) string {
	return bucketARN(bucket) + "/" + keyPrefix(prefix) + "*"
}

// ownStatements are the bucket policy statements setup maintains.
func ownStatements(bucket, prefix string) []statement {
	return []statement{
		{
			"Sid":       SidDenyInsecureTransport,
			"Effect":    "Deny",
			"Principal": "*",
			"Action":    "s3:*",
			"Resource":  []any{bucketARN(bucket), bucketARN(bucket) + "/*"},
			"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
		},
		{
			"Sid":       SidDenyVersionDelete,
			"Effect":    "Deny",
			"Principal": "*",
			"Action":    []any{"s3:DeleteBucket", "s3:DeleteObjectVersion"},
			"Resource":  []any{bucketARN(bucket), objectsARN(bucket, prefix)},
		},
	}
}

// mergePolicy puts want into the policy document current (may be empty),
// matching statements by Sid. It returns the new document and the Sids
// added or replaced; when none, the document needs no change.
func mergePolicy(current string, want []statement) (doc []byte, changed []string, kept int, err error) {
	top := map[string]json.RawMessage{}
	var stmts []json.RawMessage
	if current != "" {
		if err := json.Unmarshal([]byte(current), &top); err != nil {
			return nil, nil, 0, fmt.Errorf("existing bucket policy is not a JSON object: %w", err)
		}
		if raw, ok := top["Statement"]; ok {
			// The policy grammar allows a single statement object.
			if err := json.Unmarshal(raw, &stmts); err != nil {
				stmts = []json.RawMessage{raw}
			}
		}
	}
	if _, ok := top["Version"]; !ok {
		top["Version"] = json.RawMessage(`"2012-10-17"`)
	}

	index := map[string]int{}
	for i, raw := range stmts {
		var s statement
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, nil, 0, fmt.Errorf("existing bucket policy statement %d is not a JSON object: %w", i+1, err)
		}
		if sid, ok := s["Sid"].(string); ok && sid != "" {
			index[sid] = i
		}
	}
	kept = len(stmts)
	for _, w := range want {
		sid := w["Sid"].(string)
		raw, err := json.Marshal(w)
		if err != nil {
			return nil, nil, 0, err
		}
		i, ok := index[sid]
		if !ok {
			stmts = append(stmts, raw)
			changed = append(changed, sid)
			continue
		}
		kept--
		var have, mine statement
		_ = json.Unmarshal(stmts[i], &have) // parsed above
		_ = json.Unmarshal(raw, &mine)      // compare JSON values with JSON values
		if !sameStatement(have, mine) {
			stmts[i] = raw
			changed = append(changed, sid)
		}
	}
	if len(changed) == 0 {
		return nil, nil, kept, nil
	}
	top["Statement"], err = json.Marshal(stmts)
	if err != nil {
		return nil, nil, 0, err
	}
	doc, err = json.Marshal(top)
	if err != nil {
		return nil, nil, 0, err
	}
	if len(doc) > policyMaxBytes {
		return nil, nil, 0, fmt.Errorf("merged bucket policy is %d bytes, over the %d-byte limit of S3", len(doc), policyMaxBytes)
	}
	return doc, changed, kept, nil
}

// sameStatement compares two statements by meaning, since stores rewrite
// policies they return: "*" becomes {"AWS":["*"]}, single strings become
// lists, booleans become strings.
func sameStatement(a, b statement) bool {
	return reflect.DeepEqual(canonicalStatement(a), canonicalStatement(b))
}

func canonicalStatement(s statement) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		switch k {
		case "Action", "NotAction", "Resource", "NotResource":
			out[k] = stringSet(v)
		case "Principal", "NotPrincipal":
			if str, ok := v.(string); ok {
				v = map[string]any{"AWS": str}
			}
			out[k] = mapOfSets(v)
		case "Condition":
			m, ok := v.(map[string]any)
			if !ok {
				out[k] = v
				continue
			}
			c := make(map[string]any, len(m))
			for op, kv := range m {
				c[op] = mapOfSets(kv)
			}
			out[k] = c
		default:
			out[k] = v
		}
	}
	return out
}

func mapOfSets(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string][]string, len(m))
	for k, vv := range m {
		out[k] = stringSet(vv)
	}
	return out
}

// stringSet turns a JSON scalar or list into a sorted, duplicate-free list.
func stringSet(v any) []string {
	var list []any
	switch v := v.(type) {
	case []any:
		list = v
	default:
		list = []any{v}
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range list {
		var s string
		switch e := e.(type) {
		case string:
			s = e
		case bool:
			s = strconv.FormatBool(e)
		default:
			b, _ := json.Marshal(e)
			s = string(b)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// SidDenyOverwrite is the uploader policy's statement that refuses every write that could
// replace an object: a PutObject or CompleteMultipartUpload without If-None-Match.
const SidDenyOverwrite = "PgoffsiteDenyOverwrite"

// UploaderOptions vary the uploader's policy.
type UploaderOptions struct {
	// KMSKeyARN, for a bucket encrypted with that KMS key: uploading under SSE-KMS also needs
	// kms:GenerateDataKey (to start an upload) and kms:Decrypt (to add parts and complete a
	// multipart upload) on it. Without s3:GetObject, kms:Decrypt does not let the uploader read
	// archives.
	KMSKeyARN string
	// NoConditionalWrites leaves out SidDenyOverwrite, for S3-compatible stores whose policy
	// language lacks its condition keys: MinIO refuses a policy that names s3:if-none-match or
	// s3:ObjectCreationOperation ("invalid condition key"). There the uploader's keys can
	// overwrite an archive, and pgoffsite status and verify are what tell.
	NoConditionalWrites bool
}

// UploaderPolicy is the IAM policy for the credentials the backup job runs
// with: write new objects under prefix and abort its own failed multipart
// uploads, tag them with a retention class, and look up RETENTION's marker
// objects, over TLS, and nothing else. s3:PutObject also authorizes
// CreateMultipartUpload, UploadPart and CompleteMultipartUpload; listing
// parts (s3:ListMultipartUploadParts) is not needed to upload, so it is not
// granted. No Get, List or Delete: stolen credentials cannot read or destroy
// archives; and no write without If-None-Match: they cannot replace one.
func UploaderPolicy(bucket, prefix string) ([]byte, error) {
	return UploaderPolicyWith(bucket, prefix, UploaderOptions{})
}

// UploaderPolicyKMS is UploaderPolicy for a bucket encrypted with the KMS key keyARN.
func UploaderPolicyKMS(bucket, prefix, keyARN string) ([]byte, error) {
	return UploaderPolicyWith(bucket, prefix, UploaderOptions{KMSKeyARN: keyARN})
}

// UploaderPolicyWith is UploaderPolicy varied by o.
func UploaderPolicyWith(bucket, prefix string, o UploaderOptions) ([]byte, error) {
	if err := validBucketName(bucket); err != nil {
		return nil, fmt.Errorf("bucket: uploader policy: %w", err)
	}
	if err := validPrefix(prefix); err != nil {
		return nil, fmt.Errorf("bucket: uploader policy: %w", err)
	}
	stmts := []statement{{
		"Sid":       "PgoffsiteUploadOnly",
		"Effect":    "Allow",
		"Action":    []string{"s3:PutObject", "s3:AbortMultipartUpload"},
		"Resource":  objectsARN(bucket, prefix),
		"Condition": tlsOnly(),
	}}
	if !o.NoConditionalWrites {
		// S3 overwrites an object by default, and versioning then keeps the replaced archive
		// only until the lifecycle's noncurrent expiry: the write above must never replace.
		// AWS's "Enforce conditional writes on Amazon S3 buckets" (S3 User Guide) enforces
		// If-None-Match with the condition key s3:if-none-match, and says that multipart uploads
		// must be exempted with s3:ObjectCreationOperation, because CreateMultipartUpload,
		// UploadPart and UploadPartCopy accept no conditional header. PutObject and
		// CompleteMultipartUpload — both authorized as s3:PutObject — create the object
		// (s3:ObjectCreationOperation true) and carry If-None-Match: they are denied without it;
		// the exempt calls create nothing that can be seen until a completion that is itself
		// checked. CopyObject without the header is refused too (pgoffsite never copies).
		stmts = append(stmts, statement{
			"Sid":      SidDenyOverwrite,
			"Effect":   "Deny",
			"Action":   []string{"s3:PutObject"},
			"Resource": objectsARN(bucket, prefix),
			"Condition": map[string]any{
				"Null": map[string]any{"s3:if-none-match": "true"},
				"Bool": map[string]any{"s3:ObjectCreationOperation": "true"},
			},
		})
	}
	stmts = append(stmts, statement{
		// RETENTION: an archive is tagged retention=CLASS by the request that creates it, which
		// AWS authorizes as s3:PutObjectTagging too. The conditions allow that one tag key with
		// its four values and nothing else; retagging an existing archive is the same action,
		// but can only ever set one of those classes.
		"Sid":      "PgoffsiteTagRetention",
		"Effect":   "Allow",
		"Action":   []string{"s3:PutObjectTagging"},
		"Resource": objectsARN(bucket, prefix),
		"Condition": map[string]any{
			"Bool":                      map[string]any{"aws:SecureTransport": "true"},
			"StringEquals":              map[string]any{"s3:RequestObjectTag/" + retention.TagKey: retentionClasses()},
			"ForAllValues:StringEquals": map[string]any{"s3:RequestObjectTagKeys": []string{retention.TagKey}},
		},
	}, statement{
		// RETENTION's markers: whether a period already has an archive is asked by listing
		// exactly one marker key, allowed under the marker prefix alone. Without s3:ListBucket
		// S3 answers a HeadObject of a missing key 403, not 404, so listing is what works;
		// archives can still not be listed, read or deleted.
		"Sid":      "PgoffsiteRetentionMarkers",
		"Effect":   "Allow",
		"Action":   []string{"s3:ListBucket"},
		"Resource": bucketARN(bucket),
		"Condition": map[string]any{
			"Bool":       map[string]any{"aws:SecureTransport": "true"},
			"StringLike": map[string]any{"s3:prefix": []string{MarkerPrefix(prefix) + "*"}},
		},
	})
	if o.KMSKeyARN != "" {
		stmts = append(stmts, statement{
			"Sid":       "PgoffsiteUploadEncrypt",
			"Effect":    "Allow",
			"Action":    []string{"kms:GenerateDataKey", "kms:Decrypt"},
			"Resource":  o.KMSKeyARN,
			"Condition": tlsOnly(),
		})
	}
	return policyDoc(stmts)
}

// ReaderPolicy is the IAM policy for credentials that check archives: read
// and list what is under prefix with its versions, read the lifecycle rules, and write the records
// of verifications (keys ending .verified.json, archive.VerifiedSuffix) that
// pgoffsite status shows, over TLS. No other write, no delete: an archive, a
// manifest or any other key cannot be written with them.
func ReaderPolicy(bucket, prefix string) ([]byte, error) {
	if err := validBucketName(bucket); err != nil {
		return nil, fmt.Errorf("bucket: reader policy: %w", err)
	}
	if err := validPrefix(prefix); err != nil {
		return nil, fmt.Errorf("bucket: reader policy: %w", err)
	}
	// Listing versions (ListObjectVersions) is how status and verify see an archive that was
	// overwritten: the replaced bytes stay as a noncurrent version.
	list := statement{
		"Sid":       "PgoffsiteList",
		"Effect":    "Allow",
		"Action":    []string{"s3:ListBucket", "s3:ListBucketVersions"},
		"Resource":  bucketARN(bucket),
		"Condition": tlsOnly(),
	}
	if kp := keyPrefix(prefix); kp != "" {
		list["Condition"] = map[string]any{
			"Bool":       map[string]any{"aws:SecureTransport": "true"},
			"StringLike": map[string]any{"s3:prefix": []string{kp, kp + "*"}},
		}
	}
	return policyDoc([]statement{
		{
			"Sid":       "PgoffsiteRead",
			"Effect":    "Allow",
			"Action":    []string{"s3:GetObject", "s3:GetObjectAttributes"},
			"Resource":  objectsARN(bucket, prefix),
			"Condition": tlsOnly(),
		},
		list,
		{
			// `pgoffsite check` compares the bucket's lifecycle rules with RETENTION.
			"Sid":       "PgoffsiteReadLifecycle",
			"Effect":    "Allow",
			"Action":    []string{"s3:GetLifecycleConfiguration"},
			"Resource":  bucketARN(bucket),
			"Condition": tlsOnly(),
		},
		{
			"Sid":       "PgoffsiteRecordVerification",
			"Effect":    "Allow",
			"Action":    []string{"s3:PutObject"},
			"Resource":  objectsARN(bucket, prefix) + ".verified.json",
			"Condition": tlsOnly(),
		},
	})
}

// MarkerPrefix is where RETENTION's markers live in the bucket: under the archive prefix.
func MarkerPrefix(prefix string) string { return keyPrefix(prefix) + retention.MarkerPrefix }

func retentionClasses() []string {
	var out []string
	for _, c := range retention.Classes {
		out = append(out, string(c))
	}
	return out
}

func tlsOnly() map[string]any {
	return map[string]any{"Bool": map[string]any{"aws:SecureTransport": "true"}}
}

func policyDoc(stmts []statement) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"Version":   "2012-10-17",
		"Statement": stmts,
	}, "", "  ")
}
