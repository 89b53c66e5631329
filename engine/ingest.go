package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"ttq/catalog"
	"ttq/ingest"
	"ttq/mvcc"
	"ttq/precompute"
	"ttq/timeline"
)

// MaxLine bounds one NDJSON line; a longer line is rejected (too_large) and
// the reader moves on to the next line.
const MaxLine = 16 << 20

// maxBatchBytes bounds the input bytes of one Load commit, so memory and
// Badger transaction sizes stay bounded whatever the lines hold.
const maxBatchBytes = 8 << 20

// Record is one raw envelope and where it came from.
type Record struct {
	// Line is what is decoded: the ttq envelope.
	Line []byte
	// Raw is the message as received, stored verbatim on reject when set
	// (Kafka: the Debezium event that Line was translated from); nil means
	// Line is the message as received.
	Raw    []byte
	Origin string // "file:line", "topic/partition/offset", "http request N line M"
	// Partition is the watermark partition ("" for files and HTTP;
	// "topic/partition" for Kafka).
	Partition string
	// TooLarge marks a line cut at MaxLine; it is rejected.
	TooLarge bool
	// Source, when set, is the only source the record may name: an
	// envelope naming another one is rejected (wrong_source). Kafka sets
	// it to the source that reads the record's topic.
	Source string
}

// Counts sums what an ingest did.
type Counts struct {
	Applied    int64 `json:"applied"`    // upserts and deletes stored as versions
	Watermarks int64 `json:"watermarks"` // watermark records read
	Rejected   int64 `json:"rejected"`   // records stored as rejects
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Applied += o.Applied
	c.Watermarks += o.Watermarks
	c.Rejected += o.Rejected
}

