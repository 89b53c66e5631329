package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/chzyer/readline"
	"github.com/urfave/cli/v3"
)

const shellHelp = `Statements end with ';' and may span lines.
  \help            this help
  \format FORMAT   table, csv or json
  \q               quit (also Ctrl-D)
Examples:
  SHOW TABLES;
  SELECT * FROM ttq_watermarks;
  SELECT * FROM prices AS OF '-5s' WHERE product_id = 'P1';`

func shellCommand() *cli.Command {
	return &cli.Command{
		Name:  "shell",
		Usage: "interactive SQL shell with line editing and history",
		Flags: append([]cli.Flag{dataFlag(), formatFlag()}, serverFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			b, err := openBackend(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			return runShell(ctx, b, cmd.String("format"), cmd.Root().Reader, cmd.Root().Writer, cmd.Root().ErrWriter)
		},
	}
}

func historyFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".ttq_history")
}

func runShell(ctx context.Context, b backend, format string, in io.Reader, out, errw io.Writer) error {
	rl, err := readline.NewEx(&readline.Config{
		Prompt:          "ttq> ",
		HistoryFile:     historyFile(),
		Stdin:           io.NopCloser(in),
		Stdout:          out,
		Stderr:          errw,
		InterruptPrompt: "^C",
		EOFPrompt:       `\q`,
	})
	if err != nil {
		return fmt.Errorf("shell: %w", err)
	}
	defer rl.Close()
	fmt.Fprintln(out, `ttq shell. \help for help, \q to quit.`)
	var buf strings.Builder
	for {
		if buf.Len() == 0 {
			rl.SetPrompt("ttq> ")
		} else {
			rl.SetPrompt("...> ")
		}
		line, err := rl.Readline()
		if errors.Is(err, readline.ErrInterrupt) {
			buf.Reset()
			continue
		}
		if err != nil { // io.EOF
			return nil
		}
		trimmed := strings.TrimSpace(line)
		if buf.Len() == 0 && strings.HasPrefix(trimmed, `\`) {
			f := strings.Fields(trimmed)
			switch f[0] {
			case `\q`, `\quit`:
				return nil
			case `\help`, `\h`, `\?`:
				fmt.Fprintln(out, shellHelp)
			case `\format`:
				if len(f) == 2 && (f[1] == "table" || f[1] == "csv" || f[1] == "json") {
					format = f[1]
				} else {
					fmt.Fprintln(errw, `error: \format table|csv|json`)
				}
			default:
				fmt.Fprintf(errw, "error: unknown command %s (try \\help)\n", f[0])
			}
			continue
		}
		if trimmed == "" && buf.Len() == 0 {
			continue
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
		if !strings.HasSuffix(trimmed, ";") {
			continue
		}
		stmt := buf.String()
		buf.Reset()
		if err := runScript(ctx, b, stmt, format, out); err != nil {
			fmt.Fprintln(errw, "error: "+oneLine(err))
		}
	}
}
