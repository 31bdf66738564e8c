package bucket

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const foreignStatement = `{"Sid":"Partner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/shared/*"}`

func statementsOf(t *testing.T, doc []byte) []statement {
	t.Helper()
	var p struct{ Statement []statement }
	if err := json.Unmarshal(doc, &p); err != nil {
		t.Fatalf("policy %s: %v", doc, err)
	}
	return p.Statement
}

func TestMergePolicy(t *testing.T) {
	own := ownStatements("b", "pg")
	ownJSON := func(i int) string { b, _ := json.Marshal(own[i]); return string(b) }
	// How MinIO returns our statements: lists everywhere, Principal as a map.
	minioForm := `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"PgoffsiteDenyInsecureTransport","Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:*"],"Resource":["arn:aws:s3:::b/*","arn:aws:s3:::b"],"Condition":{"Bool":{"aws:SecureTransport":[false]}}},` +
		`{"Sid":"PgoffsiteDenyVersionDelete","Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:DeleteObjectVersion","s3:DeleteBucket"],"Resource":["arn:aws:s3:::b/pg/*","arn:aws:s3:::b"]}]}`

	tests := []struct {
		name        string
		current     string
		wantChanged []string
		wantSids    []string
	}{
		{"no policy", "", []string{SidDenyInsecureTransport, SidDenyVersionDelete}, []string{SidDenyInsecureTransport, SidDenyVersionDelete}},
		{"foreign statement kept", `{"Version":"2012-10-17","Statement":[` + foreignStatement + `]}`,
			[]string{SidDenyInsecureTransport, SidDenyVersionDelete}, []string{"Partner", SidDenyInsecureTransport, SidDenyVersionDelete}},
		{"single statement object", `{"Version":"2012-10-17","Statement":` + foreignStatement + `}`,
			[]string{SidDenyInsecureTransport, SidDenyVersionDelete}, []string{"Partner", SidDenyInsecureTransport, SidDenyVersionDelete}},
		{"ours in the store's form", minioForm, nil, nil},
		{"ours replaced in place when changed", `{"Version":"2012-10-17","Statement":[` +
			strings.Replace(ownJSON(1), "b/pg/*", "b/other/*", 1) + `,` + foreignStatement + `,` + ownJSON(0) + `]}`,
			[]string{SidDenyVersionDelete}, []string{SidDenyVersionDelete, "Partner", SidDenyInsecureTransport}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, changed, _, err := mergePolicy(tc.current, own)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(changed, tc.wantChanged) {
				t.Errorf("changed = %q, want %q", changed, tc.wantChanged)
			}
			if tc.wantSids == nil {
				if doc != nil {
					t.Errorf("document returned without change: %s", doc)
				}
				return
			}
			stmts := statementsOf(t, doc)
			var sids []string
			for _, s := range stmts {
				sids = append(sids, s["Sid"].(string))
				if s["Sid"] == "Partner" {
					var want statement
					_ = json.Unmarshal([]byte(foreignStatement), &want)
					if !reflect.DeepEqual(s, want) {
						t.Errorf("foreign statement changed: %v", s)
					}
				}
				if s["Sid"] == SidDenyVersionDelete && !strings.Contains(jsonString(s), "arn:aws:s3:::b/pg/*") {
					t.Errorf("version-delete statement not replaced: %v", s)
				}
			}
			if !slices.Equal(sids, tc.wantSids) {
				t.Errorf("statements = %q, want %q", sids, tc.wantSids)
			}
			// Merging the result again changes nothing.
			if _, again, _, _ := mergePolicy(string(doc), own); len(again) != 0 {
				t.Errorf("second merge changed %q", again)
			}
		})
	}

	if _, _, _, err := mergePolicy(`not json`, own); err == nil {
		t.Error("merging into a malformed policy: no error")
	}
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestOwnStatements(t *testing.T) {
	st := ownStatements("b", "/pg/")
	tls := canonicalStatement(st[0])
	if tls["Effect"] != "Deny" || !reflect.DeepEqual(tls["Condition"], map[string]any{"Bool": map[string][]string{"aws:SecureTransport": {"false"}}}) {
		t.Errorf("insecure transport statement: %v", tls)
	}
	if got := tls["Resource"]; !reflect.DeepEqual(got, []string{"arn:aws:s3:::b", "arn:aws:s3:::b/*"}) {
		t.Errorf("TLS statement covers %v, want the bucket and all its objects", got)
	}
	del := canonicalStatement(st[1])
	if !reflect.DeepEqual(del["Action"], []string{"s3:DeleteBucket", "s3:DeleteObjectVersion"}) ||
		!reflect.DeepEqual(del["Resource"], []string{"arn:aws:s3:::b", "arn:aws:s3:::b/pg/*"}) ||
		!reflect.DeepEqual(del["Principal"], map[string][]string{"AWS": {"*"}}) {
		t.Errorf("version delete statement: %v", del)
	}
}

