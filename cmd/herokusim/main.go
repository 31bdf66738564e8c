// Command herokusim serves a simulated Heroku — Platform API, Data API and backup storage — on
// three local ports, with one app whose Postgres database is a real one, for the demo and for
// running tools/herokusim-conformance by hand:
//
//	herokusim --token KEY --app shop --database-url postgres://postgres@127.0.0.1:5432/shop
//
// Once ready it prints one line, "platform=URL data=URL storage=URL", and serves until SIGINT or
// SIGTERM. It logs one line per request to stderr, without query strings (signed URLs' secrets).
//
// The platform origin also serves every Data API path and the storage, as the real Heroku CLI
// needs (it sends Data API calls to HEROKU_DATA_HOST with the scheme and port of HEROKU_HOST).
// With --tls --ca-file PATH all three serve HTTPS with a certificate from a CA it makes and
// writes to PATH (PEM), before the ready line; signed URLs are then https too. The real CLI then
// works unchanged:
//
//	HEROKU_HOST=https://127.0.0.1:PORT HEROKU_DATA_HOST=127.0.0.1 NODE_EXTRA_CA_CERTS=PATH \
//	HEROKU_API_KEY=KEY heroku pg:backups -a shop
//
// POST /herokusim/run-schedule on the platform origin (with the key) runs the database's backup
// schedule now, as Heroku would at the scheduled hour, and answers 201 {"num": N}.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	token, app, billingApp, attachment, plan, databaseURL, listenHost, pgDump, dumpDir string
	postgresAdmin                                                                      string

	useTLS bool   // serve HTTPS
	caFile string // where the CA certificate is written, with useTLS
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("herokusim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.token, "token", "", "the API key the simulator accepts (required)")
	fs.StringVar(&o.app, "app", "", "the app the database is attached to (required)")
	fs.StringVar(&o.billingApp, "billing-app", "", "the app the database is billed to (default: --app)")
	fs.StringVar(&o.attachment, "attachment", "DATABASE", "the attachment name (config var <NAME>_URL)")
	fs.StringVar(&o.plan, "plan", "heroku-postgresql:standard-0", "the add-on plan")
	fs.StringVar(&o.databaseURL, "database-url", "", "URL of the real PostgreSQL database that captures dump (required)")
	fs.StringVar(&o.listenHost, "listen-host", "127.0.0.1", "the host to listen on")
	fs.StringVar(&o.pgDump, "pg-dump", "", "pg_dump to run (default: PATH, else /usr/lib/postgresql/*/bin)")
	fs.StringVar(&o.dumpDir, "dump-dir", "", "where captured backups are kept (default: a temporary directory)")
	fs.StringVar(&o.postgresAdmin, "postgres-admin", "", "URL of a database on a server where add-ons provisioned through POST /apps/{app}/addons (restore drills) get fresh databases (default: no such provisioning)")
	fs.BoolVar(&o.useTLS, "tls", false, "serve HTTPS with a certificate from a CA made at start (needs --ca-file)")
	fs.StringVar(&o.caFile, "ca-file", "", "with --tls: where to write the CA certificate (PEM) clients must trust")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--token", o.token}, {"--app", o.app}, {"--database-url", o.databaseURL}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return o, fmt.Errorf("missing %v", missing)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.useTLS != (o.caFile != "") {
		return o, errors.New("--tls and --ca-file go together: --tls --ca-file PATH writes the CA clients must trust to PATH")
	}
	if o.billingApp == "" {
		o.billingApp = o.app
	}
	return o, nil
}

// run serves until ctx ends and returns the exit status: 0, 1 on a failure, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "herokusim: %v\n", err)
		return 2
	}

	sim := herokusim.New(herokusim.Options{Token: o.token, PgDump: o.pgDump, DumpDir: o.dumpDir, PostgresAdmin: o.postgresAdmin})
	defer sim.Close()
	sim.AddApp(o.billingApp)
	sim.AddApp(o.app)
	addon := sim.AddDatabase(o.billingApp, o.attachment, o.plan, o.databaseURL)
	if o.app != o.billingApp {
		sim.Attach(addon, o.app, o.attachment, nil)
	}

	var ca *herokusim.CA
	scheme := "http"
	if o.useTLS {
		if ca, err = herokusim.NewCA(); err == nil {
			err = ca.WriteFile(o.caFile)
		}
		if err != nil {
			fmt.Fprintf(stderr, "herokusim: %v\n", err)
			return 1
		}
		scheme = "https"
		sim.SetFetchClient(ca.Client())
	}

	log := &lineLog{w: stderr}
	platform := http.NewServeMux()
	platform.Handle("POST /herokusim/run-schedule", runSchedule(sim, addon, o.token))
	platform.Handle("/", sim.Origin())
	apis := []struct {
		route   func(path string) string // the API a request belongs to, for the log
		handler http.Handler
	}{
		{herokusim.Route, platform},
		{func(string) string { return "data" }, sim.Data()},
		{func(string) string { return "storage" }, sim.Storage()},
	}
	servers := make([]*http.Server, len(apis))
	listeners := make([]net.Listener, len(apis))
	urls := make([]string, len(apis))
	for i, a := range apis {
		l, err := net.Listen("tcp", net.JoinHostPort(o.listenHost, "0"))
		if err != nil {
			for _, l := range listeners[:i] {
				l.Close()
			}
			fmt.Fprintf(stderr, "herokusim: listen on %s: %v\n", o.listenHost, err)
			return 1
		}
		urls[i] = scheme + "://" + l.Addr().String()
		servers[i] = &http.Server{Handler: log.wrap(a.route, a.handler), ReadHeaderTimeout: 10 * time.Second}
		if ca != nil {
			l = tls.NewListener(l, ca.ServerConfig())
		}
		listeners[i] = l
	}
	sim.SetStorageURL(urls[2])

	errs := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errs <- srv.Serve(listeners[i]) }()
	}
	fmt.Fprintf(stdout, "platform=%s data=%s storage=%s\n", urls[0], urls[1], urls[2])

	status := 0
	select {
	case <-ctx.Done():
	case err := <-errs:
		fmt.Fprintf(stderr, "herokusim: serve: %v\n", err)
		status = 1
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdown); err != nil {
			srv.Close()
		}
	}
	return status
}

// lineLog writes one line per request: API, method, path (never the query) and status.
type lineLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineLog) wrap(route func(path string) string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		status := ""
		if rec.status != 0 {
			status = strconv.Itoa(rec.status) + " "
		}
		switch {
		case rec.hijacked: // a storage fault took the raw connection and closed it
			status += "connection-closed"
		case status == "":
			status = "200"
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		fmt.Fprintf(l.w, "herokusim: %s %s %s %s\n", route(r.URL.Path), r.Method, r.URL.Path, strings.TrimSpace(status))
	})
}

// runSchedule runs the database's backup schedule now: a knob for demos and tests of scheduled
// backups, behind the same key as the APIs.
func runSchedule(sim *herokusim.Sim, addonID, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"id":"unauthorized","message":"Invalid credentials provided."}`)
			return
		}
		num, err := sim.RunSchedule(addonID)
		if errors.Is(err, herokusim.ErrNoSchedule) {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintln(w, `{"id":"no_schedule","message":"The database has no backup schedule: heroku pg:backups:schedule sets one."}`)
			return
		}
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "{\"id\":\"internal_server_error\",\"message\":%q}\n", err.Error())
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "{\"num\":%d}\n", num)
	})
}

// statusWriter remembers the status; it lets the simulator flush and hijack the connection
// under it (its storage faults cut connections).
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
