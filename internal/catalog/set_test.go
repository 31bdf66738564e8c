package catalog

import (
	"strings"
	"testing"
)

// A manifest names a set's parts by their position only: any other key, a set of the wrong
// version, or a set without parts is refused, so that a forged manifest cannot make a reader
// fetch another object.
func TestStreams(t *testing.T) {
	key := "shop/DATABASE/2026/11/02/shop-DATABASE-p001-20261102T030000Z.dump"
	set := func(keys ...string) *Set {
		s := &Set{}
		for _, k := range keys {
			s.Parts = append(s.Parts, Part{Key: k, Bytes: 5})
		}
		return s
	}
	good := Manifest{ManifestVersion: SetManifestVersion, Bytes: 3, Set: set(PartKey(key, 1), PartKey(key, 2))}
	streams, err := Streams(key, good)
	if err != nil || len(streams) != 3 || streams[2].Key != PartKey(key, 2) || streams[2].Name() != "part 2 ("+PartKey(key, 2)+")" ||
		streams[0].Name() != "the dump" || good.StoredBytes() != 13 {
		t.Fatalf("a good set: %+v %v", streams, err)
	}
	if one, err := Streams(key, Manifest{ManifestVersion: 1, Bytes: 3}); err != nil || len(one) != 1 {
		t.Errorf("one stream: %+v %v", one, err)
	}
	for name, m := range map[string]Manifest{
		"another key":     {ManifestVersion: SetManifestVersion, Set: set(PartKey(key, 1), "shop/DATABASE/2026/11/01/other.dump")},
		"parts swapped":   {ManifestVersion: SetManifestVersion, Set: set(PartKey(key, 2), PartKey(key, 1))},
		"version 1":       {ManifestVersion: 1, Set: set(PartKey(key, 1))},
		"no parts":        {ManifestVersion: SetManifestVersion, Set: set()},
		"version 2 alone": {ManifestVersion: SetManifestVersion},
	} {
		if _, err := Streams(key, m); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