// denies evaluates the overwrite statement's conditions for a request to write an object: with
// or without the If-None-Match header, creating the object or not (s3:ObjectCreationOperation).
func denies(st map[string]any, ifNoneMatch, creates bool) bool {
	c := st["Condition"].(map[string]any)
	for op, kv := range c {
		for key, want := range kv.(map[string]any) {
			var matched bool
			switch {
			case op == "Null" && key == "s3:if-none-match":
				matched = strconv.FormatBool(!ifNoneMatch) == want
			case op == "Bool" && key == "s3:ObjectCreationOperation":
				matched = strconv.FormatBool(creates) == want
			default:
				panic("unexpected condition " + op + " " + key)
			}
			if !matched {
				return false
			}
		}
	}
	return true
}

// policyGrants flattens a policy into "Effect Action Resource" lines.
func policyGrants(t *testing.T, doc []byte) (grants []string, conditions []string) {
	t.Helper()
	for _, s := range statementsOf(t, doc) {
		c := canonicalStatement(s)
		for _, a := range c["Action"].([]string) {
			for _, r := range c["Resource"].([]string) {
				grants = append(grants, c["Effect"].(string)+" "+a+" "+r)
			}
		}
		conditions = append(conditions, jsonString(c["Condition"]))
	}
	sort.Strings(grants)
	return grants, conditions
}

