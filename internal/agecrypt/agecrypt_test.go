package agecrypt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// plaintext is n reproducible pseudo-random bytes.
func plaintext(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8(s).Read(b)
	return b
}

// x25519Pair is a fresh age key pair made in process.
func x25519Pair(t testing.TB) (recipient, identity string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String(), id.String()
}

// sshEd25519Pair is a fresh ssh-ed25519 key pair made in process: the authorized_keys line and
// the OpenSSH private key.
func sshEd25519Pair(t testing.TB) (recipient, identity string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sshPair(t, pub, priv)
}

func sshRSAPair(t testing.TB, bits int) (recipient, identity string) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return sshPair(t, &priv.PublicKey, priv)
}

func sshPair(t testing.TB, pub, priv any) (string, string) {
	t.Helper()
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test key")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " someone@example", string(pem.EncodeToMemory(block))
}

func mustRecipients(t testing.TB, text string) *Recipients {
	t.Helper()
	rs, err := ParseRecipients(text)
	if err != nil {
		t.Fatalf("ParseRecipients: %v", err)
	}
	return rs
}

func mustIdentities(t testing.TB, text string) *Identities {
	t.Helper()
	ids, err := ParseIdentities(text)
	if err != nil {
		t.Fatalf("ParseIdentities: %v", err)
	}
	return ids
}

// encrypt returns the ciphertext of plain and the size EncryptReader announced.
func encrypt(t testing.TB, rs *Recipients, plain []byte) ([]byte, int64) {
	t.Helper()
	r, size, err := rs.EncryptReader(bytes.NewReader(plain), int64(len(plain)))
	if err != nil {
		t.Fatalf("EncryptReader: %v", err)
	}
	c, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read ciphertext: %v", err)
	}
	return c, size
}

// decrypt returns the plaintext of c, or the first error of DecryptReader or of reading it.
func decrypt(ids *Identities, c io.Reader) ([]byte, error) {
	r, err := ids.DecryptReader(c)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

var sizes = []int{0, 1, 65535, 65536, 65537, 3 * 65536}

func randomSizes() []int {
	rng := mrand.New(mrand.NewPCG(1, 2))
	out := append([]int(nil), sizes...)
	for range 4 {
		out = append(out, rng.IntN(5*65536))
	}
	return append(out, 2*65536-1, 2*65536+1)
}

// The announced size is the size of the bytes produced, for every kind of recipient, several at
// once, and sizes around the chunk boundaries; what is produced decrypts to the plaintext.
func TestEncryptReaderExactSize(t *testing.T) {
	xr, xi := x25519Pair(t)
	er, ei := sshEd25519Pair(t)
	rr, ri := sshRSAPair(t, 2048)
	x2r, _ := x25519Pair(t)
	cases := []struct {
		name, recipients string
		identities       []string
	}{
		{"X25519", xr, []string{xi}},
		{"ssh-ed25519", er, []string{ei}},
		{"ssh-rsa", rr, []string{ri}},
		{"three", "# mine\n" + xr + "\n\n" + er + "\n" + x2r + "\n", []string{xi, ei}},
	}
	for _, c := range cases {
		rs := mustRecipients(t, c.recipients)
		for _, n := range randomSizes() {
			plain := plaintext(n, uint64(n))
			got, size := encrypt(t, rs, plain)
			if size != int64(len(got)) {
				t.Errorf("%s, %d bytes: announced %d bytes, produced %d", c.name, n, size, len(got))
			}
			for _, idText := range c.identities {
				back, err := decrypt(mustIdentities(t, idText), bytes.NewReader(got))
				if err != nil || !bytes.Equal(back, plain) {
					t.Fatalf("%s, %d bytes: decrypt: %v (equal %v)", c.name, n, err, bytes.Equal(back, plain))
				}
			}
		}
	}
}

// The size is the same however the caller and the source cut their reads, and unknown stays
// unknown.
func TestEncryptReaderReadShapes(t *testing.T) {
	xr, xi := x25519Pair(t)
	rs := mustRecipients(t, xr)
	ids := mustIdentities(t, xi)
	plain := plaintext(3*65536+5, 7)
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"one byte": iotest.OneByteReader, "half": iotest.HalfReader, "data with EOF": iotest.DataErrReader,
	} {
		r, size, err := rs.EncryptReader(wrap(bytes.NewReader(plain)), -1)
		if err != nil {
			t.Fatal(err)
		}
		if size != -1 {
			t.Errorf("%s: unknown plaintext size gave ciphertext size %d, want -1", name, size)
		}
		c, err := io.ReadAll(wrap(r))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, err := decrypt(ids, bytes.NewReader(c))
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("%s: decrypt: %v", name, err)
		}
	}
	if _, _, err := rs.EncryptReader(bytes.NewReader(nil), -2); err == nil {
		t.Error("a size of -2 was accepted")
	}
}

