package command

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"ttq/engine"
	"ttq/kafka"
	"ttq/server"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the store over HTTP: SQL, ingest, watermarks, health and Prometheus metrics",
		Flags: []cli.Flag{
			dataFlag(),
			&cli.StringFlag{Name: "listen", Usage: "address to listen on (port 0 picks a free port)", Value: "127.0.0.1:7070", Sources: cli.EnvVars("TTQ_LISTEN")},
			&cli.StringFlag{Name: "auth-token", Usage: "the admin token: require Authorization: Bearer TOKEN on every /v1 route (prefer the environment variable: arguments are visible to other users)", Sources: cli.EnvVars("TTQ_AUTH_TOKEN")},
			&cli.StringFlag{Name: "read-token", Usage: "a second token that may only read: SELECT, SHOW, DESCRIBE, EXPLAIN, watermarks (needs --auth-token)", Sources: cli.EnvVars("TTQ_READ_TOKEN")},
			&cli.BoolFlag{Name: "insecure-listen-any", Usage: "allow a non-loopback --listen without --auth-token"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS with this PEM certificate (chain) file; needs --tls-key", Sources: cli.EnvVars("TTQ_TLS_CERT")},
			&cli.StringFlag{Name: "tls-key", Usage: "the PEM private key of --tls-cert", Sources: cli.EnvVars("TTQ_TLS_KEY")},
			&cli.StringFlag{Name: "max-body", Usage: "largest POST /v1/ingest body (bytes, or with KiB/MiB/GiB)", Value: "64MiB"},
			&cli.StringFlag{Name: "max-sql-body", Usage: "largest POST /v1/sql body", Value: "1MiB"},
			&cli.DurationFlag{Name: "query-timeout", Usage: "longest a statement may run", Value: server.DefaultQueryTimeout},
			&cli.DurationFlag{Name: "max-wait", Usage: "longest a statement may wait for the watermark (the wait option); default --query-timeout"},
			&cli.Int64Flag{Name: "max-rows", Usage: "most rows in one result", Value: server.DefaultMaxResultRows},
			&cli.Int64Flag{Name: "max-held-rows", Usage: "most rows one statement may hold in memory for ORDER BY, GROUP BY, DISTINCT and joins", Value: server.DefaultMaxHeldRows},
			&cli.StringFlag{Name: "max-result-bytes", Usage: "largest encoded result", Value: "256MiB"},
			&cli.IntFlag{Name: "max-concurrent-queries", Usage: "statements running at once; more wait --queue-timeout, then get 429 (default 2*GOMAXPROCS)"},
			&cli.DurationFlag{Name: "queue-timeout", Usage: "how long a statement waits for a free slot", Value: server.DefaultQueueTimeout},
			&cli.IntFlag{Name: "max-concurrent-ingest", Usage: "ingest requests read and applied at once; more wait --ingest-queue-timeout (their bodies unread), then get 429", Value: server.DefaultMaxConcurrentIngest},
			&cli.DurationFlag{Name: "ingest-queue-timeout", Usage: "how long an ingest request waits for a free slot", Value: server.DefaultIngestQueueTimeout},
			&cli.DurationFlag{Name: "ingest-read-timeout", Usage: "longest an ingest body may stall while it holds a slot; then 408", Value: server.DefaultIngestReadTimeout},
			&cli.StringFlag{Name: "min-free-disk", Usage: "refuse ingest and DDL (507) while the data directory's disk has less free space than this; 0 turns the check off", Value: "512MiB"},
			&cli.StringFlag{Name: "kafka-brokers", Usage: "host:port,... of Kafka brokers: consume every declared source's topic", Sources: cli.EnvVars("TTQ_KAFKA_BROKERS")},
			&cli.StringFlag{Name: "kafka-group", Usage: "consumer group to commit offsets to, for lag tools (the store keeps the offsets that count)"},
			&cli.StringFlag{Name: "retention", Usage: "timeline kept queryable behind the global watermark, e.g. 24h (default: everything)"},
			&cli.StringFlag{Name: "epoch", Usage: "default epoch length of views on the timeline", Value: "1s"},
			&cli.StringFlag{Name: "block-cache", Usage: "memory for the store's cache of table blocks (bytes, or with KiB/MiB/GiB)", Value: "256MiB"},
			&cli.DurationFlag{Name: "checkpoint-poll", Usage: "how often the checkpointer looks for tables due a checkpoint", Value: time.Second},
			&cli.Int64Flag{Name: "checkpoint-min", Usage: "versions a table takes, while ingest runs, before a checkpoint of it (and at least 4x its rows); -1 turns checkpoints off", Value: 1_000_000},
			&cli.StringFlag{Name: "segment-cache", Usage: "memory for checkpoints kept for scans (bytes, or with KiB/MiB/GiB), or off", Value: "512MiB"},
			&cli.DurationFlag{Name: "shutdown-timeout", Usage: "how long in-flight requests may finish after SIGTERM/SIGINT", Value: 20 * time.Second},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg := server.Config{
				AuthToken:            cmd.String("auth-token"),
				ReadToken:            cmd.String("read-token"),
				QueryTimeout:         cmd.Duration("query-timeout"),
				MaxWait:              cmd.Duration("max-wait"),
				MaxHeldRows:          cmd.Int64("max-held-rows"),
				MaxResultRows:        cmd.Int64("max-rows"),
				MaxConcurrentQueries: cmd.Int("max-concurrent-queries"),
				QueueTimeout:         cmd.Duration("queue-timeout"),
				MaxConcurrentIngest:  cmd.Int("max-concurrent-ingest"),
				IngestQueueTimeout:   cmd.Duration("ingest-queue-timeout"),
				IngestReadTimeout:    cmd.Duration("ingest-read-timeout"),
				ShutdownTimeout:      cmd.Duration("shutdown-timeout"),
				Logger:               slog.New(slog.NewTextHandler(cmd.Root().ErrWriter, nil)),
			}
			var err error
			for _, f := range []struct {
				flag string
				dst  *int64
			}{{"max-body", &cfg.MaxIngestBytes}, {"max-sql-body", &cfg.MaxSQLBytes}, {"max-result-bytes", &cfg.MaxResultBytes}} {
				if *f.dst, err = parseSize(cmd.String(f.flag)); err != nil {
					return fmt.Errorf("--%s: %w", f.flag, err)
				}
			}
			if err := checkTokens(cfg.AuthToken, cfg.ReadToken); err != nil {
				return err
			}
			if cfg.TLS, err = loadTLS(cmd.String("tls-cert"), cmd.String("tls-key")); err != nil {
				return err
			}
			if v := strings.TrimSpace(cmd.String("min-free-disk")); v != "0" {
				if cfg.MinFreeDisk, err = parseSize(v); err != nil {
					return fmt.Errorf("--min-free-disk: %w", err)
				}
			}
			listen := cmd.String("listen")
			if err := checkListen(listen, cfg.AuthToken != "", cmd.Bool("insecure-listen-any")); err != nil {
				return err
			}
			dir := cmd.String("data")
			cfg.DiskFree = server.DiskFreeOf(dir)
			eopts, err := engineOptions(cmd)
			if err != nil {
				return err
			}
			e, err := engine.Open(dir, eopts)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				e.Close()
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			var kd *kafka.Daemon
			if brokers := cmd.String("kafka-brokers"); brokers != "" {
				kcfg := kafka.Config{Brokers: strings.Split(brokers, ","), Group: cmd.String("kafka-group"), Logger: cfg.Logger}
				if cfg.DiskFree != nil && cfg.MinFreeDisk > 0 {
					diskFree, minFree := cfg.DiskFree, cfg.MinFreeDisk
					kcfg.Guard = func() error {
						if free, err := diskFree(); err == nil && free < minFree {
							return fmt.Errorf("only %d MiB free on the data directory's disk (--min-free-disk %d MiB)", free>>20, minFree>>20)
						}
						return nil
					}
				}
				kd, err = kafka.New(e, kcfg)
				if err != nil {
					ln.Close()
					e.Close()
					return err
				}
				cfg.Components = append(cfg.Components, kd)
				e.RegisterSystemTable("ttq_kafka", kd.SystemTable)
			}
			s := server.New(e, cfg)
			kdone := make(chan struct{})
			kctx, kcancel := context.WithCancel(ctx)
			defer kcancel()
			if kd != nil {
				go func() {
					defer close(kdone)
					if err := kd.Run(kctx); err != nil {
						cfg.Logger.Error("kafka ingestion stopped", "err", err)
					}
				}()
			} else {
				close(kdone)
			}
			scheme := "http"
			if cfg.TLS != nil {
				scheme = "https"
			} else if host, _, _ := net.SplitHostPort(listen); !isLoopback(host) {
				cfg.Logger.Warn("serving plain HTTP beyond loopback: tokens and data cross the network unencrypted; use --tls-cert and --tls-key", "listen", listen)
			}
			fmt.Fprintf(cmd.Root().ErrWriter, "ttq serving on %s://%s (data %s)\n", scheme, ln.Addr(), dir)
			serr := s.Serve(ctx, ln)
			kcancel() // the daemon stops before the store closes under it
			<-kdone
			cerr := e.Close()
			if serr != nil || cerr != nil {
				return errors.Join(serr, cerr)
			}
			fmt.Fprintln(cmd.Root().ErrWriter, "ttq server stopped")
			return nil
		},
	}
}

