package azstore

import (
	"context"
	"errors"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Kind is an Azure Blob Storage container: azblob://ACCOUNT/CONTAINER/prefix, its credentials a
// SAS token or the account key in the variables Azure's tools read (or keys=NAME's).
var Kind spec.Kind = kind{}

type kind struct{ Parser }

// OpenStore opens destination a with the credentials env holds for it.
func OpenStore(env spec.Env, a spec.Archive) (*Store, error) {
	s, _ := SettingsOf(a)
	sasVar, keyVar := CredentialVars(s.Keys)
	return Open(Options{Settings: s, PartSize: env.PartSize, Parts: env.Parts,
		Credentials: Credentials{SASToken: env.Getenv(sasVar), AccountKey: env.Getenv(keyVar)}})
}

// Open opens the container with the uploader's credentials: a SAS that may only create blobs
// gives a store that writes and does nothing else.
func (kind) Open(_ context.Context, env spec.Env, a spec.Archive) (store.Store, store.Caps, error) {
	st, err := OpenStore(env, a)
	if err != nil {
		return nil, store.Caps{}, err
	}
	return st, st.Caps(), nil
}

// OpenReader opens the container with the credentials of the command reading it (a SAS that
// may read and list); Caps.Reader is nil when they may not.
func (k kind) OpenReader(ctx context.Context, env spec.Env, a spec.Archive) (store.Caps, error) {
	st, err := OpenStore(env, a)
	if err != nil {
		return store.Caps{}, err
	}
	c := st.Caps()
	if c.Reader == nil {
		sasVar, _ := CredentialVars(st.s.Keys)
		return store.Caps{}, &Error{msg: a.String() + ": the SAS token in " + sasVar +
			" may not read and list blobs: run this command with a reader's SAS, made with `" + SASCommand(st.s, "rl") + "`"}
	}
	return c, nil
}

// probeBlock is the block size of check's probe: small enough that the probe is staged as
// several blocks and committed as a block list, as an archive larger than one part is.
const probeBlock = 32

// Check writes the probe the way a backup writes a large archive (blocks, then the block list),
// and warns about credentials that may do more than create blobs: whoever holds the uploader's
// may then destroy the archives.
func (kind) Check(ctx context.Context, r spec.Checker, env spec.Env, all []spec.Archive, i int) {
	a := all[i]
	if env.Retention.Set() {
		r.Warn("archive %s: RETENTION: each archive carries its class as the blob index tag retention=CLASS, but only the account's lifecycle-management policy deletes archives, and a create-only SAS cannot look up the markers that tell the periods apart (another destination that can decides the class; alone, every archive is kept as the longest class)", a)
		r.Fix("apply the lifecycle policy `pgoffsite setup-bucket` prints for %s, as the storage account's owner", a)
	}
	st, err := OpenStore(env, a)
	if err != nil {
		r.Fail("archive %s: %v", a, err)
		return
	}
	st.partSize = probeBlock
	if spec.ProbeWrite(ctx, r, a, st, explainProbe(st)) && (st.perms.write || st.perms.delete) {
		sasVar, keyVar := CredentialVars(st.s.Keys)
		r.Warn("archive %s: the uploader's credentials may overwrite or delete blobs (%s or %s): stolen, they could destroy the archives", a, sasVar, keyVar)
		r.Fix("give the uploader a SAS with create permission only in %s, made with `%s`, and unset %s", sasVar, SASCommand(st.s, "c"), keyVar)
	}
}

// UploadMemory: the blocks in flight and the one being filled.
func (kind) UploadMemory(partSize int64, parts int) int64 { return int64(parts+1) * partSize }

// explainProbe says what a refused probe means for a SAS that may create blobs but is refused
// their blocks, which Azure's documentation counts under create and the Azurite emulator does not.
func explainProbe(st *Store) func(error) (string, string) {
	return func(err error) (string, string) {
		var e *Error
		if !errors.As(err, &e) || !e.Block || !st.perms.create || st.perms.write ||
			e.Code != string(bloberror.AuthorizationPermissionMismatch) {
			return "", ""
		}
		sasVar, _ := CredentialVars(st.s.Keys)
		return "the SAS in " + sasVar + " may create blobs, but staging a block with it was refused: archives larger than one part (ARCHIVE_PART_SIZE) are written as blocks and would fail",
			"make the uploader's SAS with `" + SASCommand(st.s, "cw") + "` (w also lets it overwrite blobs: apply the immutability policy `pgoffsite setup-bucket` prints), or keep every archive within one part"
	}
}
