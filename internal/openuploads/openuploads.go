// Package openuploads tells whoever asked, through a context, which multipart uploads the
// process opened: a coordinator of one-off dynos aborts those of a child that died before it
// could abort them itself.
package openuploads

import "context"

// Func is told each upload as it is opened: where (an s3:// location) and its upload ID.
type Func func(location, uploadID string)

type key struct{}

// Watch returns ctx carrying f: uploads opened under it are told to f.
func Watch(ctx context.Context, f Func) context.Context {
	return context.WithValue(ctx, key{}, f)
}

// Opened tells the Func ctx carries, if any, that an upload was opened.
func Opened(ctx context.Context, location, uploadID string) {
	if f, ok := ctx.Value(key{}).(Func); ok && f != nil {
		f(location, uploadID)
	}
}
