package command

import (
	"context"
	"io"

	"github.com/urfave/cli/v3"

	"ttq/engine"
	"ttq/query"
)

// backend is where statements run: an embedded store or a server.
type backend interface {
	Exec(ctx context.Context, sql string) (*query.Result, error)
	Load(ctx context.Context, r io.Reader, name string) (engine.Counts, error)
	Close() error
}

type embedded struct{ e *engine.Engine }

func (b embedded) Exec(ctx context.Context, sql string) (*query.Result, error) {
	return b.e.Exec(ctx, sql, query.Options{})
}

func (b embedded) Load(ctx context.Context, r io.Reader, name string) (engine.Counts, error) {
	return b.e.Load(ctx, r, name)
}

func (b embedded) Close() error { return b.e.Close() }

func openBackend(cmd *cli.Command) (backend, error) {
	if url := cmd.String("server"); url != "" {
		return newRemote(url, cmd.String("auth-token")), nil
	}
	e, err := engine.Open(cmd.String("data"), engine.Options{})
	if err != nil {
		return nil, err
	}
	return embedded{e}, nil
}