// countingReader counts the reads made of it.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

// EncryptReader learns the header's size without reading the plaintext: a source such as a
// download must not be touched before the caller starts reading.
func TestEncryptReaderReadsNothingUpFront(t *testing.T) {
	xr, _ := x25519Pair(t)
	src := &countingReader{r: bytes.NewReader(plaintext(10, 1))}
	before := runtime.NumGoroutine()
	if _, _, err := mustRecipients(t, xr).EncryptReader(src, 10); err != nil {
		t.Fatal(err)
	}
	if src.reads != 0 {
		t.Errorf("EncryptReader read the plaintext %d times before the ciphertext was read", src.reads)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("EncryptReader started %d goroutines", after-before)
	}
}

// failingReader delivers data, then fails with err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

var errSource = errors.New("source broke")

// encryptFailing encrypts a source that fails after n bytes and returns what came out and the
// error reading ended with.
func encryptFailing(t *testing.T, rs *Recipients, n int) ([]byte, error) {
	t.Helper()
	r, _, err := rs.EncryptReader(&failingReader{data: plaintext(n, 3), err: errSource}, int64(n)+1000)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	return out.Bytes(), err
}

// A source that fails mid-stream fails the ciphertext with that very error, and what was
// produced until then never decrypts as a whole file.
func TestEncryptReaderSourceError(t *testing.T) {
	xr, xi := x25519Pair(t)
	rs, ids := mustRecipients(t, xr), mustIdentities(t, xi)
	for _, n := range []int{0, 1, 65535, 65536, 65537, 2*65536 + 10, 3 * 65536} {
		got, err := encryptFailing(t, rs, n)
		if err != errSource {
			t.Fatalf("source failing after %d bytes: ciphertext read ended with %v, want the source's error as is", n, err)
		}
		back, err := decrypt(ids, bytes.NewReader(got))
		if !errors.Is(err, ErrDamaged) {
			t.Errorf("source failing after %d bytes: the %d bytes produced decrypted to %d bytes with error %v, want ErrDamaged", n, len(got), len(back), err)
		}
	}
}

// A plaintext shorter or longer than announced fails the stream: the size announced is the size
// produced, or nothing decrypts.
func TestEncryptReaderWrongSize(t *testing.T) {
	xr, xi := x25519Pair(t)
	rs, ids := mustRecipients(t, xr), mustIdentities(t, xi)
	for _, c := range []struct{ real, announced int }{{0, 1}, {65535, 65536}, {65536, 65537}, {100000, 200000}, {1, 0}, {65537, 65536}, {200000, 100000}} {
		r, _, err := rs.EncryptReader(bytes.NewReader(plaintext(c.real, 1)), int64(c.announced))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprint(c.announced)) {
			t.Errorf("%d bytes announced as %d: reading ended with %v", c.real, c.announced, err)
		}
		if _, err := decrypt(ids, bytes.NewReader(got)); !errors.Is(err, ErrDamaged) {
			t.Errorf("%d bytes announced as %d: what was produced decrypts with %v, want ErrDamaged", c.real, c.announced, err)
		}
	}
}

