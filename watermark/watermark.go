// Package watermark tracks each source's promise of completeness and derives
// the global watermark G, the instant up to which the timeline is sealed.
package watermark

import (
	"sort"

	"ttq/catalog"
	"ttq/timeline"
)

// Default is the partition of records that do not come from a partitioned
// stream (files, HTTP).
const Default = ""

// Part is one partition of a source's stream: its last watermark and the
// highest record time seen on it.
type Part struct {
	W     int64 `json:"w"`
	MaxTS int64 `json:"max_ts"`
	// Seen is false until the partition carried a record of any kind.
	Seen bool `json:"seen"`
}

// Source is the watermark state of one declared source.
type Source struct {
	Kind     string           `json:"kind"`
	MaxDelay int64            `json:"max_delay_us,omitempty"`
	Floor    int64            `json:"floor"` // G when the source was declared: it can never seal less
	Parts    map[string]*Part `json:"parts"`
	// Expected lists partitions that gate the source (Kafka: every
	// partition of its topic). When empty, the Default partition gates it.
	Expected []string `json:"expected,omitempty"`
	// Since is the global watermark at the moment this source's watermark
	// last changed, to say how long a source has been holding G back.
	Since int64 `json:"since"`
}

// Tracker holds every source's state. It is a pure function of the records
// fed to it in stream order, so replicas that consume the same streams agree.
// It is not safe for concurrent use; the engine's writer owns it.
type Tracker struct {
	Sources map[string]*Source `json:"sources"`
}

// New returns an empty tracker.
func New() *Tracker { return &Tracker{Sources: map[string]*Source{}} }

// Declare starts tracking a source. Its watermark starts at the current G:
// declaring a source never unseals what was sealed.
func (t *Tracker) Declare(s *catalog.Source) {
	if _, ok := t.Sources[s.Name]; ok {
		return
	}
	t.Sources[s.Name] = &Source{Kind: s.Watermark, MaxDelay: s.MaxDelay, Floor: t.Global(), Parts: map[string]*Part{}, Since: timeline.None}
}

// Forget stops tracking a dropped source.
func (t *Tracker) Forget(name string) { delete(t.Sources, name) }

// Expect sets the partitions that gate a source (every partition of its
// Kafka topic). A partition that has carried no watermark holds the source
// at its floor.
func (t *Tracker) Expect(source string, parts []string) {
	s := t.Sources[source]
	if s == nil {
		return
	}
	// What is sealed stays sealed: new partitions start at the source's
	// current watermark.
	if w := s.W(); w > s.Floor {
		s.Floor = w
	}
	s.Expected = append([]string(nil), parts...)
	sort.Strings(s.Expected)
}

func (s *Source) part(p string) *Part {
	pp := s.Parts[p]
	if pp == nil {
		pp = &Part{W: timeline.None, MaxTS: timeline.None}
		s.Parts[p] = pp
	}
	return pp
}

// partW is the effective watermark of one partition.
func (s *Source) partW(p *Part) int64 {
	w := p.W
	if s.Kind == catalog.WatermarkBounded && p.MaxTS != timeline.None {
		if b := p.MaxTS - s.MaxDelay; b > w {
			w = b
		}
	}
	if w < s.Floor {
		w = s.Floor
	}
	return w
}

// W returns the source's watermark: the minimum over its gating partitions.
func (s *Source) W() int64 {
	names := s.Expected
	if len(names) == 0 {
		names = []string{Default}
	}
	w := int64(0)
	for i, n := range names {
		p := s.Parts[n]
		pw := s.Floor
		if p != nil {
			pw = s.partW(p)
		}
		if i == 0 || pw < w {
			w = pw
		}
	}
	return w
}

// MaxTS returns the highest record time seen on any partition.
func (s *Source) MaxTS() int64 {
	m := timeline.None
	for _, p := range s.Parts {
		if p.MaxTS > m {
			m = p.MaxTS
		}
	}
	return m
}

// Late reports whether a record at ts on partition p of source would be
// late: at or below the partition's watermark.
func (t *Tracker) Late(source, p string, ts int64) (late bool, w int64) {
	s := t.Sources[source]
	if s == nil {
		return false, timeline.None
	}
	pp := s.Parts[p]
	w = s.Floor
	if pp != nil {
		w = s.partW(pp)
	}
	return w != timeline.None && ts <= w, w
}

// Observe records an accepted data record at ts (it advances a bounded
// source's derived watermark).
func (t *Tracker) Observe(source, p string, ts int64) {
	s := t.Sources[source]
	if s == nil {
		return
	}
	before := s.W()
	pp := s.part(p)
	pp.Seen = true
	if ts > pp.MaxTS {
		pp.MaxTS = ts
	}
	t.noteChange(s, before)
}

// Advance applies a watermark record. A watermark at or below the current
// one is a no-op. It reports whether the partition's watermark moved.
func (t *Tracker) Advance(source, p string, ts int64) bool {
	s := t.Sources[source]
	if s == nil {
		return false
	}
	before := s.W()
	pp := s.part(p)
	pp.Seen = true
	if ts <= pp.W {
		return false
	}
	pp.W = ts
	t.noteChange(s, before)
	return true
}

func (t *Tracker) noteChange(s *Source, before int64) {
	if s.W() != before {
		s.Since = t.Global()
	}
}

// Global returns G, the minimum over declared sources of their watermark,
// or timeline.None when there are no sources or one has sent nothing.
func (t *Tracker) Global() int64 {
	g := timeline.None
	first := true
	for _, s := range t.Sources {
		w := s.W()
		if first || w < g {
			g = w
			first = false
		}
	}
	return g
}

// Holding returns the sources whose watermark equals G, in name order: the
// ones holding the global watermark back.
func (t *Tracker) Holding() []string {
	g := t.Global()
	var out []string
	for name, s := range t.Sources {
		if s.W() == g {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Clone returns a deep copy (for readers and for rolling back a failed batch).
func (t *Tracker) Clone() *Tracker {
	c := &Tracker{Sources: make(map[string]*Source, len(t.Sources))}
	for n, s := range t.Sources {
		cs := *s
		cs.Parts = make(map[string]*Part, len(s.Parts))
		for pn, p := range s.Parts {
			cp := *p
			cs.Parts[pn] = &cp
		}
		cs.Expected = append([]string(nil), s.Expected...)
		c.Sources[n] = &cs
	}
	return c
}
