package store

import "context"

// Remover deletes an object from a store. It is a capability only some destinations have, given
// to the job explicitly when the destination is opened: a directory or an SFTP account may
// delete what it wrote, while an S3 destination's uploader keys may not delete at all (that is
// what keeps stolen keys from destroying archives). The job uses it for one thing: taking back
// a dump it stored whose manifest it could not write.
type Remover interface {
	// Remove deletes the object at key; an object that is not there is not an error.
	Remove(ctx context.Context, key string) error
}
