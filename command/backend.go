package command

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v3"

	"ttq/engine"
	"ttq/query"
	"ttq/timeline"
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

// engineOptions reads the store options that a command may set.
func engineOptions(cmd *cli.Command) (engine.Options, error) {
	var o engine.Options
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"retention", &o.Retention}, {"epoch", &o.EpochLength}} {
		if !cmd.IsSet(f.name) && cmd.String(f.name) == "" {
			continue
		}
		v := cmd.String(f.name)
		if v == "" {
			continue
		}
		d, err := timeline.ParseDuration(v)
		if err != nil {
			return o, fmt.Errorf("--%s: %w", f.name, err)
		}
		*f.dst = d
	}
	if v := cmd.String("block-cache"); v != "" {
		n, err := parseSize(v)
		if err != nil {
			return o, fmt.Errorf("--block-cache: %w", err)
		}
		o.BlockCache = n
	}
	if v := cmd.String("segment-cache"); strings.EqualFold(v, "off") {
		o.SegmentCache = -1
	} else if v != "" {
		n, err := parseSize(v)
		if err != nil {
			return o, fmt.Errorf("--segment-cache: %w (or off)", err)
		}
		o.SegmentCache = n
	}
	o.CheckpointPoll = cmd.Duration("checkpoint-poll")
	if cmd.IsSet("checkpoint-min") || cmd.Int64("checkpoint-min") != 0 {
		o.CheckpointMin = cmd.Int64("checkpoint-min")
		if o.CheckpointMin == 0 {
			return o, fmt.Errorf("--checkpoint-min: a positive number of versions, or -1 for no checkpoints")
		}
	}
	return o, nil
}

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
