// Package kafka is ttq's Kafka ingestion daemon: it consumes every declared
// source's topic and applies the messages with their offsets in one durable
// commit, so a restart resumes exactly where the store left off.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"ttq/catalog"
	"ttq/engine"
)

// ErrNoBrokers is returned by New when the configuration names no broker.
var ErrNoBrokers = errors.New("kafka: no brokers configured (use --kafka-brokers host:port,...)")

// Config configures a Daemon. Zero values take the defaults below.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Group, when set, names a consumer group the daemon commits its applied
	// offsets to, so lag tools see progress. The store stays the truth: the
	// daemon never reads offsets back from the group.
	Group string
	// BatchSize is the most messages one commit holds (default 8192, as
	// many records as a commit of `ttq load`).
	BatchSize int
	// BatchWait is how long a batch may wait to fill once it has its first
	// message (default 20ms).
	BatchWait time.Duration
	// MetadataInterval is how often topics, partitions and high watermarks
	// are re-read, to pick up new sources and new partitions (default 2s).
	MetadataInterval time.Duration
	// StallAfter is how long a partition may lag without progress before
	// the daemon reports it stalled (default 1m).
	StallAfter time.Duration
	// BackoffMin and BackoffMax bound the retry delay after a failure
	// (defaults 100ms and 5s).
	BackoffMin, BackoffMax time.Duration
	// Logger receives the daemon's log; nil discards it.
	Logger *slog.Logger
	// Guard, when set, runs before each commit; an error skips the commit
	// and the session retries with backoff from the stored offsets (the
	// server's free-disk check: a full disk pauses Kafka ingest, as it
	// refuses HTTP ingest, while reads go on).
	Guard func() error
}

func (c *Config) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 8192
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 20 * time.Millisecond
	}
	if c.MetadataInterval <= 0 {
		c.MetadataInterval = 2 * time.Second
	}
	if c.StallAfter <= 0 {
		c.StallAfter = time.Minute
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Daemon consumes the topics of every declared source into one engine.
// Run it once; Status may be called from any goroutine.
type Daemon struct {
	e      *engine.Engine
	cfg    Config
	log    *slog.Logger
	client *kafkago.Client
	tr     *kafkago.Transport

	mu sync.Mutex // guards st; taken briefly, never while calling the engine
	st status
}

// New returns a daemon that feeds e. It does not connect until Run.
func New(e *engine.Engine, cfg Config) (*Daemon, error) {
	if len(cfg.Brokers) == 0 {
		return nil, ErrNoBrokers
	}
	cfg.defaults()
	tr := &kafkago.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, ClientID: "ttq"}
	d := &Daemon{
		e:      e,
		cfg:    cfg,
		log:    cfg.Logger.With("component", "kafka"),
		tr:     tr,
		client: &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr},
		st:     newStatus(),
	}
	return d, nil
}

// Run consumes until ctx is done, then returns nil. Broker outages and
// failed commits are retried with backoff; it returns an error only when
// the engine was closed under it.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.tr.CloseIdleConnections()
	d.setState(StateStarting, "")
	for attempt := 0; ; attempt++ {
		started := time.Now()
		err := d.session(ctx)
		if ctx.Err() != nil {
			d.setState(StateStopped, "")
			return nil
		}
		if errors.Is(err, engine.ErrClosed) {
			d.setState(StateStopped, err.Error())
			return err
		}
		d.log.Warn("ingest session failed; restarting from the stored offsets", "err", err)
		d.setApplyError(err)
		if time.Since(started) > d.cfg.BackoffMax {
			attempt = 0
		}
		if !sleep(ctx, backoff(attempt, d.cfg.BackoffMin, d.cfg.BackoffMax)) {
			d.setState(StateStopped, "")
			return nil
		}
	}
}

// session runs partition readers and the applier until ctx is done or a
// commit fails. A failed commit ends the session: what the readers had
// read ahead is dropped and the next session starts from the stored
// offsets, so nothing is lost or applied twice.
func (d *Daemon) session(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	s := &session{
		d:       d,
		ctx:     sctx,
		msgs:    make(chan kafkago.Message, d.cfg.BatchSize),
		readers: map[string]context.CancelFunc{},
		next:    d.e.Offsets(),
		streams: map[topicPartition]string{},
	}
	defer func() {
		cancel()
		s.wg.Wait()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.discoverLoop()
	}()
	return s.applyLoop()
}

