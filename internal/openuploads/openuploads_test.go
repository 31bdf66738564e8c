package openuploads

import (
	"context"
	"testing"
)

func TestWatch(t *testing.T) {
	Opened(context.Background(), "s3://b/k", "id0") // nobody watching: nothing happens
	var got []string
	ctx := Watch(context.Background(), func(loc, id string) { got = append(got, loc+" "+id) })
	Opened(ctx, "s3://b/k", "id1")
	if len(got) != 1 || got[0] != "s3://b/k id1" {
		t.Errorf("told %v", got)
	}
}