func TestWrongIdentity(t *testing.T) {
	xr, _ := x25519Pair(t)
	er, _ := sshEd25519Pair(t)
	_, otherX := x25519Pair(t)
	_, otherE := sshEd25519Pair(t)
	c, _ := encrypt(t, mustRecipients(t, xr+"\n"+er), plaintext(1000, 1))
	for _, idText := range []string{otherX, otherE} {
		ids := mustIdentities(t, idText)
		_, err := decrypt(ids, bytes.NewReader(c))
		if !errors.Is(err, ErrWrongIdentity) {
			t.Fatalf("decrypt with a wrong identity: %v, want ErrWrongIdentity", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "2 recipient stanzas") || !strings.Contains(msg, ids.Fingerprints()[0]) {
			t.Errorf("the error does not say how many stanzas and which key was tried: %s", msg)
		}
		if strings.Contains(msg, "AGE-SECRET") || strings.Contains(msg, "PRIVATE") {
			t.Errorf("the error shows key material: %s", msg)
		}
	}
}

// mustFail checks that c fails to decrypt: an error, never a clean end, and ErrDamaged if wantDamaged.
func mustFail(t *testing.T, what string, ids *Identities, c []byte, wantDamaged bool) {
	t.Helper()
	r, err := ids.DecryptReader(bytes.NewReader(c))
	if err == nil {
		var back []byte
		back, err = io.ReadAll(r)
		if err == nil {
			t.Errorf("%s: decrypted cleanly to %d bytes", what, len(back))
			return
		}
		if errors.Is(err, io.EOF) {
			t.Errorf("%s: reading ended with %v, which is io.EOF", what, err)
		}
		// Once failed, reading stays failed.
		if _, again := r.Read(make([]byte, 10)); again == nil || again == io.EOF {
			t.Errorf("%s: a read after the failure gave %v", what, again)
		}
	}
	if wantDamaged && !errors.Is(err, ErrDamaged) {
		t.Errorf("%s: %v, want ErrDamaged", what, err)
	}
}

// headerLen is the size of c's header, up to and including the MAC line.
func headerLen(t *testing.T, c []byte) int {
	t.Helper()
	h, err := readHeader(bytes.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	return len(h)
}

func TestTruncated(t *testing.T) {
	xr, xi := x25519Pair(t)
	ids := mustIdentities(t, xi)
	c, _ := encrypt(t, mustRecipients(t, xr), plaintext(3*65536+100, 1))
	h := headerLen(t, c)
	payload := h + nonceSize
	chunk := chunkSize + tagSize
	for _, cut := range []int{5, 30, h - 1, h, h + 8, payload, payload + 1, payload + chunk - 1, payload + chunk,
		payload + chunk + 1, payload + 3*chunk, len(c) - 17, len(c) - 1} {
		mustFail(t, fmt.Sprintf("cut at %d of %d", cut, len(c)), ids, c[:cut], true)
	}
	_, err := decrypt(ids, bytes.NewReader(nil))
	if !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("empty file: %v, want ErrNotEncrypted", err)
	}
	// An exact multiple of the chunk size: the last full chunk is the final one, and dropping it
	// leaves a file whose last chunk is not marked final.
	c2, _ := encrypt(t, mustRecipients(t, xr), plaintext(2*65536, 2))
	mustFail(t, "last full chunk dropped", ids, c2[:len(c2)-chunk], true)
	mustFail(t, "trailing data", ids, append(append([]byte(nil), c...), 0), true)
}

func TestFlippedByte(t *testing.T) {
	xr, xi := x25519Pair(t)
	ids := mustIdentities(t, xi)
	c, _ := encrypt(t, mustRecipients(t, xr), plaintext(2*65536+100, 1))
	h := headerLen(t, c)
	flip := func(i int) []byte {
		d := append([]byte(nil), c...)
		d[i] ^= 0x01
		return d
	}
	// In the header a flip may look like another file's stanza (a wrong identity) or a bad MAC;
	// it fails either way.
	for _, i := range []int{0, len(ageIntro) + 5, h / 2, h - 10, h - 2} {
		mustFail(t, fmt.Sprintf("header byte %d flipped", i), ids, flip(i), false)
	}
	for _, i := range []int{h, h + nonceSize - 1, h + nonceSize, h + nonceSize + 65536 + 15, h + nonceSize + 65552, len(c) - 1} {
		mustFail(t, fmt.Sprintf("payload byte %d flipped", i), ids, flip(i), true)
	}
}

// failAfter is a ciphertext source that fails after n bytes, as a download cut by the network.
type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// An error of the ciphertext's own source is that error, not damage: the caller may retry.
func TestSourceErrorIsNotDamage(t *testing.T) {
	xr, xi := x25519Pair(t)
	ids := mustIdentities(t, xi)
	c, _ := encrypt(t, mustRecipients(t, xr), plaintext(3*65536, 1))
	errNet := errors.New("connection reset")
	for _, cut := range []int{0, 10, headerLen(t, c) + 20, 100000} {
		_, err := decrypt(ids, &failAfter{r: bytes.NewReader(c), n: cut, err: errNet})
		if !errors.Is(err, errNet) || errors.Is(err, ErrDamaged) {
			t.Errorf("source failing after %d bytes: %v, want the source's error and not ErrDamaged", cut, err)
		}
	}
}

func TestNotEncrypted(t *testing.T) {
	_, xi := x25519Pair(t)
	ids := mustIdentities(t, xi)
	for name, data := range map[string]string{
		"pg_dump":  "PGDMP\x01\x0f\x00" + strings.Repeat("x", 100),
		"short":    "PG",
		"armored":  "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n",
		"version2": "age-encryption.org/v2\n-> X25519 abc\n",
	} {
		_, err := ids.DecryptReader(strings.NewReader(data))
		if !errors.Is(err, ErrNotEncrypted) {
			t.Errorf("%s: %v, want ErrNotEncrypted", name, err)
		}
	}
}

// assertNoEcho checks that err holds none of secrets: the line that did not parse could be a
// secret pasted by mistake.
func assertNoEcho(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) > 12 {
			s = s[4:12]
		}
		if strings.Contains(err.Error(), s) {
			t.Errorf("error echoes the input %q: %v", s, err)
		}
	}
}