// session is one run of the consumer: its readers, their channel and the
// applier's view of the next offset per partition.
type session struct {
	d    *Daemon
	ctx  context.Context
	msgs chan kafkago.Message
	wg   sync.WaitGroup

	mu      sync.Mutex                    // guards readers
	readers map[string]context.CancelFunc // stream -> stop its reader

	// next is owned by the applier: the offset it expects next per
	// stream; anything below it was applied already and is dropped.
	next map[string]int64
	// streams caches the applier's stream names, so a message costs no
	// allocation to name its partition.
	streams map[topicPartition]string
}

type topicPartition struct {
	topic     string
	partition int
}

// stream returns the name of a partition, from the applier's cache.
func (s *session) stream(topic string, partition int) string {
	k := topicPartition{topic, partition}
	if n, ok := s.streams[k]; ok {
		return n
	}
	n := streamName(topic, partition)
	s.streams[k] = n
	return n
}

// applyLoop collects messages from every partition into batches and
// applies each with its positions in one commit. Batches go through an
// engine pipeline: while messages keep coming, a batch commits while the
// versions of the one before are written (as `ttq load` does); when none
// are queued, the batch in flight is finished before waiting, so its
// offsets and counts are reported now and not at the next message.
func (s *session) applyLoop() (err error) {
	cfg := s.d.cfg
	batch := make([]kafkago.Message, 0, cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	p := s.d.e.NewPipeline(s.ctx)
	defer func() {
		// the batch in flight is reported even when a later one failed
		if ferr := s.finish(p); err == nil {
			err = ferr
		}
	}()
	for {
		batch = batch[:0]
		select {
		case m := <-s.msgs:
			batch = append(batch, m)
		default:
			if err := s.finish(p); err != nil {
				return err
			}
			select {
			case <-s.ctx.Done():
				return s.ctx.Err()
			case m := <-s.msgs:
				batch = append(batch, m)
			}
		}
		// take what is queued already without arming the timer per message
	drain:
		for len(batch) < cfg.BatchSize {
			select {
			case m := <-s.msgs:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		timer.Reset(cfg.BatchWait)
	fill:
		for len(batch) < cfg.BatchSize {
			select {
			case m := <-s.msgs:
				batch = append(batch, m)
			case <-timer.C:
				break fill
			case <-s.ctx.Done():
				timer.Stop()
				return s.ctx.Err()
			}
		}
		timer.Stop()
		if err := s.apply(p, batch); err != nil {
			return err
		}
	}
}

// applied is what a batch in a pipeline carries until it is durable.
type applied struct {
	pos  []engine.Position
	msgs int
}

// report records a durable batch's offsets and counts (res nil: none).
func (s *session) report(res *engine.BatchResult) {
	if res != nil {
		a := res.Tag.(applied)
		s.d.noteApplied(a.pos, a.msgs, res.Counts)
	}
}

// finish waits for the batch in flight in p and reports it.
func (s *session) finish(p *engine.Pipeline) error {
	res, err := p.Close()
	if err != nil {
		return fmt.Errorf("kafka: apply: %w", err)
	}
	s.report(res)
	return nil
}

// apply turns a batch of messages into records and positions and commits
// them through p. Messages at offsets already applied are dropped.
func (s *session) apply(p *engine.Pipeline, msgs []kafkago.Message) error {
	cat := s.d.e.Catalog()
	formats := topicFormats(cat)
	recs := make([]engine.Record, 0, len(msgs))
	var scratch []byte
	var order []string
	pos := map[string]int64{}
	for i := range msgs {
		m := &msgs[i]
		stream := s.stream(m.Topic, m.Partition)
		if n, ok := s.next[stream]; ok && m.Offset < n {
			continue // read again after a reconnect: applied already
		}
		if _, ok := pos[stream]; !ok {
			order = append(order, stream)
		}
		pos[stream] = m.Offset + 1
		s.next[stream] = m.Offset + 1
		if m.Value == nil {
			continue // a tombstone: nothing to apply, but its offset counts
		}
		scratch = append(append(append(scratch[:0], stream...), '/'), 0)
		scratch = strconv.AppendInt(scratch[:len(scratch)-1], m.Offset, 10)
		origin := string(scratch)
		f := formats[m.Topic]
		rec := engine.Record{Line: m.Value, Origin: origin, Partition: stream}
		if !f.shared {
			rec.Source = f.source
		}
		if f.format == catalog.FormatDebezium {
			rec.Line = translateDebezium(cat, f.source, m.Key, m.Value)
			if rec.Line == nil {
				continue // a Debezium tombstone (null payload)
			}
			rec.Raw = m.Value // a reject stores the event as received
		}
		recs = append(recs, rec)
	}
	if len(order) == 0 {
		return nil
	}
	positions := make([]engine.Position, 0, len(order))
	for _, st := range order {
		positions = append(positions, engine.Position{Stream: st, Next: pos[st]})
	}
	if g := s.d.cfg.Guard; g != nil {
		if err := g(); err != nil {
			return fmt.Errorf("kafka: not applying %d messages: %w", len(msgs), err)
		}
	}
	res, err := p.Add(recs, applied{positions, len(msgs)}, positions...)
	s.report(res) // the batch before, durable now
	if err != nil {
		return fmt.Errorf("kafka: apply %d messages: %w", len(msgs), err)
	}
	return nil
}

// discoverLoop reads the topics of the declared sources, declares their
// partitions to the engine and starts a reader for each new partition; it
// repeats every MetadataInterval, sooner after a failure.
func (s *session) discoverLoop() {
	d := s.d
	fails, first := 0, true
	for {
		wait := d.cfg.MetadataInterval
		if err := s.discover(); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			d.setProbeError(err)
			d.log.Warn("kafka metadata failed; retrying", "err", err)
			if b := backoff(fails, d.cfg.BackoffMin, d.cfg.BackoffMax); b < wait {
				wait = b
			}
			fails++
		} else {
			if first {
				// a new session is running: an earlier failed commit is
				// history until a commit fails again
				d.clearApplyError()
				first = false
			}
			fails = 0
			d.setProbeError(nil)
		}
		if !sleep(s.ctx, wait) {
			return
		}
	}
}

// discover does one round of metadata: partitions, high watermarks, new
// readers, and the optional consumer-group commit.
func (s *session) discover() error {
	d := s.d
	cat := d.e.Catalog()
	topicSources := map[string][]string{}
	for _, name := range cat.SourceNames() {
		src := cat.Sources[name]
		topicSources[src.Topic] = append(topicSources[src.Topic], name)
	}
	d.setTopics(topicSources)
	s.stopUndeclared(topicSources)
	if len(topicSources) == 0 {
		return nil
	}
	topics := make([]string, 0, len(topicSources))
	for t := range topicSources {
		topics = append(topics, t)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	md, err := d.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		d.tr.CloseIdleConnections()
		return fmt.Errorf("kafka: metadata: %w", err)
	}
	offReq := map[string][]kafkago.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			d.setTopicError(t.Name, t.Error)
			continue
		}
		d.setTopicError(t.Name, nil)
		parts := make([]string, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			parts = append(parts, streamName(t.Name, p.ID))
			offReq[t.Name] = append(offReq[t.Name], kafkago.LastOffsetOf(p.ID))
		}
		// Declare the partitions before reading any of them, so the
		// first record of a new partition is judged against it.
		for _, src := range topicSources[t.Name] {
			if err := d.e.ExpectPartitions(ctx, src, parts); err != nil {
				return fmt.Errorf("kafka: declare partitions of %q: %w", t.Name, err)
			}
		}
		for _, p := range t.Partitions {
			s.startReader(t.Name, p.ID, topicSources[t.Name])
		}
	}
	if len(offReq) > 0 {
		lo, err := d.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: offReq})
		if err != nil {
			d.tr.CloseIdleConnections()
			return fmt.Errorf("kafka: list offsets: %w", err)
		}
		for topic, ps := range lo.Topics {
			for _, p := range ps {
				if p.Error == nil {
					d.setHighWatermark(streamName(topic, p.Partition), p.LastOffset)
				}
			}
		}
	}
	if d.cfg.Group != "" {
		s.commitGroup(ctx)
	}
	return nil
}

