package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/notify"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// checker prints one line per check and counts failures.
type checker struct {
	w      io.Writer
	failed int
}

func (c *checker) ok(format string, a ...any)   { fmt.Fprintf(c.w, "ok    "+format+"\n", a...) }
func (c *checker) warn(format string, a ...any) { fmt.Fprintf(c.w, "warn  "+format+"\n", a...) }
func (c *checker) fail(format string, a ...any) {
	c.failed++
	fmt.Fprintf(c.w, "FAIL  "+format+"\n", a...)
}

// runCheck is `pgoffsite check`: the preflight a Deploy-button user runs once
// (`heroku run pgoffsite check`) to learn whether a backup run would work, and what to fix if not.
func runCheck(ctx context.Context, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(stderr, "pgoffsite: the configuration has problems:\n%s\n", err)
		return ExitUsage
	}
	c := &checker{w: newRedactor(cfg).Wrap(stdout)}
	c.ok("configuration: %d target(s), mode %s, archive %s", len(cfg.Targets), cfg.Mode, cfg.Archive)

	hk := heroku.New(heroku.Options{APIKey: cfg.HerokuAPIKey, PlatformURL: cfg.HerokuAPIURL, DataURL: cfg.HerokuDataAPIURL,
		UserAgent: version.UserAgent(), RetryBudget: 20 * time.Second})
	email, err := hk.Account(ctx)
	if err != nil {
		c.fail("Heroku API key: %v", err)
		return finishCheck(c)
	}
	c.ok("Heroku API key belongs to %s", email)
	switch in, expires, known, err := hk.KeyExpiry(ctx); {
	case err != nil || !known:
		c.warn("could not tell whether the API key expires; keys from `heroku login` do — use one from `heroku authorizations:create`")
	case expires:
		c.warn("the API key expires in %s (a `heroku login` key?): scheduled runs will start failing then; create a long-lived one with `heroku authorizations:create`", in.Round(time.Hour))
	default:
		c.ok("the API key does not expire")
	}

	for _, t := range cfg.Targets {
		db, err := hk.Resolve(ctx, t.App, t.Database)
		if err != nil {
			c.fail("%s: %v", t, err)
			continue
		}
		billed := ""
		if db.BillingApp != db.App {
			billed = ", billed to " + db.BillingApp
		}
		c.ok("%s: add-on %s (%s) attached as %s%s", t, db.AddonName, db.Plan, db.Attachment, billed)
		b, err := hk.Latest(ctx, db)
		switch {
		case err != nil && cfg.Mode == "latest":
			c.fail("%s: %v", t, err)
		case err != nil:
			c.warn("%s: Heroku has no successful backup yet (capture mode makes one each run)", t)
		default:
			age := time.Since(b.FinishedAt.Time).Round(time.Minute)
			if cfg.Mode == "latest" && age > cfg.MaxAge {
				c.fail("%s: newest backup %s is %s old, older than BACKUP_MAX_AGE=%s: check `heroku pg:backups:schedules -a %s`", t, b.Name(), age, cfg.MaxAge, db.App)
			} else {
				c.ok("%s: newest Heroku backup %s, %s old, %d bytes", t, b.Name(), age, b.ProcessedBytes)
			}
		}
	}

	store, err := openStore(ctx, cfg)
	if err != nil {
		c.fail("archive %s: %v", cfg.Archive, err)
	} else {
		// Written the way the job writes (PutObject, If-None-Match); the uploader cannot delete
		// it, so it stays until the bucket's lifecycle rules expire it.
		key := fmt.Sprintf("_pgoffsite-check/%s-%s.txt", time.Now().UTC().Format("20060102T150405Z"), randomSuffix())
		body := "written by `pgoffsite check` to prove the uploader can write here; safe to delete\n"
		err := store.Put(ctx, archive.Object{Key: key, Size: int64(len(body)), ContentType: "text/plain"}, strings.NewReader(body))
		if err != nil {
			c.fail("archive %s is not writable: %v", cfg.Archive, err)
		} else {
			c.ok("archive is writable: wrote %s", store.Location(key))
		}
	}

	n, err := notify.New(notify.Options{HeartbeatURL: cfg.HeartbeatURL, WebhookURL: cfg.WebhookURL, Timeout: 10 * time.Second})
	if err == nil && (cfg.HeartbeatURL != "" || cfg.WebhookURL != "") {
		if errs := n.Check(ctx); len(errs) > 0 {
			for _, e := range errs {
				c.fail("notification: %v", e)
			}
		} else {
			c.ok("notification endpoints answer (their hosts are reachable)")
		}
	} else if cfg.HeartbeatURL == "" {
		c.warn("no HEARTBEAT_URL: a run that Heroku Scheduler skips or that dies will go unnoticed; add a healthchecks.io (or similar) check")
	}
	return finishCheck(c)
}

func finishCheck(c *checker) int {
	if c.failed > 0 {
		fmt.Fprintf(c.w, "%d check(s) failed\n", c.failed)
		return ExitFailed
	}
	fmt.Fprintln(c.w, "all checks passed")
	return ExitOK
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
