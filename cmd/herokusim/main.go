// Command herokusim serves the Heroku simulator (Platform API, Data API and backup storage) with
// one app whose database is a real local PostgreSQL: for bin/demo and manual conformance runs.
//
//	herokusim --token T --app shop --database-url postgres://127.0.0.1:5432/shop
//
// prints one line, "platform=URL data=URL storage=URL", once it listens, and serves until
// SIGINT or SIGTERM.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
)

func main() {
	token := flag.String("token", "", "the API key the simulator accepts (required)")
	app := flag.String("app", "", "the app the database is attached to (required)")
	billing := flag.String("billing-app", "", "the app the database is billed to (default: --app)")
	attachment := flag.String("attachment", "DATABASE", "the attachment name (config var <name>_URL)")
	dsn := flag.String("database-url", "", "the real PostgreSQL database captures dump (required)")
	host := flag.String("listen-host", "127.0.0.1", "where to listen")
	storageURL := flag.String("storage-url", "", "base URL to put in signed URLs (e.g. a proxy in front of the storage listener)")
	flag.Parse()
	if *token == "" || *app == "" || *dsn == "" {
		fmt.Fprintln(os.Stderr, "herokusim: --token, --app and --database-url are required")
		flag.Usage()
		os.Exit(2)
	}
	if *billing == "" {
		*billing = *app
	}
	sim := herokusim.New(herokusim.Options{Token: *token})
	defer sim.Close()
	sim.AddApp(*app)
	addon := sim.AddDatabase(*billing, *attachment, "heroku-postgresql:standard-0", *dsn)
	if *billing != *app {
		sim.Attach(addon, *app, *attachment, nil)
	}

	var servers []*http.Server
	serve := func(name string, h http.Handler) string {
		l, err := net.Listen("tcp", net.JoinHostPort(*host, "0"))
		if err != nil {
			log.Fatalf("herokusim: listen: %v", err)
		}
		srv := &http.Server{Handler: logRequests(name, h), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go srv.Serve(l)
		return "http://" + l.Addr().String()
	}
	platform := serve("platform", sim.Platform())
	data := serve("data", sim.Data())
	storage := serve("storage", sim.Storage())
	if *storageURL == "" {
		*storageURL = storage
	}
	sim.SetStorageURL(*storageURL)
	fmt.Printf("platform=%s data=%s storage=%s\n", platform, data, storage)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(shutdown)
	}
}

// logRequests logs one line per request to stderr: never the query string (it holds signatures).
func logRequests(api string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		h.ServeHTTP(rec, r)
		log.Printf("%s %s %s %d", api, r.Method, r.URL.Path, rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush and Hijack keep the storage's streaming and connection-cut faults working behind the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack keeps the storage's connection-cut faults working behind the recorder.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return r.ResponseWriter.(http.Hijacker).Hijack()
}