// LineError reports one rejected record.
type LineError struct {
	Index   int    `json:"line"` // 1-based position of the record in the call
	Origin  string `json:"origin"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Position is a stream offset to store in the same commit as the records
// read up to it (Kafka: the next offset of a partition).
type Position struct {
	Stream string
	Next   int64
}

// Apply validates and applies recs as one durable commit: versions, rejects,
// watermarks and positions all land together or, after a crash, the
// versions are invisible to every sealed read. It returns once everything is
// durable and the new G is published.
func (e *Engine) Apply(ctx context.Context, recs []Record, pos ...Position) (Counts, []LineError, error) {
	return e.apply(ctx, decodedBatch{recs: recs}, pos)
}

// decodedBatch is a batch of records, maybe decoded ahead of the writer
// (dec, against the published catalog of generation gen).
type decodedBatch struct {
	recs []Record
	dec  []decodedRecord
	gen  uint64
}

// decodeAhead decodes recs against the published catalog, outside the
// writer lock; apply decodes again if DDL ran in between.
func (e *Engine) decodeAhead(recs []Record) decodedBatch {
	v := e.pub.Load()
	return decodedBatch{recs: recs, dec: decodeAll(recs, v.cat), gen: v.catGen}
}

func (e *Engine) apply(ctx context.Context, b decodedBatch, pos []Position) (Counts, []LineError, error) {
	p, err := e.applyStart(ctx, b, pos)
	if err != nil {
		return Counts{}, nil, err
	}
	return e.applyFinish(p)
}

// inflight is a batch whose bookkeeping is committed and whose versions are
// being written. Load judges the next batch meanwhile.
type inflight struct {
	f      *mvcc.Flushing
	counts Counts
	errs   []LineError
	saved  *state // the writer's state before the batch
	after  *state // and after it: published once the versions are durable
	gen    uint64
	tag    any // the Pipeline caller's

	done chan struct{} // closed when published, or err says why not
	err  error
}

// applyStart judges and commits a batch, and leaves a goroutine to publish
// its state once its versions are durable; applyFinish waits for that.
func (e *Engine) applyStart(ctx context.Context, b decodedBatch, pos []Position) (*inflight, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if b.dec == nil || b.gen != e.catGen {
		b.dec = decodeAll(b.recs, e.cat)
	}
	saved := e.st.clone()
	counts, errs, f, err := e.applyLocked(b.recs, b.dec, pos)
	if err != nil {
		e.st = saved // nothing committed: forget the batch's effect on watermarks
		return nil, err
	}
	e.stGen++
	p := &inflight{f: f, counts: counts, errs: errs, saved: saved, after: e.st.clone(), gen: e.stGen, done: make(chan struct{})}
	// Published as soon as its versions are durable, whatever the caller
	// does meanwhile (an HTTP body may take its time to send more).
	go func() {
		p.err = e.publishWhenWritten(p)
		close(p.done)
	}()
	return p, nil
}

func (e *Engine) applyFinish(p *inflight) (Counts, []LineError, error) {
	<-p.done
	if p.err != nil {
		return Counts{}, nil, p.err
	}
	return p.counts, p.errs, nil
}

// publishWhenWritten waits for a batch's versions and publishes its state,
// unless a later state was published first (a later batch's finisher, or
// DDL, whose meta commit waited for this batch).
func (e *Engine) publishWhenWritten(p *inflight) error {
	err := p.f.Wait()
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if err != nil {
		// The store takes no more commits (mvcc.ErrWriteFailed); reopening
		// it finishes the batch.
		if p.gen == e.stGen {
			e.st = p.saved
		}
		e.viewsApplied(nil, err)
		return err
	}
	if e.closed.Load() {
		return ErrClosed
	}
	if p.gen > e.pubGen {
		e.publishStateLocked(p.after, p.gen)
	}
	return nil
}

func (e *Engine) applyLocked(recs []Record, decoded []decodedRecord, pos []Position) (Counts, []LineError, *mvcc.Flushing, error) {
	var (
		counts  Counts
		errs    []LineError
		rejects [][]byte
		batch   = e.store.NewBatch()
		first   = e.st.RejectSeq
		tr      = e.st.Tracker
		track   = e.viewsTrackChanges()
		applied []precompute.BaseChange // for the views' change log
	)
	rejectRec := func(i int, r *Record, re *ingest.RejectError) {
		stored := r.Line
		if r.Raw != nil {
			stored = r.Raw
		}
		rj := ingest.Reject{Source: re.Source, Table: re.Table, Reason: re.Reason, Message: re.Message, Origin: r.Origin, Record: stored}
		rejects = append(rejects, rj.Marshal())
		m := e.st.Rejects[re.Source]
		if m == nil {
			m = map[string]int64{}
			e.st.Rejects[re.Source] = m
		}
		m[re.Reason]++
		counts.Rejected++
		errs = append(errs, LineError{Index: i + 1, Origin: r.Origin, Reason: re.Reason, Message: re.Message})
	}
	for i := range recs {
		r := &recs[i]
		if r.TooLarge {
			rejectRec(i, r, &ingest.RejectError{Reason: ingest.ReasonTooLarge, Message: fmt.Sprintf("line longer than %d bytes", MaxLine)})
			continue
		}
		u, re := decoded[i].u, decoded[i].re
		if r.Source != "" {
			named, table := u.Source, ""
			if re != nil {
				named, table = re.Source, re.Table
			} else if u.Table != nil {
				table = u.Table.Name
			}
			if named != "" && named != r.Source {
				// attributed to the source whose stream carried it
				rejectRec(i, r, &ingest.RejectError{Reason: ingest.ReasonWrongSource, Source: r.Source, Table: table,
					Message: fmt.Sprintf("record names source %q, but %s is read for source %q", named, streamTopic(r), r.Source)})
				continue
			}
		}
		if re != nil {
			rejectRec(i, r, re)
			continue
		}
		if u.Op == ingest.OpWatermark {
			tr.Advance(u.Source, r.Partition, u.TS)
			counts.Watermarks++
			continue
		}
		if late, w := tr.Late(u.Source, r.Partition, u.TS); late {
			rejectRec(i, r, &ingest.RejectError{Reason: ingest.ReasonLate, Source: u.Source, Table: u.Table.Name,
				Message: fmt.Sprintf("ts %s is at or below source %q's watermark %s", timeline.Format(u.TS), u.Source, timeline.Format(w))})
			continue
		}
		var err error
		if u.Op == ingest.OpUpsert {
			err = batch.Put(u.Table, u.Row, u.TS)
		} else {
			err = batch.Delete(u.Table, u.Key, u.TS)
		}
		if errors.Is(err, mvcc.ErrTooLarge) {
			// Badger cannot hold this key or row: the update is rejected
			// before anything is written, like a line that is too long.
			rejectRec(i, r, &ingest.RejectError{Reason: ingest.ReasonTooLarge, Source: u.Source, Table: u.Table.Name, Message: err.Error()})
			continue
		}
		if err != nil {
			batch.Cancel()
			return Counts{}, nil, nil, err
		}
		if track {
			applied = append(applied, precompute.BaseChange{Table: u.Table, Row: u.Row, Key: u.Key, TS: u.TS})
		}
		tr.Observe(u.Source, r.Partition, u.TS)
		e.st.Applied[u.Source]++
		counts.Applied++
	}
	for _, p := range pos {
		e.st.Offsets[p.Stream] = p.Next
	}
	e.st.RejectSeq += uint64(len(rejects))
	f, err := e.commitBatchLocked(batch, false, rejects, first)
	if track || err != nil {
		e.viewsApplied(applied, err)
	}
	if err != nil {
		return Counts{}, nil, nil, err
	}
	return counts, errs, f, nil
}

// streamTopic names where a record came from in a wrong_source message:
// "topic T" for a Kafka partition, else its origin.
func streamTopic(r *Record) string {
	if i := strings.LastIndexByte(r.Partition, '/'); i > 0 {
		return "topic " + strconv.Quote(r.Partition[:i])
	}
	return r.Origin
}

type decodedRecord struct {
	u  ingest.Update
	re *ingest.RejectError
}

// decodeAll decodes a batch on every core. Decoding depends only on the
// record and the catalog, so it can run ahead of the writer, which then
// judges lateness and applies in stream order.
func decodeAll(recs []Record, cat *catalog.Catalog) []decodedRecord {
	out := make([]decodedRecord, len(recs))
	workers := runtime.GOMAXPROCS(0)
	if len(recs) < 256 || workers < 2 {
		workers = 1
	}
	var wg sync.WaitGroup
	chunk := (len(recs) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(recs))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if !recs[i].TooLarge {
					out[i].u, out[i].re = ingest.Decode(recs[i].Line, cat)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// Load reads NDJSON envelopes from r and applies them in commits of at most
// Options.BatchSize records, streaming: memory is bounded by two batches (the
// one committing and the next, read and decoded meanwhile), not the input.
// name labels the origin of each line (name:line). Every line is
// either applied or stored as a reject; an error means ingest stopped (a
// read of r already under way when a commit fails finishes in the
// background, and nothing more is read).
func (e *Engine) Load(ctx context.Context, r io.Reader, name string) (Counts, error) {
	// A reader goroutine reads and decodes the next batch while this one
	// commits it: Badger's write goroutine and the decoders overlap.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan decodedBatch, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(ready)
		batch := make([]Record, 0, e.opts.BatchSize)
		size := 0
		send := func() error {
			if len(batch) == 0 {
				return nil
			}
			select {
			case ready <- e.decodeAhead(batch):
			case <-ctx.Done():
				return ctx.Err()
			}
			batch, size = make([]Record, 0, e.opts.BatchSize), 0
			return nil
		}
		err := ReadLines(r, MaxLine, func(n int, line []byte, tooLarge bool) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			batch = append(batch, Record{Line: append([]byte(nil), line...), Origin: name + ":" + strconv.Itoa(n), TooLarge: tooLarge})
			size += len(line)
			if len(batch) >= e.opts.BatchSize || size >= maxBatchBytes {
				return send()
			}
			return nil
		})
		if err == nil {
			err = send()
		}
		readErr <- err
	}()
	// Each batch is judged and committed while the versions of the one
	// before are written: Badger's write goroutine is the limit, and this
	// keeps it busy.
	var total Counts
	pipe := e.NewPipeline(ctx)
	for b := range ready {
		done, err := pipe.add(b, nil, nil)
		if done != nil {
			total.Add(done.Counts)
		}
		if err != nil {
			return total, err // the reader stops at its next line; nothing is in flight
		}
	}
	done, err := pipe.Close()
	if done != nil {
		total.Add(done.Counts)
	}
	if err != nil {
		return total, err
	}
	return total, <-readErr
}

// Pipeline applies the consecutive batches of one stream as Apply does,
// each its own atomic commit, but commits each batch while the versions of
// the one before are still being written (Load uses one). A batch is
// durable and published once the Add after it, or Close, returned it.
// A Pipeline is used by one goroutine.
type Pipeline struct {
	e    *Engine
	ctx  context.Context
	prev *inflight
}

// BatchResult is what one batch did, reported once it is durable; Tag is
// what the caller passed with it.
type BatchResult struct {
	Counts Counts
	Errors []LineError
	Tag    any
}

// NewPipeline starts a pipeline of batches.
func (e *Engine) NewPipeline(ctx context.Context) *Pipeline { return &Pipeline{e: e, ctx: ctx} }

// Add commits recs (and pos) and then waits for the batch added before: it
// returns that batch's result, now durable and published (nil for the
// first). After an error nothing more may be added; Close still reports
// the earlier batch.
func (p *Pipeline) Add(recs []Record, tag any, pos ...Position) (*BatchResult, error) {
	return p.add(decodedBatch{recs: recs}, tag, pos)
}

func (p *Pipeline) add(b decodedBatch, tag any, pos []Position) (*BatchResult, error) {
	cur, err := p.e.applyStart(p.ctx, b, pos)
	if cur != nil {
		cur.tag = tag
	}
	done, ferr := p.finish()
	if ferr != nil {
		if cur != nil {
			cur.f.Wait() // its versions follow the failed ones: not written either
		}
		return nil, ferr
	}
	p.prev = cur
	return done, err
}

// Close waits for the last batch added and returns its result. The
// pipeline takes more batches after it.
func (p *Pipeline) Close() (*BatchResult, error) { return p.finish() }

func (p *Pipeline) finish() (*BatchResult, error) {
	if p.prev == nil {
		return nil, nil
	}
	prev := p.prev
	p.prev = nil
	c, errs, err := p.e.applyFinish(prev)
	if err != nil {
		return nil, err
	}
	return &BatchResult{Counts: c, Errors: errs, Tag: prev.tag}, nil
}

// ReadLines calls fn for each non-blank line of r (without its newline), with
// its 1-based number. A line longer than max is passed truncated to max bytes
// with tooLarge set, and the rest of it is skipped.
func ReadLines(r io.Reader, max int, fn func(n int, line []byte, tooLarge bool) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) <= max {
				long = append(long, chunk...)
			} else if len(long) < max {
				long = append(long, chunk[:max-len(long)]...)
			}
			continue
		}
		if len(chunk) > 0 || len(long) > 0 {
			tooLarge := false
			line := chunk
			if long != nil {
				tooLarge = len(long)+len(chunk) > max
				if !tooLarge {
					long = append(long, chunk...)
				}
				line = long
			}
			n++
			line = trimEOL(line)
			if !isBlank(line) {
				if ferr := fn(n, line, tooLarge); ferr != nil {
					return ferr
				}
			}
			long = nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("engine: read input: %w", err)
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// Rejects lists the stored rejects in order.
func (e *Engine) Rejects(fn func(seq uint64, r ingest.Reject) error) error {
	return e.store.Rejects(func(seq uint64, b []byte) error {
		r, err := ingest.UnmarshalReject(b)
		if err != nil {
			return err
		}
		return fn(seq, r)
	})
}