// commitGroup commits the stored offsets to the consumer group, for lag
// tools only. Failures are logged and otherwise ignored.
func (s *session) commitGroup(ctx context.Context) {
	d := s.d
	topics := map[string][]kafkago.OffsetCommit{}
	for stream, next := range d.e.Offsets() {
		topic, p, ok := splitStream(stream)
		if !ok {
			continue
		}
		topics[topic] = append(topics[topic], kafkago.OffsetCommit{Partition: p, Offset: next})
	}
	if len(topics) == 0 {
		return
	}
	resp, err := d.client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: d.cfg.Group, GenerationID: -1, Topics: topics})
	if err == nil {
		for _, ps := range resp.Topics {
			for _, p := range ps {
				if p.Error != nil {
					err = p.Error
				}
			}
		}
	}
	if err != nil {
		d.log.Debug("consumer group commit failed", "group", d.cfg.Group, "err", err)
	}
}

// startReader starts the reader of one partition unless it runs already.
// It starts at the stored offset, or at the beginning of the partition.
func (s *session) startReader(topic string, partition int, sources []string) {
	stream := streamName(topic, partition)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.readers[stream]; ok {
		return
	}
	start := kafkago.FirstOffset
	if n, ok := s.d.e.Offsets()[stream]; ok {
		start = n
	}
	rctx, cancel := context.WithCancel(s.ctx)
	s.readers[stream] = cancel
	s.d.addPartition(stream, topic, partition, sources, start)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.read(rctx, topic, partition, start)
	}()
}