func TestUploaderPolicy(t *testing.T) {
	doc, err := UploaderPolicy("bkt", "pg/")
	if err != nil {
		t.Fatal(err)
	}
	grants, conds := policyGrants(t, doc)
	want := []string{"Allow s3:AbortMultipartUpload arn:aws:s3:::bkt/pg/*", "Allow s3:ListBucket arn:aws:s3:::bkt",
		"Allow s3:PutObject arn:aws:s3:::bkt/pg/*", "Allow s3:PutObjectTagging arn:aws:s3:::bkt/pg/*",
		"Deny s3:PutObject arn:aws:s3:::bkt/pg/*"}
	if !slices.Equal(grants, want) {
		t.Errorf("grants = %q, want %q", grants, want)
	}
	// Listing only the markers, tagging only with the retention tag and its four values, and no
	// write that could replace an object: PutObject and CompleteMultipartUpload (they create the
	// object) without If-None-Match are denied; CreateMultipartUpload and UploadPart, which
	// carry no conditional header, are exempt, as AWS documents for enforcing conditional
	// writes.
	wantConds := []string{`{"Bool":{"aws:SecureTransport":["true"]}}`,
		`{"Bool":{"s3:ObjectCreationOperation":["true"]},"Null":{"s3:if-none-match":["true"]}}`,
		`{"Bool":{"aws:SecureTransport":["true"]},"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["retention"]},"StringEquals":{"s3:RequestObjectTag/retention":["daily","monthly","weekly","yearly"]}}`,
		`{"Bool":{"aws:SecureTransport":["true"]},"StringLike":{"s3:prefix":["pg/_pgoffsite-retention/*"]}}`}
	if !slices.Equal(conds, wantConds) {
		t.Errorf("conditions %q, want %q", conds, wantConds)
	}
	deny := statementsOf(t, doc)[1]
	if deny["Sid"] != SidDenyOverwrite || deny["Effect"] != "Deny" || deny["Principal"] != nil {
		t.Errorf("overwrite statement %v", deny)
	}
	// What the statement means, request by request, evaluated as IAM does (every condition
	// operator of a statement must match; Null true matches a key absent from the request).
	for _, req := range []struct {
		call        string
		ifNoneMatch bool
		creates     bool // s3:ObjectCreationOperation
		denied      bool
	}{
		{"PutObject with If-None-Match: *", true, true, false},
		{"PutObject without If-None-Match (an overwrite)", false, true, true},
		{"CreateMultipartUpload", false, false, false},
		{"UploadPart", false, false, false},
		{"CompleteMultipartUpload with If-None-Match: *", true, true, false},
		{"CompleteMultipartUpload without If-None-Match", false, true, true},
		{"CopyObject without If-None-Match", false, true, true},
	} {
		if got := denies(deny, req.ifNoneMatch, req.creates); got != req.denied {
			t.Errorf("%s: denied %v, want %v", req.call, got, req.denied)
		}
	}
	plain, err := UploaderPolicyWith("bkt", "pg", UploaderOptions{NoConditionalWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := policyGrants(t, plain); slices.Contains(g, "Deny s3:PutObject arn:aws:s3:::bkt/pg/*") || strings.Contains(string(plain), "if-none-match") {
		t.Errorf("NoConditionalWrites kept the overwrite statement:\n%s", plain)
	}

	doc, err = UploaderPolicyKMS("bkt", "", "arn:aws:kms:eu-west-1:111122223333:key/k1")
	if err != nil {
		t.Fatal(err)
	}
	grants, _ = policyGrants(t, doc)
	want = []string{
		"Allow kms:Decrypt arn:aws:kms:eu-west-1:111122223333:key/k1",
		"Allow kms:GenerateDataKey arn:aws:kms:eu-west-1:111122223333:key/k1",
		"Allow s3:AbortMultipartUpload arn:aws:s3:::bkt/*",
		"Allow s3:ListBucket arn:aws:s3:::bkt",
		"Allow s3:PutObject arn:aws:s3:::bkt/*",
		"Allow s3:PutObjectTagging arn:aws:s3:::bkt/*",
		"Deny s3:PutObject arn:aws:s3:::bkt/*",
	}
	if !slices.Equal(grants, want) {
		t.Errorf("KMS grants = %q, want %q", grants, want)
	}

	for _, bad := range [][2]string{{"B", "pg"}, {"bkt", "pg/*"}, {"bkt", "${aws:username}"}} {
		if _, err := UploaderPolicy(bad[0], bad[1]); err == nil {
			t.Errorf("UploaderPolicy(%q, %q): no error", bad[0], bad[1])
		}
	}
}

func TestReaderPolicy(t *testing.T) {
	doc, err := ReaderPolicy("bkt", "pg")
	if err != nil {
		t.Fatal(err)
	}
	grants, conds := policyGrants(t, doc)
	want := []string{
		"Allow s3:GetLifecycleConfiguration arn:aws:s3:::bkt",
		"Allow s3:GetObject arn:aws:s3:::bkt/pg/*",
		"Allow s3:GetObjectAttributes arn:aws:s3:::bkt/pg/*",
		"Allow s3:ListBucket arn:aws:s3:::bkt",
		"Allow s3:ListBucketVersions arn:aws:s3:::bkt",
		"Allow s3:PutObject arn:aws:s3:::bkt/pg/*.verified.json",
	}
	if !slices.Equal(grants, want) {
		t.Errorf("grants = %q, want %q", grants, want)
	}
	for _, c := range conds {
		if !strings.Contains(c, `"aws:SecureTransport":["true"]`) {
			t.Errorf("condition %s lacks TLS only", c)
		}
	}
	if !strings.Contains(strings.Join(conds, " "), `"s3:prefix":["pg/","pg/*"]`) {
		t.Errorf("listing not limited to the prefix: %q", conds)
	}
}