// checkListen refuses a non-loopback address without a token unless the
// operator said so.
func checkListen(addr string, hasToken, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port such as 127.0.0.1:7070: %w", addr, err)
	}
	if hasToken || insecure || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("--listen %s is reachable from other machines: set --auth-token (or TTQ_AUTH_TOKEN), or pass --insecure-listen-any", addr)
}

// checkTokens refuses a read token without an admin token, and a read
// token equal to the admin token. Error messages never include a token.
func checkTokens(admin, read string) error {
	if strings.TrimSpace(admin) != admin || strings.TrimSpace(read) != read {
		return errors.New("--auth-token / --read-token: a token may not start or end with spaces")
	}
	if read == "" {
		return nil
	}
	if admin == "" {
		return errors.New("--read-token needs --auth-token (TTQ_AUTH_TOKEN): without an admin token anyone could write")
	}
	if subtle.ConstantTimeCompare([]byte(admin), []byte(read)) == 1 {
		return errors.New("--read-token is the same as --auth-token: give the read-only token its own value")
	}
	return nil
}

// loadTLS reads the certificate and key; both or neither must be given.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key go together: give both PEM files, or neither for plain HTTP")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseSize reads a byte count: a plain number or one with a unit
// (KB, MB, GB in powers of 1000; KiB, MiB, GiB in powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: give a positive number of bytes, e.g. 1048576 or 64MiB", s)
	}
	return n * mult, nil
}
