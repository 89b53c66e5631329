package command

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v3"

	"ttq/query"
)

func formatFlag() cli.Flag {
	return &cli.StringFlag{Name: "format", Usage: "output format: table, csv or json", Value: "table",
		Validator: func(s string) error {
			switch s {
			case "table", "csv", "json":
				return nil
			}
			return fmt.Errorf("--format %q: use table, csv or json", s)
		}}
}

func sqlCommand() *cli.Command {
	return &cli.Command{
		Name:  "sql",
		Usage: "run SQL statements on a data directory or a server",
		Flags: append([]cli.Flag{
			dataFlag(),
			&cli.StringFlag{Name: "e", Aliases: []string{"execute"}, Usage: "statements to run"},
			&cli.StringFlag{Name: "f", Aliases: []string{"file"}, Usage: "file of statements to run (- for stdin)"},
			formatFlag(),
		}, serverFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			script := cmd.String("e")
			if f := cmd.String("f"); f != "" {
				if script != "" {
					return fmt.Errorf("give either -e or -f, not both")
				}
				r, err := openInput(f, cmd.Root().Reader)
				if err != nil {
					return err
				}
				b, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					return fmt.Errorf("read %s: %w", f, err)
				}
				script = string(b)
			}
			if script == "" {
				return fmt.Errorf("nothing to run: give -e \"SQL\" or -f FILE")
			}
			b, err := openBackend(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			return runScript(ctx, b, script, cmd.String("format"), cmd.Root().Writer)
		},
	}
}

// runScript runs each statement and prints its result; it stops at the first
// failing statement and returns its error.
func runScript(ctx context.Context, b backend, script, format string, w io.Writer) error {
	stmts, err := query.Split(script)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		r, err := b.Exec(ctx, s)
		if err != nil {
			return err
		}
		err = printResult(w, r, format)
		r.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

func printResult(w io.Writer, r *query.Result, format string) error {
	if w == nil {
		w = os.Stdout
	}
	if r.Status != "" {
		// DDL: a confirmation for people; CSV and JSON carry only data.
		if format == "table" {
			_, err := fmt.Fprintln(w, r.Status)
			return err
		}
		return nil
	}
	switch format {
	case "csv":
		return query.WriteCSV(w, r)
	case "json":
		return query.WriteJSON(w, r)
	}
	return query.WriteTable(w, r)
}
