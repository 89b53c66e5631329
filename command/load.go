package command

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"ttq/engine"
)

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:      "load",
		Usage:     "ingest NDJSON update envelopes (- reads standard input)",
		ArgsUsage: "FILE...",
		Flags:     append([]cli.Flag{dataFlag()}, serverFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			files := cmd.Args().Slice()
			if len(files) == 0 {
				return fmt.Errorf("nothing to load: give one or more NDJSON files, or - for standard input")
			}
			b, err := openBackend(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			var total engine.Counts
			for _, f := range files {
				r, err := openInput(f, cmd.Root().Reader)
				if err != nil {
					return err
				}
				name := f
				if f == "-" {
					name = "stdin"
				}
				c, err := b.Load(ctx, r, name)
				r.Close()
				total.Add(c)
				if err != nil {
					return fmt.Errorf("load %s: %w (after %d applied, %d rejected)", name, err, total.Applied, total.Rejected)
				}
			}
			fmt.Fprintf(cmd.Root().Writer, "applied %d, watermarks %d, rejected %d\n", total.Applied, total.Watermarks, total.Rejected)
			return nil
		},
	}
}