func TestParseRecipientsErrors(t *testing.T) {
	xr, xi := x25519Pair(t)
	xr2, _ := x25519Pair(t)
	_, sshPriv := sshEd25519Pair(t)
	cases := []struct {
		name, text string
		want       []string // in the error
		secrets    []string // not in it
	}{
		{"age identity pasted", "# keys\n" + xr + "\n" + xi + "\n", []string{"line 3", "private key", "must not be on the dyno", "age-keygen -y key.txt"}, []string{xi[16:]}},
		{"lower-case identity", strings.ToLower(xi), []string{"line 1", "age-keygen -y"}, []string{strings.ToLower(xi)[16:]}},
		{"ssh private key pasted", xr + "\n" + sshPriv, []string{"line 2", "ssh-keygen -y"}, strings.Split(sshPriv, "\n")[1:3]},
		{"garbage", xr + "\nhunter2-password-of-someone\n", []string{"line 2", "age1", "ssh-ed25519"}, []string{"hunter2-password-of-someone"}},
		{"two errors", "nonsense-one\n" + xr + "\nnonsense-two\n", []string{"line 1", "line 3"}, []string{"nonsense-one", "nonsense-two"}},
		{"cut short", xr[:len(xr)-3], []string{"line 1", "copy it again"}, nil},
		{"empty", "", []string{"no recipient"}, nil},
		{"only comments", "# nothing\n\n  \n", []string{"no recipient"}, nil},
		{"ecdsa", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= x", []string{"line 1", "ssh-ed25519 and ssh-rsa"}, nil},
		{"plugin", "age1yubikey1q2w3e4r5t6y7u8i9o0p", []string{"line 1", "plugin"}, nil},
		{"post-quantum", "age1pq1qqqqqqqqqqqqqqq", []string{"line 1", "post-quantum"}, nil},
		{"two on a line", xr + " " + xr, []string{"line 1", "own line"}, nil},
		// Several recipients on one line are not a plugin's recipient.
		{"comma-joined", xr + "," + xr2, []string{"line 1", "own line", "commas"}, []string{"plugin"}},
		{"comma and space", "# ops\n" + xr + ", " + xr2, []string{"line 2", "own line", "commas"}, []string{"plugin"}},
		{"joined", xr + xr2, []string{"line 1", "own line"}, []string{"plugin"}},
		{"quoted", `"` + xr + `"`, []string{"line 1", "not a recipient"}, []string{"plugin"}},
		{"duplicate", xr + "\n" + xr, []string{"line 2", "line 1"}, nil},
		{"bad ssh key", "ssh-ed25519 AAAAnotbase64!!", []string{"line 1", "SSH public key"}, nil},
	}
	for _, c := range cases {
		_, err := ParseRecipients(c.text)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q: %v", c.name, w, err)
			}
		}
		assertNoEcho(t, err, c.secrets...)
	}
	smallPub, _ := sshRSAPair(t, 1024)
	if _, err := ParseRecipients(smallPub); err == nil || !strings.Contains(err.Error(), "2048") {
		t.Errorf("a 1024-bit RSA key: %v, want an error about its size", err)
	}
}

