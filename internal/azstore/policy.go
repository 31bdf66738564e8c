package azstore

import (
	"fmt"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// sasExpiry is how long the SAS tokens `pgoffsite policy` makes are valid: a year, the longest
// that is still renewed while someone remembers why.
const sasExpiry = "$(date -u -d '+1 year' +%Y-%m-%dT%H:%MZ)"

// PolicyText is what `pgoffsite policy` prints for an Azure Blob destination: the az commands
// that make the uploader's SAS (create only) or, with reader, the reader's (read and list), and
// what each can and cannot do.
func PolicyText(a spec.Archive, reader bool) string {
	s, _ := SettingsOf(a)
	sasVar, keyVar := CredentialVars(s.Keys)
	b := &strings.Builder{}
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	if reader {
		p("# The reader's SAS for %s: read and list (rl). verify, status, list and restore read the archives", a)
		p("# with it; it cannot create, overwrite or delete a blob. Run with `az login` as the account's owner, or")
		p("# give the account key with --account-key.")
		p("%s", SASCommand(s, "rl"))
		p("# Where verify, status or restore run: %s=<the token>, and no %s.", sasVar, keyVar)
		p("# Verification records (.verified.json, shown by status) are not written with it: a SAS cannot be limited to")
		p("# those names, and write permission would let the reader overwrite archives.")
	} else {
		p("# The uploader's SAS for %s: create (c) only. It writes new blobs and cannot read, list, delete or", a)
		p("# overwrite one: a stolen copy cannot destroy the archives. Run with `az login` as the account's owner, or")
		p("# give the account key with --account-key.")
		p("%s", SASCommand(s, "c"))
		p("heroku config:set %s='<the token>' -a APP   # and never %s on the dyno", sasVar, keyVar)
		p("# Or an account SAS for blob objects in every container of the account (prefer the container's):")
		p("az storage account generate-sas --account-name %s --services b --resource-types o --permissions c --expiry %s --https-only -o tsv",
			s.Account, sasExpiry)
		p("# `pgoffsite check` writes its probe in blocks, as an archive larger than ARCHIVE_PART_SIZE is written: Azure")
		p("# documents create as enough for a new blob's blocks; where a store refuses them (the Azurite emulator), check")
		p("# says so and names the SAS that works (--permissions cw, which may also overwrite blobs).")
		p("# RETENTION's class is set as the blob index tag retention=CLASS in the request that creates each blob. The")
		p("# emulator (Azurite) takes it with create alone; if Azure refuses a backup's commit (AuthorizationPermissionMismatch)")
		p("# with RETENTION set, make the SAS with --permissions ct: t also lets the key change the tags of blobs that exist")
		p("# (a shorter class: an earlier delete by the lifecycle), which the immutability policy of setup-bucket guards against.")
	}
	p("# Expiry: a SAS cannot be revoked by itself. It lasts until its expiry (one year here: put the renewal in the")
	p("# calendar; a backup after it fails with AuthenticationFailed) or until the account key that signed it is rotated")
	p("# (az storage account keys renew --account-name %s --key primary), which revokes every SAS that key signed.", s.Account)
	return b.String()
}