// stopUndeclared stops the readers of topics no source reads any more.
func (s *session) stopUndeclared(topicSources map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for stream, cancel := range s.readers {
		topic, _, _ := splitStream(stream)
		if _, ok := topicSources[topic]; !ok {
			cancel()
			delete(s.readers, stream)
			s.d.removePartition(stream)
		}
	}
}

// readerCloseTimeout bounds how long a stopping reader may take to close.
const readerCloseTimeout = 5 * time.Second

// read fetches one partition from start and hands its messages to the
// applier in offset order. The kafka-go reader reconnects by itself; its
// errors are recorded in the partition's status.
func (s *session) read(ctx context.Context, topic string, partition int, start int64) {
	d := s.d
	stream := streamName(topic, partition)
	var logged atomic.Bool // kafka-go logged an error since the last note
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:        d.cfg.Brokers,
		Topic:          topic,
		Partition:      partition,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  1024,
		ReadBackoffMin: d.cfg.BackoffMin,
		ReadBackoffMax: d.cfg.BackoffMax,
		Dialer:         &kafkago.Dialer{Timeout: 5 * time.Second, DualStack: true, ClientID: "ttq"},
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
			d.setPartitionError(stream, fmt.Sprintf(format, args...))
			logged.Store(true)
		}),
	})
	defer func() {
		// kafka-go's Reader.Close waits for its fetch goroutine, which can
		// sit in a read from a broker that went away; never let that hold
		// up a session's shutdown.
		closed := make(chan struct{})
		go func() {
			r.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(readerCloseTimeout):
			d.log.Warn("kafka reader did not close in time; abandoning it", "stream", stream)
		}
	}()
	if err := r.SetOffset(start); err != nil {
		d.setPartitionError(stream, err.Error())
		return
	}
	fails, lastHW := 0, int64(-1)
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.setPartitionError(stream, err.Error())
			if !sleep(ctx, backoff(fails, d.cfg.BackoffMin, d.cfg.BackoffMax)) {
				return
			}
			fails++
			logged.Store(true) // clear the error with the next message
			continue
		}
		fails = 0
		// take the status lock when the high watermark moved or an error
		// is to be cleared, not once per message
		if m.HighWaterMark != lastHW || logged.Swap(false) {
			d.noteFetched(stream, m.HighWaterMark)
			lastHW = m.HighWaterMark
		}
		select {
		case s.msgs <- m:
		case <-ctx.Done():
			return
		}
	}
}

// topicFormat is how a topic's messages are read.
type topicFormat struct {
	source string // the source that reads the topic (the first by name)
	format string
	shared bool // several sources read the topic
}

func topicFormats(cat *catalog.Catalog) map[string]topicFormat {
	out := map[string]topicFormat{}
	for _, name := range cat.SourceNames() {
		src := cat.Sources[name]
		if f, ok := out[src.Topic]; ok {
			f.shared = true
			out[src.Topic] = f
			continue
		}
		out[src.Topic] = topicFormat{source: name, format: src.Format}
	}
	return out
}

// streamName names a partition as the engine stores it: "topic/partition".
func streamName(topic string, partition int) string {
	return topic + "/" + strconv.Itoa(partition)
}

func splitStream(stream string) (topic string, partition int, ok bool) {
	for i := len(stream) - 1; i >= 0; i-- {
		if stream[i] == '/' {
			p, err := strconv.Atoi(stream[i+1:])
			if err != nil {
				return "", 0, false
			}
			return stream[:i], p, true
		}
	}
	return "", 0, false
}

// backoff is the delay before retry number attempt: doubling from min,
// capped at max, with up to 20% jitter so readers do not retry in step.
func backoff(attempt int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