func TestParseIdentitiesErrors(t *testing.T) {
	xr, xi := x25519Pair(t)
	er, _ := sshEd25519Pair(t)
	broken := xi[:30] + "Q" + xi[31:]
	if broken == xi {
		broken = xi[:30] + "P" + xi[31:]
	}
	cases := []struct {
		name, text string
		want       []string
		secrets    []string
	}{
		{"recipient given", xr, []string{"line 1", "public key"}, nil},
		{"ssh public key given", er, []string{"line 1", "public key"}, nil},
		{"corrupted key", "# created: now\n" + broken, []string{"line 2", "AGE-SECRET-KEY-1"}, []string{broken[16:]}},
		{"cut key", xi[:40], []string{"line 1"}, []string{xi[16:40]}},
		{"garbage", "s3cr3t-value-here", []string{"line 1"}, []string{"s3cr3t-value-here"}},
		{"empty", "\n# only a comment\n", []string{"no identity"}, nil},
		{"bad pem", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n", []string{"not a valid private key"}, []string{"b3BlbnNzaC1rZXktdjEAAAAA"}},
	}
	for _, c := range cases {
		_, err := ParseIdentities(c.text)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q: %v", c.name, w, err)
			}
		}
		assertNoEcho(t, err, c.secrets...)
	}
}

// A recipient's fingerprint is fixed by the key alone (golden values, computed once with
// `ssh-keygen -lf` and with sha256sum | base64), and an identity's fingerprint is its
// recipient's.
func TestDescribeStable(t *testing.T) {
	const (
		x25519  = "age13qz35k5awatm48hyl3z9y8e6vae5h9h30zf2rtq5t3e8u05g7yyq0807ea"
		ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM/UxZzlijlCeW5jrJZF4VhbzqSezQH+5IeKwp8jl3IA"
		// printf %s X25519 | sha256sum | xxd -r -p | base64 | tr -d =
		goldenX25519 = "SHA256:deknMTuqeaLvN0+TDPUCslQGq9EtyIGYTjcjntZFKKE"
		// ssh-keygen -lf key.pub
		goldenEd25519 = "SHA256:hn6njVXLLKeLCcrRpZHyDYWr2C0asqU+S5BP25x7x4k"
	)
	want := []Recipient{
		{Type: "X25519", Public: x25519, Fingerprint: goldenX25519},
		{Type: "ssh-ed25519", Public: ed25519, Fingerprint: goldenEd25519},
	}
	for _, text := range []string{
		x25519 + "\n" + ed25519 + " me@laptop\n",
		"# two keys\r\n  " + x25519 + "  \r\n\r\n" + ed25519 + "\r\n",
	} {
		got := mustRecipients(t, text).Describe()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Describe of %q =\n %v, want\n %v", text, got, want)
		}
	}
	// Describe hands out a copy.
	rs := mustRecipients(t, x25519)
	rs.Describe()[0].Public = "changed"
	if rs.Describe()[0].Public != x25519 {
		t.Error("Describe's result aliases the Recipients")
	}

	xr, xi := x25519Pair(t)
	er, ei := sshEd25519Pair(t)
	d := mustRecipients(t, xr+"\n"+er).Describe()
	if got := mustIdentities(t, xi).Fingerprints(); len(got) != 1 || got[0] != d[0].Fingerprint {
		t.Errorf("X25519 identity fingerprint %v, recipient's %s", got, d[0].Fingerprint)
	}
	if got := mustIdentities(t, ei).Fingerprints(); len(got) != 1 || got[0] != d[1].Fingerprint {
		t.Errorf("ssh-ed25519 identity fingerprint %v, recipient's %s", got, d[1].Fingerprint)
	}
}

