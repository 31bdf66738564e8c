package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/sftpstore"
)

// testKey is a throwaway ed25519 key: its private text (OpenSSH format) and public key.
func testKey(t *testing.T, passphrase string) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "pgoffsite test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "pgoffsite test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block)), sshPub
}

const (
	b2KeyID  = "0034b2keyidEXAMPLE01"
	b2Secret = "K003b2SECRETsecretSECRETsecret42"
)

// several is a valid configuration with four destinations: AWS, Backblaze B2, a VPS over SFTP
// and a mounted volume.
func several(t *testing.T) (map[string]string, ssh.PublicKey) {
	t.Helper()
	key, hostKey := testKey(t, "")
	return with(valid(), map[string]string{
		"ARCHIVE_URL": "s3://acme-db-archive/pgbackups " +
			"s3://acme-offsite/db?endpoint=https://s3.eu-central-003.backblazeb2.com&region=eu-central-003&path_style=true&storage_class=standard&sse=aes256&keys=B2\n" +
			"  sftp://backup@vps.example.com:2222//srv//pgoffsite/\tfile:///mnt/archive",
		"B2_ACCESS_KEY_ID": b2KeyID, "B2_SECRET_ACCESS_KEY": b2Secret,
		"SFTP_PRIVATE_KEY": key,
		"SFTP_KNOWN_HOSTS": "# pinned by hand\n" + knownhosts.Line([]string{"[vps.example.com]:2222"}, hostKey) + "\n",
	}), hostKey
}

