package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

var _ store.Reader = (*Reader)(nil)

// ErrVersionsDenied reports credentials that may list a bucket but not its object versions
// (s3:ListBucketVersions): an overwritten archive cannot be seen with them.
var ErrVersionsDenied = errors.New("these credentials may not list object versions (s3:ListBucketVersions): an overwritten archive cannot be told from its manifest's; give the reader the policy `pgoffsite policy --reader` prints")

// List describes the objects under sub (relative to the prefix) with every earlier version the
// bucket keeps of each (ListObjectVersions): an archive overwritten with the uploader's keys
// leaves its replaced bytes there as a noncurrent version. Credentials without
// s3:ListBucketVersions, or a store without the call, get the current objects alone
// (ListObjectsV2), and the listing says why it has no versions.
func (r *Reader) List(ctx context.Context, sub string) (store.Listing, error) {
	l, err := r.listVersions(ctx, sub)
	if err == nil {
		return l, nil
	}
	if !versionsUnavailable(err) {
		return store.Listing{}, err
	}
	objs, lerr := r.listCurrent(ctx, sub)
	if lerr != nil {
		return store.Listing{}, lerr
	}
	why := ErrVersionsDenied
	if s3err.Status(err) != http.StatusForbidden {
		why = fmt.Errorf("the store does not list object versions: an overwritten archive cannot be told from its manifest's: %w", err)
	}
	return store.Listing{Objects: objs, VersionsErr: why}, nil
}

// versionsUnavailable tells an answer to ListObjectVersions that the plain listing may still
// get past: denied by the policy, or not implemented by the store.
func versionsUnavailable(err error) bool {
	switch s3err.Of(err) {
	case s3err.Denied, s3err.BadCredentials, s3err.NotImplemented:
		return true
	}
	return false
}

func (r *Reader) listCurrent(ctx context.Context, sub string) ([]store.Info, error) {
	var objs []store.Info
	full := r.full(sub)
	p := s3.NewListObjectsV2Paginator(r.client, &s3.ListObjectsV2Input{Bucket: &r.bucket, Prefix: aws.String(full)})
	for p.HasMorePages() {
		page, err := p.NextPage(stall.WithLabel(ctx, "list s3://"+r.bucket+"/"+full))
		if err != nil {
			return nil, fmt.Errorf("s3: list s3://%s/%s: %w", r.bucket, full, err)
		}
		for _, o := range page.Contents {
			objs = append(objs, store.Info{Key: aws.ToString(o.Key)[len(r.prefix):], Size: aws.ToInt64(o.Size),
				Modified: aws.ToTime(o.LastModified), ETag: unquote(aws.ToString(o.ETag))})
		}
	}
	store.SortInfos(objs)
	return objs, nil
}

func (r *Reader) listVersions(ctx context.Context, sub string) (store.Listing, error) {
	full := r.full(sub)
	type entry struct {
		info   store.Info
		latest bool
		id     string
	}
	byKey := map[string][]entry{}
	deleted := map[string]bool{} // keys whose newest version is a delete marker
	in := &s3.ListObjectVersionsInput{Bucket: &r.bucket, Prefix: aws.String(full)}
	for {
		page, err := r.client.ListObjectVersions(stall.WithLabel(ctx, "list versions s3://"+r.bucket+"/"+full), in)
		if err != nil {
			return store.Listing{}, fmt.Errorf("s3: list versions s3://%s/%s: %w", r.bucket, full, err)
		}
		for _, v := range page.Versions {
			k := aws.ToString(v.Key)[len(r.prefix):]
			byKey[k] = append(byKey[k], entry{info: store.Info{Key: k, Size: aws.ToInt64(v.Size), Modified: aws.ToTime(v.LastModified),
				ETag: unquote(aws.ToString(v.ETag))}, latest: aws.ToBool(v.IsLatest), id: aws.ToString(v.VersionId)})
		}
		for _, d := range page.DeleteMarkers {
			if aws.ToBool(d.IsLatest) {
				deleted[aws.ToString(d.Key)[len(r.prefix):]] = true
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		if page.NextKeyMarker == nil && page.NextVersionIdMarker == nil {
			return store.Listing{}, fmt.Errorf("s3: list versions s3://%s/%s: the store said the listing goes on but gave no marker to go on from", r.bucket, full)
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
	l := store.Listing{Versions: true}
	for k, es := range byKey {
		if deleted[k] {
			continue // not in the bucket's current view; its versions stay until lifecycle removes them
		}
		sort.SliceStable(es, func(i, j int) bool {
			if es[i].latest != es[j].latest {
				return es[i].latest
			}
			return es[i].info.Modified.After(es[j].info.Modified)
		})
		cur := es[0].info
		for _, e := range es[1:] {
			cur.Older = append(cur.Older, store.Version{ID: e.id, Size: e.info.Size, Modified: e.info.Modified, ETag: e.info.ETag})
		}
		l.Objects = append(l.Objects, cur)
	}
	store.SortInfos(l.Objects)
	return l, nil
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }
