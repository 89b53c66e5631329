package command

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v3"

	"ttq/engine"
	"ttq/export"
	"ttq/query"
	"ttq/types"
)

// exportMemoryLimit is the soft memory limit of `ttq export` unless
// GOMEMLIMIT says otherwise.
const exportMemoryLimit = 1 << 30

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a snapshot of a table or a query for analytics (parquet, arrow, csv, ndjson)",
		ArgsUsage: "[TABLE]",
		Flags: append([]cli.Flag{
			dataFlag(),
			&cli.StringFlag{Name: "as-of", Usage: "snapshot time (RFC 3339, microseconds, or '-1h'); default: the global watermark"},
			&cli.StringFlag{Name: "e", Aliases: []string{"execute"}, Usage: "export the result of this SELECT instead of a table"},
			&cli.StringFlag{Name: "format", Value: "parquet", Usage: "parquet, arrow, csv or ndjson"},
			&cli.StringFlag{Name: "out", Usage: "output file (- for standard output)", Required: true},
		}, serverFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if os.Getenv("GOMEMLIMIT") == "" {
				// An export streams: its live heap is Badger's block cache
				// and one batch. A soft limit keeps the garbage of millions
				// of decoded rows from growing the process far beyond that.
				debug.SetMemoryLimit(exportMemoryLimit)
			}
			table, sql := cmd.Args().First(), cmd.String("e")
			if (table == "") == (sql == "") {
				return fmt.Errorf("export: give a TABLE or -e \"SELECT ...\", not both")
			}
			out := cmd.Root().Writer
			var file *os.File
			if name := cmd.String("out"); name != "-" {
				f, err := os.Create(name)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer f.Close()
				file, out = f, f
			}
			// Writers such as Parquet's close what they are given; the file
			// is synced and closed here instead.
			out = struct{ io.Writer }{out}
			b, err := openBackend(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			asOf := cmd.String("as-of")
			var rows int64
			if rb, ok := b.(*remote); ok {
				// The server writes the file; it streams a table.
				err = remoteExport(ctx, rb, table, sql, asOf, cmd.String("format"), out)
				rows = -1
			} else if emb, ok := b.(embedded); ok && table != "" {
				rows, err = exportTable(ctx, emb.e, table, asOf, cmd.String("format"), out)
			} else {
				if sql == "" {
					sql = "SELECT * FROM " + table
				}
				rows, err = exportQuery(ctx, b, sql, asOf, cmd.String("format"), out)
			}
			if err != nil {
				return err
			}
			if file != nil {
				if err := file.Sync(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
			if rows >= 0 {
				fmt.Fprintf(cmd.Root().ErrWriter, "exported %d rows\n", rows)
			}
			return nil
		},
	}
}

// exportTable streams a base table from an embedded store: memory stays
// bounded by one Arrow batch however large the table is.
func exportTable(ctx context.Context, e *engine.Engine, table, asOf, format string, out interface{ Write([]byte) (int, error) }) (int64, error) {
	ts, err := e.ResolveTime(asOf)
	if err != nil {
		return 0, err
	}
	t, err := e.Catalog().Table(table)
	if err != nil {
		return 0, err
	}
	w, err := export.NewWriter(out, format, t.Columns, ts)
	if err != nil {
		return 0, err
	}
	if _, err := e.ScanTable(ctx, table, ts, func(row []types.Value) error { return w.WriteRow(row) }); err != nil {
		return 0, err
	}
	return w.Rows(), w.Close()
}

// exportQuery runs a SELECT (AS OF the given time, if any) and writes its
// result.
func exportQuery(ctx context.Context, b backend, sql, asOf, format string, out interface{ Write([]byte) (int, error) }) (int64, error) {
	if asOf != "" {
		var err error
		if sql, err = query.WithAsOf(sql, asOf); err != nil {
			return 0, err
		}
	}
	r, err := b.Exec(ctx, sql)
	if err != nil {
		return 0, err
	}
	defer r.Release()
	if r.Status != "" {
		return 0, fmt.Errorf("export: %q returns no rows; give a SELECT", sql)
	}
	w, err := export.NewWriter(out, format, r.Columns, r.AsOf)
	if err != nil {
		return 0, err
	}
	if err := w.WriteResult(r); err != nil {
		return 0, err
	}
	return w.Rows(), w.Close()
}

// remoteExport asks the server for the file (GET /v1/export) and copies it.
func remoteExport(ctx context.Context, r *remote, table, sql, asOf, format string, out io.Writer) error {
	q := url.Values{"format": {format}}
	if table != "" {
		q.Set("table", table)
	} else {
		q.Set("sql", sql)
	}
	if asOf != "" {
		q.Set("as_of", asOf)
	}
	resp, err := r.get(ctx, "/v1/export", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