func TestSeveralDestinations(t *testing.T) {
	vars, _ := several(t)
	setEnv(t, vars)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	want := []spec.Archive{
		s3store.Settings{Bucket: "acme-db-archive", Prefix: "pgbackups"}.Archive(),
		s3store.Settings{Bucket: "acme-offsite", Prefix: "db", Endpoint: "https://s3.eu-central-003.backblazeb2.com", Region: "eu-central-003",
			PathStyle: &yes, StorageClass: "STANDARD", SSE: "AES256", Keys: "B2"}.Archive(),
		sftpstore.Settings{User: "backup", Host: "vps.example.com", Port: 2222, Dir: "/srv/pgoffsite", KeyVar: "SFTP_PRIVATE_KEY"}.Archive(),
		filestore.Settings{Dir: "/mnt/archive"}.Archive(),
	}
	if !reflect.DeepEqual(c.Archives, want) {
		t.Errorf("Archives\n got %+v\nwant %+v", c.Archives, want)
	}
	if !reflect.DeepEqual(c.Archive, want[0]) {
		t.Errorf("Archive = %+v, want the first destination", c.Archive)
	}
	var names []string
	for _, a := range c.Archives {
		names = append(names, a.String())
	}
	if got := strings.Join(names, " "); got != "s3://acme-db-archive/pgbackups s3://acme-offsite/db sftp://backup@vps.example.com:2222/srv/pgoffsite file:///mnt/archive" {
		t.Errorf("names %s", got)
	}
	// Empty means the global setting: the first destination takes S3_STORAGE_CLASS's default.
	if s3of(c.Archives[0]).StorageClass != "" || c.S3StorageClass != "STANDARD" {
		t.Errorf("storage class %q, global %q", s3of(c.Archives[0]).StorageClass, c.S3StorageClass)
	}
	wantSecret := []string{"AGE_IDENTITY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "B2_ACCESS_KEY_ID", "B2_SECRET_ACCESS_KEY", "BUNDLE_SIGNING_KEY", "HEROKU_API_KEY", "SFTP_PRIVATE_KEY"}
	if got := c.SecretVars(); !reflect.DeepEqual(got, wantSecret) {
		t.Errorf("SecretVars = %v, want %v", got, wantSecret)
	}
}

func TestSecretVarsKeyNamed(t *testing.T) {
	key, hostKey := testKey(t, "")
	setEnv(t, with(valid(), map[string]string{
		"ARCHIVE_URL": "sftp://a@one.example.com/x?key=ONE_KEY sftp://b@two.example.com/y?key=TWO_KEY sftp://c@two.example.com/z",
		"ONE_KEY":     key, "TWO_KEY": key, "SFTP_PRIVATE_KEY": key,
		"SFTP_KNOWN_HOSTS": knownhosts.Line([]string{"one.example.com", "two.example.com"}, hostKey),
	}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if sftpOf(c.Archives[0]).KeyVar != "ONE_KEY" || sftpOf(c.Archives[1]).KeyVar != "TWO_KEY" || sftpOf(c.Archives[2]).KeyVar != "SFTP_PRIVATE_KEY" {
		t.Errorf("KeyVar %+v", c.Archives)
	}
	for _, v := range []string{"ONE_KEY", "TWO_KEY", "SFTP_PRIVATE_KEY", "AGE_IDENTITY"} {
		if !slices.Contains(c.SecretVars(), v) {
			t.Errorf("SecretVars %v lacks %s", c.SecretVars(), v)
		}
	}
	// No AWS variable is needed without an s3:// destination.
	if c.Region != "" {
		t.Errorf("region %q", c.Region)
	}
}

// A destination that says its region and keys needs neither AWS_REGION nor AWS credentials.
func TestDestinationOwnSettings(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{
		"ARCHIVE_URL":      "s3://acme-offsite?region=auto&endpoint=https://acct.r2.cloudflarestorage.com&keys=R2&sse=aws:kms",
		"R2_ACCESS_KEY_ID": b2KeyID, "R2_SECRET_ACCESS_KEY": b2Secret, "S3_SSE_KMS_KEY_ID": "alias/offsite",
	}, "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if a := s3of(c.Archive); a.Region != "auto" || a.Keys != "R2" || a.SSE != "aws:kms" || c.S3SSEKMSKeyID != "alias/offsite" {
		t.Errorf("%+v", a)
	}
	// Plain http to this machine (a local MinIO) is allowed, as for AWS_ENDPOINT_URL_S3.
	setEnv(t, with(valid(), map[string]string{"ARCHIVE_URL": "s3://acme-local?endpoint=http://127.0.0.1:9000/&path_style=false"}))
	if c, err := Load(); err != nil || s3of(c.Archive).Endpoint != "http://127.0.0.1:9000" || s3of(c.Archive).PathStyle == nil || *s3of(c.Archive).PathStyle {
		t.Errorf("loopback endpoint: %+v, %v", c.Archive, err)
	}
	// A second destination without them needs them again.
	setEnv(t, with(valid(), map[string]string{
		"ARCHIVE_URL":      "s3://acme-offsite?region=auto&keys=R2 s3://acme-db-archive",
		"R2_ACCESS_KEY_ID": b2KeyID, "R2_SECRET_ACCESS_KEY": b2Secret,
	}, "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
	_, err = Load()
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION: not set") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID: no AWS credentials") {
		t.Errorf("Load = %v", err)
	}
}

func TestDestinationMistakes(t *testing.T) {
	key, hostKey := testKey(t, "")
	encrypted, _ := testKey(t, "correct horse")
	pinned := knownhosts.Line([]string{"vps.example.com", "[vps.example.com]:2222"}, hostKey)
	base := with(valid(), map[string]string{"SFTP_PRIVATE_KEY": key, "SFTP_KNOWN_HOSTS": pinned,
		"B2_ACCESS_KEY_ID": b2KeyID, "B2_SECRET_ACCESS_KEY": b2Secret})
	const b2 = "s3://acme-offsite?endpoint=https://s3.example.com&keys=B2"
	tests := []struct {
		name string
		set  map[string]string
		del  []string
		want string // the variable named
		msg  string // a piece of the message
		fix  string // a piece of the fix
	}{
		{"endpoint plain http", map[string]string{"ARCHIVE_URL": "s3://acme?endpoint=http://s3.example.com"}, nil, "ARCHIVE_URL", `endpoint="http://s3.example.com" uses plain http`, "loopback"},
		{"endpoint garbage", map[string]string{"ARCHIVE_URL": "s3://acme?endpoint=s3.example.com"}, nil, "ARCHIVE_URL", "endpoint=", "endpoint=https://host"},
		{"endpoint ftp", map[string]string{"ARCHIVE_URL": "s3://acme?endpoint=ftp://127.0.0.1"}, nil, "ARCHIVE_URL", "not an absolute http(s) URL", "endpoint=https://host"},
		{"region", map[string]string{"ARCHIVE_URL": "s3://acme?region=eu_west"}, nil, "ARCHIVE_URL", "region= is not a region name", "region=auto"},
		{"path style", map[string]string{"ARCHIVE_URL": "s3://acme?path_style=yes"}, nil, "ARCHIVE_URL", "path_style= is not a boolean", "path_style=true"},
		{"storage class", map[string]string{"ARCHIVE_URL": "s3://acme?storage_class=COLD"}, nil, "ARCHIVE_URL", `storage_class="COLD" is not an S3 storage class`, "GLACIER_IR"},
		{"sse", map[string]string{"ARCHIVE_URL": "s3://acme?sse=rot13"}, nil, "ARCHIVE_URL", `sse="rot13" is not an encryption mode`, "aws:kms"},
		{"kms key without kms", map[string]string{"ARCHIVE_URL": "s3://acme?sse=AES256", "S3_SSE_KMS_KEY_ID": "alias/k"}, nil, "S3_SSE_KMS_KEY_ID", "not aws:kms", "S3_SSE=aws:kms"},
		{"unknown parameter", map[string]string{"ARCHIVE_URL": "s3://acme?acl=private"}, nil, "ARCHIVE_URL", `unknown parameter "acl"`, "endpoint=, region=, path_style=, storage_class=, sse=, keys=NAME"},
		{"parameter twice", map[string]string{"ARCHIVE_URL": "s3://acme?region=a&region=b"}, nil, "ARCHIVE_URL", "region= more than once", "keys=NAME"},
		{"bad query", map[string]string{"ARCHIVE_URL": "s3://acme?region=%zz"}, nil, "ARCHIVE_URL", "cannot be read", "keys=NAME"},
		{"keys lowercase", map[string]string{"ARCHIVE_URL": "s3://acme?keys=b2"}, nil, "ARCHIVE_URL", "keys= does not name variables", "B2_ACCESS_KEY_ID"},
		{"keys secret missing", map[string]string{"ARCHIVE_URL": b2}, []string{"B2_SECRET_ACCESS_KEY"}, "B2_SECRET_ACCESS_KEY", "not set, and ARCHIVE_URL's destination has keys=B2", "heroku config:set B2_SECRET_ACCESS_KEY=..."},
		{"keys id missing", map[string]string{"ARCHIVE_URL": b2}, []string{"B2_ACCESS_KEY_ID"}, "B2_ACCESS_KEY_ID", "not set, and ARCHIVE_URL's destination has keys=B2", "heroku config:set B2_ACCESS_KEY_ID=..."},
		{"file with password", map[string]string{"ARCHIVE_URL": "file://u:p4ssword@/x"}, nil, "ARCHIVE_URL", "credentials", "SFTP_PRIVATE_KEY"},
		{"sftp with password", map[string]string{"ARCHIVE_URL": "sftp://backup:p4ssword@vps.example.com/srv"}, nil, "ARCHIVE_URL", "has a password in it", "heroku config:set SFTP_PRIVATE_KEY="},
		{"sftp no user", map[string]string{"ARCHIVE_URL": "sftp://vps.example.com/srv"}, nil, "ARCHIVE_URL", "names no user", "sftp://user@host"},
		{"sftp no host", map[string]string{"ARCHIVE_URL": "sftp:///srv"}, nil, "ARCHIVE_URL", "names no host", "sftp://user@host"},
		{"sftp port zero", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com:0/srv"}, nil, "ARCHIVE_URL", "port outside 1-65535", "22 when left out"},
		{"sftp port too big", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com:65536/srv"}, nil, "ARCHIVE_URL", "port outside 1-65535", "22 when left out"},
		{"sftp no directory", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com"}, nil, "ARCHIVE_URL", "names no directory", "/srv/pgoffsite"},
		{"sftp root", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com//"}, nil, "ARCHIVE_URL", "names no directory", "/srv/pgoffsite"},
		{"sftp dot-dot", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv/../etc"}, nil, "ARCHIVE_URL", `".." path segment`, "sftp://backup@host/srv/archive"},
		{"sftp dot", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/./srv"}, nil, "ARCHIVE_URL", `"." or ".." path segment`, "without them"},
		{"sftp unknown parameter", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv?password=x"}, nil, "ARCHIVE_URL", `unknown parameter "password"`, "only key=NAME"},
		{"sftp key lowercase", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv?key=vps"}, nil, "ARCHIVE_URL", "key= does not name a variable", "key=VPS_PRIVATE_KEY"},
		{"sftp key var unset", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv?key=VPS_KEY"}, nil, "VPS_KEY", "not set (ARCHIVE_URL's destination has key=VPS_KEY)", `heroku config:set VPS_KEY="$(cat pgoffsite_ed25519)"`},
		{"no private key", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv"}, []string{"SFTP_PRIVATE_KEY"}, "SFTP_PRIVATE_KEY", "not set, and ARCHIVE_URL has an sftp:// destination", "ssh-keygen -t ed25519"},
		{"private key garbage", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv", "SFTP_PRIVATE_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPublicKeyNotPrivate"}, nil, "SFTP_PRIVATE_KEY", "does not hold a private key ssh can read", "BEGIN and END lines"},
		{"private key encrypted", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv", "SFTP_PRIVATE_KEY": encrypted}, nil, "SFTP_PRIVATE_KEY", "must be unencrypted, because the dyno cannot type a passphrase", "ssh-keygen -p"},
		{"named key encrypted", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv?key=VPS_KEY", "VPS_KEY": encrypted}, nil, "VPS_KEY", "holds an encrypted private key (ARCHIVE_URL's destination has key=VPS_KEY)", "heroku config:set VPS_KEY="},
		{"no known hosts", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv"}, []string{"SFTP_KNOWN_HOSTS"}, "SFTP_KNOWN_HOSTS", "not set", "`ssh-keyscan -p 22 vps.example.com`"},
		{"host not pinned", map[string]string{"ARCHIVE_URL": "sftp://backup@other.example.com/srv"}, nil, "SFTP_KNOWN_HOSTS", "no line for other.example.com", "`ssh-keyscan -p 22 other.example.com`"},
		// A line for port 22 does not pin another port: ssh writes [host]:port for those.
		{"port not pinned", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com:2200/srv"}, nil, "SFTP_KNOWN_HOSTS", "no line for [vps.example.com]:2200", "ssh-keyscan -p 2200 vps.example.com"},
		{"revoked only", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv", "SFTP_KNOWN_HOSTS": "@revoked " + pinned}, nil, "SFTP_KNOWN_HOSTS", "no line for vps.example.com", "ssh-keyscan"},
		{"known hosts garbage line", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv", "SFTP_KNOWN_HOSTS": pinned + "\nvps.example.com ssh-ed25519 notbase64!"}, nil, "SFTP_KNOWN_HOSTS", "line 2 is not a known_hosts line", "ssh-keyscan -p PORT HOST"},
		{"duplicate", map[string]string{"ARCHIVE_URL": "s3://acme-db-archive/x s3://acme-db-archive//x/"}, nil, "ARCHIVE_URL", "destination 2 (s3://acme-db-archive): is the same as destination 1", "once"},
		{"duplicate sftp host case", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv sftp://backup@VPS.example.com:22/srv/"}, nil, "ARCHIVE_URL", "is the same as destination 1", "once"},
		{"recipient is an identity", map[string]string{"ARCHIVE_RECIPIENTS": "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS"}, nil, "ARCHIVE_RECIPIENTS", "line 1 is a private key", "age-keygen -y"},
		{"recipient garbage", map[string]string{"ARCHIVE_RECIPIENTS": "# ops\nage1notarecipient"}, nil, "ARCHIVE_RECIPIENTS", "line 2", "one recipient per line"},
		{"recipients only comments", map[string]string{"ARCHIVE_RECIPIENTS": "# nobody"}, nil, "ARCHIVE_RECIPIENTS", "no recipient given", "age-keygen -y"},
		{"identity where backups run", map[string]string{"AGE_IDENTITY": "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS"}, nil, "AGE_IDENTITY", "is set where backups run", "heroku config:unset AGE_IDENTITY"},
		{"memory for two S3 destinations", map[string]string{"ARCHIVE_URL": "s3://acme-db-archive " + b2, "ARCHIVE_PART_SIZE": "16MiB", "ARCHIVE_MEMORY_LIMIT": "64MiB"}, nil, "ARCHIVE_MEMORY_LIMIT", "less than the 68 MiB that two download ranges and two parts of 16MiB for each of the 2 S3 destinations in ARCHIVE_URL need", "lower ARCHIVE_PART_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := loadProblems(t, with(base, tt.set, tt.del...))
			found := false
			for _, p := range ps {
				found = found || (p.Var == tt.want && strings.Contains(p.Message, tt.msg) && strings.Contains(p.Fix, tt.fix))
				if p.Fix == "" {
					t.Errorf("no fix: %s", p)
				}
			}
			if !found {
				t.Errorf("no problem for %s with message ~%q and fix ~%q in:\n%s", tt.want, tt.msg, tt.fix, ps)
			}
		})
	}
}

// A password in an sftp:// URL is refused as such, under ARCHIVE_URL, with the variable that
// must hold the destination's private key instead; never quoted, and never reported as an
// unnamed variable (": not set (... key=)").
func TestSFTPPasswordInURL(t *testing.T) {
	key, hostKey := testKey(t, "")
	base := with(valid(), map[string]string{"SFTP_PRIVATE_KEY": key,
		"SFTP_KNOWN_HOSTS": knownhosts.Line([]string{"vps.example.com"}, hostKey)})
	const password = "Tr0ub4dor-3pass"
	tests := []struct {
		name, url, keyVar string
		set               map[string]string
		del               []string
	}{
		{"default key", "sftp://backup:" + password + "@vps.example.com/srv/pgoffsite", "SFTP_PRIVATE_KEY", nil, nil},
		{"default key unset", "sftp://backup:" + password + "@vps.example.com/srv/pgoffsite", "SFTP_PRIVATE_KEY", nil, []string{"SFTP_PRIVATE_KEY"}},
		{"key=", "sftp://backup:" + password + "@vps.example.com/srv/pgoffsite?key=VPS_KEY", "VPS_KEY", map[string]string{"VPS_KEY": key}, nil},
		{"second of two", "s3://acme-db-archive sftp://backup:" + password + "@vps.example.com/srv/pgoffsite", "SFTP_PRIVATE_KEY", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := loadProblems(t, with(base, with(map[string]string{"ARCHIVE_URL": tt.url}, tt.set), tt.del...))
			found := false
			for _, p := range ps {
				if p.Var == "" || strings.HasSuffix(p.Message, "key=)") {
					t.Errorf("a problem without a variable: %s", p)
				}
				if p.Var == "ARCHIVE_URL" && strings.Contains(p.Message, "has a password in it") &&
					strings.Contains(p.Message, "private key only, never a password") &&
					strings.Contains(p.Fix, "heroku config:set "+tt.keyVar+"=") &&
					strings.Contains(p.Fix, "sftp://backup@vps.example.com/srv/pgoffsite") {
					found = true
				}
			}
			if !found {
				t.Errorf("no ARCHIVE_URL problem refusing the password and naming %s in:\n%s", tt.keyVar, ps)
			}
			if strings.Contains(ps.Error(), password) {
				t.Errorf("the password appears in:\n%s", ps)
			}
		})
	}
	// A URL too broken to read does not invent a variable either.
	ps := loadProblems(t, with(base, map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv#x"}))
	for _, p := range ps {
		if p.Var == "" {
			t.Errorf("a problem without a variable: %s", p)
		}
	}
}

// The problems of several destinations are all reported at once, each naming its destination.
func TestSeveralDestinationsSeveralProblems(t *testing.T) {
	encrypted, _ := testKey(t, "pass")
	setEnv(t, with(valid(), map[string]string{
		"ARCHIVE_URL": "s3://Bad_Bucket/x s3://acme-offsite?endpoint=http://s3.example.com&keys=B2&storage_class=COLD " +
			"sftp://backup@vps.example.com:2222/srv?key=VPS_KEY ftp://files.example.com/x s3://acme-offsite",
		"VPS_KEY": encrypted,
	}))
	_, err := Load()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load = %v", err)
	}
	for _, want := range []string{
		`ARCHIVE_URL: destination 1 (s3://Bad_Bucket): "Bad_Bucket" is not a valid S3 bucket name`,
		`ARCHIVE_URL: destination 2 (s3://acme-offsite): endpoint="http://s3.example.com" uses plain http`,
		`ARCHIVE_URL: destination 2 (s3://acme-offsite): storage_class="COLD" is not an S3 storage class`,
		`B2_ACCESS_KEY_ID: not set, and ARCHIVE_URL's destination 2 (s3://acme-offsite) has keys=B2`,
		`B2_SECRET_ACCESS_KEY: not set, and ARCHIVE_URL's destination 2 (s3://acme-offsite) has keys=B2`,
		`VPS_KEY: holds an encrypted private key (ARCHIVE_URL's destination 3 (sftp://vps.example.com:2222) has key=VPS_KEY)`,
		"SFTP_KNOWN_HOSTS: not set, and ARCHIVE_URL has an sftp:// destination: its host key must be pinned (no trust on first use) — on a machine you trust, run `ssh-keyscan -p 2222 vps.example.com`",
		`ARCHIVE_URL: destination 4 (ftp://files.example.com): "ftp://files.example.com/x" is neither s3://, sftp:// nor file://`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%s", want, err)
		}
	}
	// Destination 5 is fine on its own, and 2 has problems: not reported as a duplicate of it.
	if strings.Contains(err.Error(), "same as") {
		t.Errorf("a destination with problems counted as a duplicate:\n%s", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(ps) || len(ps) != 8 {
		t.Errorf("%d lines for %d problems, want 8:\n%s", n, len(ps), err)
	}
}

// No secret a destination reads appears in a message, wherever it is pasted.
func TestDestinationSecretsNeverShown(t *testing.T) {
	key, hostKey := testKey(t, "")
	keyLine := strings.Split(key, "\n")[1] // a line of the key's base64 body
	identity := "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS"
	base := with(valid(), map[string]string{"SFTP_PRIVATE_KEY": key, "SFTP_KNOWN_HOSTS": knownhosts.Line([]string{"h.example.com"}, hostKey),
		"B2_ACCESS_KEY_ID": b2KeyID, "B2_SECRET_ACCESS_KEY": b2Secret})
	tests := []struct {
		name   string
		set    map[string]string
		hidden []string
	}{
		{"secret access key as keys=", map[string]string{"ARCHIVE_URL": "s3://acme?keys=" + b2Secret}, []string{b2Secret}},
		{"secret access key as region", map[string]string{"ARCHIVE_URL": "s3://acme?region=" + b2Secret + "!&keys=B2"}, []string{b2Secret}},
		{"secret access key as parameter name", map[string]string{"ARCHIVE_URL": "s3://acme?" + b2Secret + "=1&keys=B2"}, []string{b2Secret}},
		{"secret access key as storage class", map[string]string{"ARCHIVE_URL": "s3://acme?storage_class=" + b2Secret + "&keys=B2"}, []string{b2Secret}},
		{"key id as sse", map[string]string{"ARCHIVE_URL": "s3://acme?sse=" + b2KeyID + "&keys=B2"}, []string{b2KeyID}},
		{"secret in endpoint query", map[string]string{"ARCHIVE_URL": "s3://acme?endpoint=http://s3.example.com/?sig%3D" + b2Secret}, []string{b2Secret}},
		{"password in sftp URL", map[string]string{"ARCHIVE_URL": "sftp://backup:hunter2pass@h.example.com/srv"}, []string{"hunter2pass"}},
		{"password in two URLs", map[string]string{"ARCHIVE_URL": "s3://acme sftp://backup:hunter2pass@h.example.com/srv"}, []string{"hunter2pass"}},
		{"secret as sftp key=", map[string]string{"ARCHIVE_URL": "sftp://backup@h.example.com/srv?key=" + b2Secret}, []string{b2Secret}},
		{"private key pasted as the archive", map[string]string{"ARCHIVE_URL": key}, []string{key, keyLine, keyLine[:30]}},
		{"private key line pasted as a target", map[string]string{"BACKUP_TARGETS": keyLine, "ARCHIVE_URL": "sftp://backup@h.example.com/srv"}, []string{keyLine, keyLine[:30]}},
		{"named key line pasted as a target", map[string]string{"BACKUP_TARGETS": "Shop " + keyLine, "ARCHIVE_URL": "s3://acme sftp://backup@h.example.com/srv?key=VPS_KEY", "VPS_KEY": key}, []string{keyLine, keyLine[:30]}},
		{"B2 secret pasted as a target", map[string]string{"BACKUP_TARGETS": b2Secret, "ARCHIVE_URL": "s3://acme?keys=B2"}, []string{b2Secret, b2Secret[:20]}},
		{"private key line pasted as the mode", map[string]string{"BACKUP_MODE": keyLine, "ARCHIVE_URL": "sftp://backup@h.example.com/srv"}, []string{keyLine, keyLine[:30]}},
		{"private key in known hosts", map[string]string{"ARCHIVE_URL": "sftp://backup@h.example.com/srv", "SFTP_KNOWN_HOSTS": key}, []string{keyLine, keyLine[:30]}},
		{"named key pasted as the log level", map[string]string{"ARCHIVE_URL": "sftp://backup@h.example.com/srv?key=VPS_KEY", "VPS_KEY": key, "LOG_LEVEL": keyLine}, []string{keyLine, keyLine[:30]}},
		{"identity", map[string]string{"AGE_IDENTITY": identity, "LOG_FORMAT": identity}, []string{identity}},
		{"identity as recipient", map[string]string{"ARCHIVE_RECIPIENTS": "age1abc\n" + identity}, []string{identity}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := loadProblems(t, with(base, tt.set))
			for _, h := range tt.hidden {
				if strings.Contains(ps.Error(), h) {
					t.Errorf("%q appears in:\n%s", h, ps)
				}
			}
		})
	}
}

// backup and check (Load) refuse an identity in their environment; verify and restore
// (LoadFor verify, restore) read archives back with it.
func TestAgeIdentityOnlyForReading(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"AGE_IDENTITY": "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS"}))
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "AGE_IDENTITY: is set where backups run") {
		t.Errorf("Load = %v", err)
	}
	if _, err := LoadFor("verify"); err != nil {
		t.Errorf("LoadFor(verify) = %v", err)
	}
	if _, err := LoadFor("restore"); err != nil {
		t.Errorf("LoadFor(restore) = %v", err)
	}
}

func TestRecipientsRecorded(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	_, sshPub := testKey(t, "")
	text := "# offline laptop\n" + id.Recipient().String() + "\n" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " ops"
	setEnv(t, with(valid(), map[string]string{"ARCHIVE_RECIPIENTS": "\n" + text + "\n"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Recipients != text {
		t.Errorf("Recipients = %q", c.Recipients)
	}
}

func TestKnownHostsForms(t *testing.T) {
	key, hostKey := testKey(t, "")
	line := func(hosts ...string) string { return knownhosts.Line(hosts, hostKey) }
	tests := []struct {
		name, url, hosts string
		ok               bool
	}{
		{"plain port 22", "sftp://b@vps.example.com/srv", line("vps.example.com"), true},
		{"explicit port 22 as plain", "sftp://b@vps.example.com:22/srv", line("vps.example.com"), true},
		{"bracketed port", "sftp://b@vps.example.com:2222/srv", line("[vps.example.com]:2222"), true},
		{"hashed", "sftp://b@vps.example.com:2222/srv", knownhosts.HashHostname("[vps.example.com]:2222") + " " + strings.SplitN(line("x"), " ", 2)[1], true},
		{"hashed other host", "sftp://b@vps.example.com/srv", knownhosts.HashHostname("other.example.com") + " " + strings.SplitN(line("x"), " ", 2)[1], false},
		{"host case", "sftp://b@VPS.Example.com/srv", line("vps.example.com"), true},
		{"wildcard", "sftp://b@vps.example.com/srv", line("*.example.com"), true},
		{"wildcard negated", "sftp://b@vps.example.com/srv", line("*.example.com", "!vps.example.com"), false},
		{"question mark", "sftp://b@vps1.example.com/srv", line("vps?.example.com"), true},
		{"ip", "sftp://b@127.0.0.1:2222/srv", line("[127.0.0.1]:2222"), true},
		{"ipv6", "sftp://b@[::1]:2222/srv", line("[::1]:2222"), true},
		{"port 22 line for another port", "sftp://b@127.0.0.1:2222/srv", line("127.0.0.1"), false},
		{"cert authority", "sftp://b@vps.example.com/srv", "@cert-authority " + line("*.example.com"), true},
		{"comments and blank lines", "sftp://b@vps.example.com/srv", "# keys\n\n" + line("other.example.com") + "\n" + line("vps.example.com") + "\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, with(valid(), map[string]string{"ARCHIVE_URL": tt.url, "SFTP_PRIVATE_KEY": key, "SFTP_KNOWN_HOSTS": tt.hosts}))
			_, err := Load()
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), "SFTP_KNOWN_HOSTS: has no line for")) {
				t.Errorf("Load = %v", err)
			}
		})
	}
}

func TestStreamingBudgetDestinations(t *testing.T) {
	vars, _ := several(t) // two S3 destinations, an sftp and a file one
	for _, tt := range []struct {
		url  string
		want int // upload parts in flight per S3 destination; the download keeps 16
	}{
		// 17 × 2 MiB + n × (u+1) × 16 MiB ≤ 256 MiB
		{"s3://acme-db-archive", 12},            // 34 + 13×16
		{"file:///mnt/archive", 12},             // n counts as 1 without S3
		{vars["ARCHIVE_URL"], 5},                // 34 + 2×6×16
		{vars["ARCHIVE_URL"] + " s3://xyz1", 3}, // 34 + 3×4×16
	} {
		setEnv(t, with(vars, map[string]string{"ARCHIVE_URL": tt.url, "ARCHIVE_CONCURRENCY": "16", "ARCHIVE_PART_SIZE": "16MiB", "ARCHIVE_MEMORY_LIMIT": "256MiB"}))
		c, err := Load()
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		if c.Concurrency != 16 || c.UploadConcurrency != tt.want {
			t.Errorf("%q: concurrency %d upload %d, want 16 %d", tt.url, c.Concurrency, c.UploadConcurrency, tt.want)
		}
	}
}

func TestArchivesFromEnv(t *testing.T) {
	// The variables the destinations name are not read: policy needs only where archives go.
	setEnv(t, map[string]string{"ARCHIVE_URL": "s3://acme/a?keys=B2 sftp://b@h.example.com/srv"})
	as, err := ArchivesFromEnv()
	if err != nil || len(as) != 2 || s3of(as[0]).Keys != "B2" || sftpOf(as[1]).Host != "h.example.com" {
		t.Errorf("ArchivesFromEnv = %+v, %v", as, err)
	}
	if a, err := ArchiveFromEnv(); err != nil || s3of(a).Bucket != "acme" {
		t.Errorf("ArchiveFromEnv = %+v, %v", a, err)
	}
	setEnv(t, map[string]string{"ARCHIVE_URL": "s3://acme s3://acme"})
	if _, err := ArchivesFromEnv(); err == nil || !strings.Contains(err.Error(), "same as destination 1") {
		t.Errorf("ArchivesFromEnv(twice) = %v", err)
	}
	// Its messages know the secrets too.
	setEnv(t, map[string]string{"ARCHIVE_URL": "s3://acme?storage_class=" + b2Secret + "&keys=B2", "B2_SECRET_ACCESS_KEY": b2Secret})
	if _, err := ArchivesFromEnv(); err == nil || strings.Contains(err.Error(), b2Secret) || !strings.Contains(err.Error(), "storage_class=") {
		t.Errorf("ArchivesFromEnv(secret as storage class) = %v", err)
	}
}

// setup-bucket works on the first S3 destination, without the variables the others read.
func TestLoadArchiveSeveral(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"ARCHIVE_URL": "sftp://b@h.example.com/srv s3://acme-offsite/db?keys=B2 s3://acme-db-archive"},
		"HEROKU_API_KEY", "BACKUP_TARGETS"))
	c, err := LoadArchive()
	if err != nil || s3of(c.Archive).Bucket != "acme-offsite" || s3of(c.Archive).Keys != "B2" || len(c.Archives) != 3 {
		t.Errorf("LoadArchive = %+v, %v", c.Archive, err)
	}
	setEnv(t, with(valid(), map[string]string{"ARCHIVE_URL": "file:///mnt/a file:///mnt/b"}))
	if _, err := LoadArchive(); err == nil || !strings.Contains(err.Error(), "ARCHIVE_URL: names no s3:// destination") {
		t.Errorf("LoadArchive without S3 = %v", err)
	}
}

func TestDestinationOneProblemEach(t *testing.T) {
	// An sftp URL without its two slashes is one mistake, said once.
	key, _ := testKey(t, "")
	ps := loadProblems(t, with(valid(), map[string]string{"ARCHIVE_URL": "sftp:backup@h.example.com/srv", "SFTP_PRIVATE_KEY": key}))
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "names no host") {
		t.Errorf("%s", ps)
	}
	// A URL that does not parse still counts as S3 for the S3 checks.
	ps = loadProblems(t, with(valid(), map[string]string{"ARCHIVE_URL": "s3://acme/%zz"}, "AWS_REGION"))
	if !strings.Contains(ps.Error(), "ARCHIVE_URL: \"s3://acme/%zz\" is not a URL") || !strings.Contains(ps.Error(), "AWS_REGION: not set") {
		t.Errorf("%s", ps)
	}
}

// A variable several destinations read is reported once; an IPv6 server is named as ssh names it.
func TestDestinationVariablesOnce(t *testing.T) {
	ps := loadProblems(t, with(valid(), map[string]string{
		"ARCHIVE_URL": "s3://acme-one?keys=B2 s3://acme-two?keys=B2 sftp://b@[::1]:2222/a sftp://b@[::1]:2222/b",
	}))
	got := map[string]int{}
	for _, p := range ps {
		got[p.Var]++
	}
	want := map[string]int{"B2_ACCESS_KEY_ID": 1, "B2_SECRET_ACCESS_KEY": 1, "SFTP_PRIVATE_KEY": 1, "SFTP_KNOWN_HOSTS": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems per variable %v, want %v:\n%s", got, want, ps)
	}
	if !strings.Contains(ps.Error(), "B2_ACCESS_KEY_ID: not set, and ARCHIVE_URL's destination 1 (s3://acme-one) has keys=B2") ||
		!strings.Contains(ps.Error(), "`ssh-keyscan -p 2222 ::1`") {
		t.Errorf("%s", ps)
	}
}

// At the default settings, a second S3 destination costs upload parts, not download ranges:
// the download keeps its sixteen ranges, and each destination uploads two parts at a time.
func TestStreamingBudgetKeepsTheDownload(t *testing.T) {
	vars, _ := several(t)
	setEnv(t, vars)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 16 || c.UploadConcurrency != 2 {
		t.Errorf("download %d, upload %d per destination; want 16 and 2", c.Concurrency, c.UploadConcurrency)
	}
	if used := bufferBytes(c.Archives, c.PartSize)(c.Concurrency, c.UploadConcurrency); used > c.MemoryLimit {
		t.Errorf("%d bytes of buffers over the %d limit", used, c.MemoryLimit)
	}
}

// s3of and sftpOf are what the S3 and SFTP kinds read of a destination's URL.
func s3of(a spec.Archive) s3store.Settings {
	s, _ := s3store.SettingsOf(a)
	return s
}

func sftpOf(a spec.Archive) sftpstore.Settings {
	s, _ := a.Settings.(sftpstore.Settings)
	return s
}
