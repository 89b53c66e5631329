package command

import (
	"context"
	"fmt"
	"io"

	"ttq/engine"
	"ttq/query"
)

// remote runs statements on a ttq server over HTTP.
type remote struct {
	url, token string
}

func newRemote(url, token string) *remote { return &remote{url: url, token: token} }

func (r *remote) Exec(ctx context.Context, sql string) (*query.Result, error) {
	return nil, fmt.Errorf("--server is not supported yet")
}

func (r *remote) Load(ctx context.Context, in io.Reader, name string) (engine.Counts, error) {
	return engine.Counts{}, fmt.Errorf("--server is not supported yet")
}

func (r *remote) Close() error { return nil }
