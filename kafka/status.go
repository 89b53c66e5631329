package kafka

import (
	"sort"
	"time"

	"ttq/engine"
)

// State is the daemon's condition as /healthz shows it.
type State string

// States of the daemon.
const (
	StateStarting  State = "starting"  // Run has not reached a broker yet
	StateConnected State = "connected" // metadata and fetches succeed
	StateRetrying  State = "retrying"  // the brokers cannot be reached; retrying with backoff
	StateStalled   State = "stalled"   // commits fail, or a partition lags without progress
	StateStopped   State = "stopped"   // Run returned
)

// Status is a snapshot of the daemon for /healthz, /metrics and system
// tables.
type Status struct {
	State State  `json:"state"`
	Error string `json:"error,omitempty"` // why it is retrying or stalled
	// StalledOn names the partition ("topic/partition") holding the daemon
	// stalled, when one is.
	StalledOn string    `json:"stalled_on,omitempty"`
	Since     time.Time `json:"since"` // when State last changed
	// Messages, Applied, Watermarks and Rejected count what this process
	// consumed since it started.
	Messages   int64             `json:"messages"`
	Applied    int64             `json:"applied"`
	Watermarks int64             `json:"watermarks"`
	Rejected   int64             `json:"rejected"`
	Commits    int64             `json:"commits"`
	Partitions []PartitionStatus `json:"partitions"`
	// TopicErrors lists topics of declared sources that cannot be read
	// (for example, not created yet), with the broker's error.
	TopicErrors map[string]string `json:"topic_errors,omitempty"`
}

// PartitionStatus is one partition's progress.
type PartitionStatus struct {
	Stream    string   `json:"stream"` // "topic/partition", as stored with the offsets
	Topic     string   `json:"topic"`
	Partition int      `json:"partition"`
	Sources   []string `json:"sources"`
	// Offset is the next offset to apply: everything below it is durable.
	Offset int64 `json:"offset"`
	// HighWatermark is the partition's end offset as last seen; -1 unknown.
	HighWatermark int64 `json:"high_watermark"`
	// Lag is HighWatermark - Offset, or -1 when the high watermark is unknown.
	Lag          int64     `json:"lag"`
	LastProgress time.Time `json:"last_progress"`
	Error        string    `json:"error,omitempty"` // the reader's last error since its last message
	ErrorAt      time.Time `json:"error_at,omitzero"`
}

// status is the daemon's mutable record behind Status.
type status struct {
	state      State
	since      time.Time
	probeErr   string // last metadata round failed
	applyErr   string // last commit failed
	applyErrAt time.Time
	counts     engine.Counts
	messages   int64
	commits    int64
	parts      map[string]*PartitionStatus
	topicErrs  map[string]string
}

func newStatus() status {
	return status{state: StateStarting, since: time.Now(), parts: map[string]*PartitionStatus{}, topicErrs: map[string]string{}}
}

// Status returns the daemon's current state and per-partition progress.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	st := &d.st
	out := Status{State: st.state, Since: st.since,
		Messages: st.messages, Applied: st.counts.Applied, Watermarks: st.counts.Watermarks,
		Rejected: st.counts.Rejected, Commits: st.commits}
	for _, p := range st.parts {
		cp := *p
		cp.Sources = append([]string(nil), p.Sources...)
		if cp.HighWatermark >= 0 {
			cp.Lag = max(cp.HighWatermark-cp.Offset, 0)
		} else {
			cp.Lag = -1
		}
		out.Partitions = append(out.Partitions, cp)
	}
	sort.Slice(out.Partitions, func(i, j int) bool {
		a, b := out.Partitions[i], out.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	if len(st.topicErrs) > 0 {
		out.TopicErrors = map[string]string{}
		for t, e := range st.topicErrs {
			out.TopicErrors[t] = e
		}
	}
	if out.State == StateStopped || out.State == StateStarting && st.probeErr == "" {
		return out
	}
	switch {
	case st.applyErr != "":
		out.State, out.Error = StateStalled, "commit failed: "+st.applyErr
	case st.probeErr != "":
		out.State, out.Error = StateRetrying, st.probeErr
	default:
		out.State = StateConnected
		for _, p := range out.Partitions {
			if p.Lag > 0 && now.Sub(p.LastProgress) > d.cfg.StallAfter {
				out.State, out.StalledOn = StateStalled, p.Stream
				out.Error = "no progress on " + p.Stream + " since " + p.LastProgress.UTC().Format(time.RFC3339)
				if p.Error != "" {
					out.Error += ": " + p.Error
				}
				break
			}
		}
	}
	return out
}

func (d *Daemon) setState(s State, err string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.state != s {
		d.st.state, d.st.since = s, time.Now()
	}
	if err != "" {
		d.st.applyErr = err
	}
}

func (d *Daemon) setApplyError(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.applyErr, d.st.applyErrAt = err.Error(), time.Now()
}

func (d *Daemon) clearApplyError() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.applyErr = ""
}

func (d *Daemon) setProbeError(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		if d.st.state == StateStarting {
			d.st.state, d.st.since = StateConnected, time.Now()
		}
		d.st.probeErr = ""
		// a reader error older than a good metadata round is history
		for _, p := range d.st.parts {
			if p.Error != "" && time.Since(p.ErrorAt) > d.cfg.MetadataInterval {
				p.Error = ""
			}
		}
		return
	}
	d.st.probeErr = err.Error()
}

func (d *Daemon) setTopics(topicSources map[string][]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for t := range d.st.topicErrs {
		if _, ok := topicSources[t]; !ok {
			delete(d.st.topicErrs, t)
		}
	}
	for _, p := range d.st.parts {
		if srcs, ok := topicSources[p.Topic]; ok {
			p.Sources = srcs
		}
	}
}

func (d *Daemon) setTopicError(topic string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.st.topicErrs, topic)
		return
	}
	d.st.topicErrs[topic] = err.Error()
}

func (d *Daemon) addPartition(stream, topic string, partition int, sources []string, start int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.st.parts[stream]
	if p == nil {
		p = &PartitionStatus{Stream: stream, Topic: topic, Partition: partition, HighWatermark: -1, LastProgress: time.Now()}
		d.st.parts[stream] = p
	}
	p.Sources = sources
	if start >= 0 {
		p.Offset = start
	}
}

func (d *Daemon) removePartition(stream string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.st.parts, stream)
}

func (d *Daemon) setHighWatermark(stream string, hw int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.st.parts[stream]; p != nil {
		p.HighWatermark = hw
		if hw <= p.Offset {
			p.LastProgress = time.Now() // caught up: not stalled
		}
	}
}

func (d *Daemon) noteFetched(stream string, hw int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.st.parts[stream]; p != nil {
		if hw > p.HighWatermark {
			p.HighWatermark = hw
		}
		p.Error = ""
	}
}

func (d *Daemon) setPartitionError(stream, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.st.parts[stream]; p != nil {
		p.Error, p.ErrorAt = msg, time.Now()
	}
}

func (d *Daemon) noteApplied(pos []engine.Position, msgs int, c engine.Counts) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	d.st.applyErr = ""
	d.st.messages += int64(msgs)
	d.st.commits++
	d.st.counts.Add(c)
	for _, ps := range pos {
		if p := d.st.parts[ps.Stream]; p != nil {
			p.Offset = ps.Next
			p.LastProgress = now
		}
	}
}
