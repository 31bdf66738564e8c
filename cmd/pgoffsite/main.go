// Command pgoffsite keeps off-site copies of Heroku Postgres backups in a bucket you own.
package main

import (
	"os"

	"github.com/pgoffsite/pgoffsite/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
