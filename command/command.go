// Package command implements the ttq command line: sql, load, shell, serve
// and demo.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v3"
)

// DefaultData is the data directory used when --data is not given.
const DefaultData = "ttq-data"

// Main runs the CLI and returns the process exit code. Every failure is one
// line on stderr.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	if err := app.Run(ctx, args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() == 0 {
			return 0
		}
		fmt.Fprintln(stderr, "ttq: "+oneLine(err))
		return 1
	}
	return 0
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

func dataFlag() cli.Flag {
	return &cli.StringFlag{Name: "data", Usage: "data directory of an embedded store", Value: DefaultData, Sources: cli.EnvVars("TTQ_DATA")}
}

func serverFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "server", Usage: "URL of a running ttq server (instead of --data)", Sources: cli.EnvVars("TTQ_SERVER")},
		&cli.StringFlag{Name: "auth-token", Usage: "bearer token for --server", Sources: cli.EnvVars("TTQ_AUTH_TOKEN")},
	}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "ttq",
		Usage:     "timeline-consistent snapshots and time-travel SQL",
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once, by Main.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Commands: []*cli.Command{
			sqlCommand(),
			loadCommand(),
			shellCommand(),
			demoCommand(),
			serveCommand(),
			exportCommand(),
			changesCommand(),
		},
	}
}

func openInput(name string, stdin io.Reader) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(stdin), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return f, nil
}
