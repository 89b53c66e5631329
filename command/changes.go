package command

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/urfave/cli/v3"

	"ttq/precompute"
	"ttq/timeline"
)

func changesCommand() *cli.Command {
	return &cli.Command{
		Name:      "changes",
		Usage:     "print a view's changes between epoch boundaries as NDJSON (a search indexer's feed)",
		ArgsUsage: "VIEW",
		Flags: append([]cli.Flag{
			dataFlag(),
			&cli.StringFlag{Name: "from", Usage: "boundary after which changes start (time literal); default: the view's beginning"},
			&cli.StringFlag{Name: "to", Usage: "last boundary; default: follow new epochs (--server) or the global watermark (embedded)"},
		}, serverFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			view := cmd.Args().First()
			if view == "" {
				return fmt.Errorf("changes: name a view")
			}
			out := cmd.Root().Writer
			if base := cmd.String("server"); base != "" {
				return remoteChanges(ctx, newRemote(base, cmd.String("auth-token")), view, cmd.String("from"), cmd.String("to"), out)
			}
			b, err := openBackend(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			e := b.(embedded).e
			from := timeline.None
			if f := cmd.String("from"); f != "" {
				if from, err = e.ResolveTime(f); err != nil {
					return err
				}
			}
			// Embedded, nothing else advances G: the feed ends at G.
			to, err := e.ResolveTime(cmd.String("to"))
			if err != nil {
				return err
			}
			v, err := e.Catalog().View(view)
			if err != nil {
				return err
			}
			return precompute.Changes(ctx, e, v.Name, from, to, func(c precompute.Change) error {
				line, err := precompute.EncodeChange(v, c)
				if err != nil {
					return err
				}
				_, err = out.Write(line)
				return err
			})
		},
	}
}

// remoteChanges streams GET /v1/views/{view}/changes to out.
func remoteChanges(ctx context.Context, r *remote, view, from, to string, out io.Writer) error {
	q := url.Values{}
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	resp, err := r.get(ctx, "/v1/views/"+url.PathEscape(view)+"/changes", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(out, resp.Body)
	if ctx.Err() != nil {
		return nil // interrupted while following: a normal end
	}
	return err
}
