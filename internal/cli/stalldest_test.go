package cli

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var openedUpload = regexp.MustCompile(`upload=s3://([^/\s]+)/(stalled/\S+) upload_id=(\S+)`)

// One of two S3 destinations stops answering mid-upload (Toxiproxy's timeout toxic: its answers
// never come, the connection stays open), with the production limits: the run gives that copy
// up within about two minutes, names it in a warning that says what to check, completes the
// healthy copy, and once the stalled one answers again it holds nothing of the run: no object
// and no open multipart upload.
func TestBackupOneDestinationStopsAnswering(t *testing.T) {
	w := newWorld(t)
	proxy, num := w.bigBackupBehindProxy(2000) // the toxic below lands mid-upload
	env := smallParts(w.env("shop"))
	env["BACKUP_MODE"] = "latest"
	stalledName := "s3://" + w.bucket + "/stalled"
	env["ARCHIVE_URL"] = "s3://" + w.bucket + "/pgbackups " + stalledName + "?endpoint=http://" + proxy.Listen
	cmd, out := startBinary(t, env, "backup")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	// The stalled destination's upload holds a part: the job knows its ID.
	var key, uploadID string
	for deadline := time.Now().Add(90 * time.Second); uploadID == "" || !w.partsStored(key, uploadID); {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the upload to %s never held a part:\n%s", stalledName, out)
		}
		if m := openedUpload.FindStringSubmatch(out.String()); m != nil {
			key, uploadID = m[2], m[3]
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	toxic := proxy.AddToxic(t, "timeout", "downstream", map[string]any{"timeout": 0})
	stalledAt := time.Now()
	select {
	case <-exited:
	case <-time.After(4 * time.Minute):
		stop()
		t.Fatalf("the run was still going 4 minutes after the destination stopped answering:\n%s", out)
	}
	took := time.Since(stalledAt)
	t.Logf("the run ended %s after the destination stopped answering; output:\n%s", took.Round(time.Second), out)
	w.assertNoSecrets(out.String())
	if took > 150*time.Second {
		t.Errorf("the run ended %s after the destination stopped answering, want well under 2.5 minutes", took.Round(time.Second))
	}
	if code := cmd.ProcessState.ExitCode(); code != ExitFailed {
		t.Errorf("exit %d, want %d", code, ExitFailed)
	}
	hasAll(t, out.String(), "stopped answering", "level=warn", "destination="+stalledName, "hint=\"check that "+stalledName)
	hasAll(t, out.String(), "summary: FAILED", "copies_stored=", `copies_failed=["`+stalledName+`"]`)
	m, dump := w.manifest("shop", "DATABASE")
	w.checkArchive("shop", m, dump)
	if !bytesEqual(dump, w.simBackup("shop", num)) {
		t.Error("the healthy copy differs from Heroku's backup")
	}

	// The stalled destination answers again: nothing of the run is there.
	proxy.RemoveToxic(t, toxic)
	list, err := w.s3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(w.bucket), Prefix: aws.String("stalled/")})
	if err != nil || len(list.Contents) != 0 {
		t.Errorf("objects at the stalled destination: %v %v", err, list.Contents)
	}
	if open := w.minio.IncompleteUploadsOf(t, w.bucket, key); len(open) != 0 {
		t.Errorf("multipart uploads left open at the stalled destination: %v", open)
	}
}

// partsStored reports whether the upload holds a part, asked of MinIO directly.
func (w *world) partsStored(key, uploadID string) bool {
	parts, err := w.s3().ListParts(context.Background(), &s3.ListPartsInput{Bucket: aws.String(w.bucket), Key: aws.String(key), UploadId: aws.String(uploadID)})
	return err == nil && len(parts.Parts) > 0
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