// Encrypting streams in bounded memory: what it allocates does not grow with the size.
func TestEncryptMemoryBounded(t *testing.T) {
	xr, _ := x25519Pair(t)
	rs := mustRecipients(t, xr)
	const size = 64 << 20
	buf := make([]byte, 1<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, _, err := rs.EncryptReader(io.LimitReader(zeros{}, size), size)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("encrypting %d MiB allocated %d KiB, want a few chunks at most", size>>20, alloc>>10)
	}
}

// Encrypting straight into decrypting, 128 MiB go through with the heap staying small: neither
// side buffers more than a chunk or two (the garbage of age's per-chunk buffers is collected).
func TestStreamMemoryBounded(t *testing.T) {
	xr, xi := x25519Pair(t)
	const size = 128 << 20
	c, _, err := mustRecipients(t, xr).EncryptReader(io.LimitReader(zeros{}, size), size)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := mustIdentities(t, xi).DecryptReader(c)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var base, m runtime.MemStats
	runtime.ReadMemStats(&base)
	buf := make([]byte, 1<<20)
	var total, peak uint64
	for {
		n, err := plain.Read(buf)
		total += uint64(n)
		if total%(4<<20) < uint64(n) {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if total != size {
		t.Fatalf("decrypted %d bytes, want %d", total, size)
	}
	if grown := int64(peak) - int64(base.HeapAlloc); grown > 16<<20 {
		t.Errorf("the heap grew by %d MiB while %d MiB streamed through", grown>>20, size>>20)
	}
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// BenchmarkEncryptReader encrypts 64 MiB read 1 MiB at a time, as an uploader reads its parts.
func BenchmarkEncryptReader(b *testing.B) {
	xr, _ := x25519Pair(b)
	rs := mustRecipients(b, xr)
	const size = 64 << 20
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		r, _, err := rs.EncryptReader(io.LimitReader(zeros{}, size), size)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptReader decrypts 64 MiB read 1 MiB at a time, as verify and restore read.
func BenchmarkDecryptReader(b *testing.B) {
	xr, xi := x25519Pair(b)
	rs, ids := mustRecipients(b, xr), mustIdentities(b, xi)
	const size = 64 << 20
	r, _, err := rs.EncryptReader(io.LimitReader(zeros{}, size), size)
	if err != nil {
		b.Fatal(err)
	}
	c, err := io.ReadAll(r)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		p, err := ids.DecryptReader(bytes.NewReader(c))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{p}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// Recipients and Identities are shared by concurrent jobs (go test -race checks it).
func TestConcurrentUse(t *testing.T) {
	xr, xi := x25519Pair(t)
	er, ei := sshEd25519Pair(t)
	rs := mustRecipients(t, xr+"\n"+er)
	ids := mustIdentities(t, xi)
	sshIDs := mustIdentities(t, ei)
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			plain := plaintext(70000+g, uint64(g))
			r, _, err := rs.EncryptReader(bytes.NewReader(plain), int64(len(plain)))
			if err == nil {
				var c []byte
				if c, err = io.ReadAll(r); err == nil {
					var back []byte
					id := ids
					if g%2 == 1 {
						id = sshIDs
					}
					if back, err = decrypt(id, bytes.NewReader(c)); err == nil && !bytes.Equal(back, plain) {
						err = errors.New("round trip changed the data")
					}
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
