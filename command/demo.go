package command

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"ttq/demo"
	"ttq/engine"
	"ttq/query"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "seed the shop scenario into an embedded store and walk through it",
		Flags: []cli.Flag{dataFlag()},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			dir := cmd.String("data")
			e, err := engine.Open(dir, engine.Options{})
			if err != nil {
				return err
			}
			defer e.Close()
			w := cmd.Root().Writer
			if err := Seed(ctx, e); err != nil {
				return err
			}
			for i, s := range demo.Walk {
				fmt.Fprintf(w, "\n-- %d. %s\nttq> %s;\n", i+1, s.Say, s.SQL)
				r, err := e.Exec(ctx, s.SQL, query.Options{})
				if err != nil {
					fmt.Fprintf(w, "error: %s\n", oneLine(err))
					continue
				}
				err = query.WriteTable(w, r)
				r.Release()
				if err != nil {
					return err
				}
			}
			fmt.Fprintf(w, "\nThe store is in %s. Explore it with:\n  go run ./cmd/ttq shell --data %s\n", dir, dir)
			return nil
		},
	}
}

// Seed loads the demo scenario into e unless it already holds tables.
func Seed(ctx context.Context, e *engine.Engine) error {
	if len(e.Catalog().Tables) > 0 {
		return nil
	}
	stmts, err := query.Split(demo.Schema)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		r, err := e.Exec(ctx, s, query.Options{})
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		r.Release()
	}
	_, err = e.Load(ctx, strings.NewReader(demo.Updates), "demo/updates.ndjson")
	return err
}
