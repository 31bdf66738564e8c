package agecrypt_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
)

// The uploader encrypts to ARCHIVE_RECIPIENTS while the dump streams and knows the stored size
// up front; verify and restore decrypt with AGE_IDENTITY.
func Example() {
	key, _ := age.GenerateX25519Identity() // made offline, with age-keygen
	recipients, err := agecrypt.ParseRecipients("# the offline key\n" + key.Recipient().String() + "\n")
	if err != nil {
		panic(err)
	}
	dump := strings.Repeat("PGDMP", 30000)
	stored, size, err := recipients.EncryptReader(strings.NewReader(dump), int64(len(dump)))
	if err != nil {
		panic(err)
	}
	var object bytes.Buffer
	if _, err := io.Copy(&object, stored); err != nil {
		panic(err)
	}
	fmt.Println("size announced = stored:", size == int64(object.Len()))
	fmt.Println("manifest:", recipients.Describe()[0].Type)

	identities, err := agecrypt.ParseIdentities("# created: offline\n" + key.String() + "\n")
	if err != nil {
		panic(err)
	}
	plain, err := identities.DecryptReader(&object)
	if err != nil {
		panic(err)
	}
	back, err := io.ReadAll(plain)
	fmt.Println("restored:", err == nil && string(back) == dump)
	// Output:
	// size announced = stored: true
	// manifest: X25519
	// restored: true
}
