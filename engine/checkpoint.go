package engine

import (
	"fmt"
	"time"

	"ttq/timeline"
)

// Checkpoints (mvcc/checkpoint.go) are taken by a background goroutine:
// once a second (Options.CheckpointPoll) it looks for base tables with at
// least Options.CheckpointMin versions written since their last
// checkpoint, and at least checkpointEvery times as many as they had rows
// then (so a scan between two checkpoints reads at most about five entries
// a row it returns, however deep the history), and checkpoints them at the
// published G, which is sealed. Each checkpoint writes the table's rows
// again, which competes with ingest for the disk and the cores; the factor
// keeps that to a quarter of the versions ingested. When G has not moved
// for five polls, every table with newer versions is checkpointed, so a
// quiet store answers scans of its latest instants from a checkpoint too.
// View tables are not checkpointed: their rows at a boundary are written
// by maintenance after G passes it.

const (
	defaultCheckpointMin = 1_000_000
	// checkpointEvery: a table is checkpointed (while G moves) after this
	// many times as many versions as it had rows at its last checkpoint.
	checkpointEvery        = 4
	checkpointPollInterval = time.Second
	// quietPolls: after G stood still this many polls (five seconds by
	// default), every table with newer versions is checkpointed (once).
	quietPolls = 5
)

// startCheckpointer runs the background checkpointer until Close.
func (e *Engine) startCheckpointer() {
	e.ckStop, e.ckDone = make(chan struct{}), make(chan struct{})
	if e.opts.CheckpointMin < 0 {
		close(e.ckDone)
		return
	}
	go func() {
		defer close(e.ckDone)
		poll := e.opts.CheckpointPoll
		if poll <= 0 {
			poll = checkpointPollInterval
		}
		tick := time.NewTicker(poll)
		defer tick.Stop()
		lastG, still := timeline.None, 0
		for {
			select {
			case <-e.ckStop:
				return
			case <-tick.C:
			}
			g := e.Watermark()
			if g == lastG {
				still++
			} else {
				lastG, still = g, 0
			}
			// A failure (a full disk, a DROP TABLE racing it) is tried
			// again on the next tick; scans read the versions meanwhile.
			mode := ckDue
			if still == quietPolls {
				mode = ckQuiet
			}
			_ = e.checkpoint(mode)
		}
	}()
}

// stopCheckpointer stops the checkpointer and waits for a checkpoint in
// progress.
func (e *Engine) stopCheckpointer() {
	select {
	case <-e.ckStop:
	default:
		close(e.ckStop)
	}
	<-e.ckDone
}

// Checkpoint checkpoints, at the published G, every base table with
// versions since its last checkpoint, or none yet. Scans between two
// checkpoints cost the rows visible, not the history.
func (e *Engine) Checkpoint() error { return e.checkpoint(ckAll) }

// ckMode says which tables checkpoint takes.
type ckMode int

const (
	ckDue   ckMode = iota // tables due one by the policy
	ckQuiet               // tables with versions written by this process since their last one
	ckAll                 // those, and tables without any
)

// checkpoint checkpoints the tables mode selects. A process that writes
// nothing (ttq sql, export, a shell) never checkpoints in the background.
func (e *Engine) checkpoint(mode ckMode) error {
	g := e.Watermark()
	if g == timeline.None {
		return nil
	}
	cat := e.Catalog()
	for _, name := range cat.TableNames() {
		t := cat.Tables[name]
		since, rows := e.store.CheckpointStats(t)
		due := since >= max(e.opts.CheckpointMin, checkpointEvery*rows)
		switch mode {
		case ckQuiet:
			due = since > 0
		case ckAll:
			at, _ := e.store.CheckpointList(t)
			due = since > 0 || len(at) == 0
		}
		if !due {
			continue
		}
		err := func() error {
			// DROP TABLE takes ckMu too: no checkpoint of a dropped table
			// is recorded after its data is gone.
			e.ckMu.Lock()
			defer e.ckMu.Unlock()
			if e.closed.Load() {
				return ErrClosed
			}
			if cur := e.Catalog().Tables[name]; cur == nil || cur.ID != t.ID {
				return nil // dropped meanwhile
			}
			_, err := e.store.Checkpoint(t, g)
			return err
		}()
		if err != nil {
			return fmt.Errorf("engine: checkpoint of %s at %s: %w", name, timeline.Format(g), err)
		}
	}
	return nil
}
