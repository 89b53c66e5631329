package crashtest

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The workload: two sources, each owning one table, so that both gate the
// global watermark G.
//
//   - Source a writes batches to ea: every batch writes aRows rows keyed
//     (batch, i) and deletes row i=0 of one earlier batch. A batch is present
//     whole (aRows rows, its delete done) or not at all.
//   - Source b writes batches to kb: every batch upserts bUps of bKeys keys
//     with its batch id and deletes one other key, so rows are overwritten
//     and deleted across batches.
//
// Each batch ends with its source's watermark at the batch's time, all in one
// ingest request (one commit), so after a crash the batch is checkable as a
// unit once the watermark of a later request has passed it.
const (
	aRows    = 8
	bKeys    = 64
	bUps     = 4
	epochUS  = 250_000          // --epoch 250ms: every move of G closes an epoch
	baseTime = 1795600800000000 // 2026-11-25T10:00:00Z
	stepUS   = 250_000          // timeline time between batches
)

const crashSchema = `CREATE SOURCE a;
CREATE SOURCE b;
CREATE TABLE ea (batch BIGINT, i BIGINT, val VARCHAR, PRIMARY KEY (batch, i)) SOURCE a;
CREATE TABLE kb (k BIGINT PRIMARY KEY, batch BIGINT, note VARCHAR) SOURCE b`

// viewDDL is the view kept at every epoch; its defining query is viewBase.
const (
	viewDDL  = `CREATE VIEW jv AS SELECT a.batch, a.i, b.batch AS bb FROM ea a LEFT JOIN kb b ON a.i = b.k`
	viewBase = `SELECT a.batch, a.i, b.batch AS bb FROM ea a LEFT JOIN kb b ON a.i = b.k AS OF %d ORDER BY a.batch, a.i`
	viewRows = `SELECT batch, i, bb FROM jv AS OF %d ORDER BY batch, i`
)

// The sealed queries recorded during the run and checked after restarts.
const (
	qEA   = `SELECT batch, COUNT(*) AS n FROM ea AS OF %d GROUP BY batch ORDER BY batch`
	qKB   = `SELECT k, batch FROM kb AS OF %d ORDER BY k`
	qView = `SELECT COUNT(*) AS n, COUNT(bb) AS c, SUM(bb) AS s FROM jv AS OF %d`
)

type aBatch struct {
	id, ts int64
	del    int64 // the batch whose row i=0 this one deletes, or -1
}

type bBatch struct {
	id, ts int64
	up     []int64 // keys upserted with batch = id
	del    int64   // key deleted
}

// pad lengthens every val of ea (TTQ_CRASH_PAD bytes), so that long local
// runs fill Badger's memtables and kills also land in flushes, compactions
// and value-log writes.
var pad string

func (b aBatch) body() []byte {
	var sb strings.Builder
	for i := 0; i < aRows; i++ {
		fmt.Fprintf(&sb, `{"source":"a","table":"ea","op":"upsert","ts":%d,"data":{"batch":%d,"i":%d,"val":"a%d-%d%s"}}`+"\n", b.ts, b.id, i, b.id, i, pad)
	}
	if b.del >= 0 {
		fmt.Fprintf(&sb, `{"source":"a","table":"ea","op":"delete","ts":%d,"key":{"batch":%d,"i":0}}`+"\n", b.ts, b.del)
	}
	fmt.Fprintf(&sb, `{"source":"a","op":"watermark","ts":%d}`+"\n", b.ts)
	return []byte(sb.String())
}

func (b aBatch) applied() int64 {
	if b.del >= 0 {
		return aRows + 1
	}
	return aRows
}

func (b bBatch) body() []byte {
	var sb strings.Builder
	for _, k := range b.up {
		fmt.Fprintf(&sb, `{"source":"b","table":"kb","op":"upsert","ts":%d,"data":{"k":%d,"batch":%d,"note":"b%d"}}`+"\n", b.ts, k, b.id, b.id)
	}
	fmt.Fprintf(&sb, `{"source":"b","table":"kb","op":"delete","ts":%d,"key":{"k":%d}}`+"\n", b.ts, b.del)
	fmt.Fprintf(&sb, `{"source":"b","op":"watermark","ts":%d}`+"\n", b.ts)
	return []byte(sb.String())
}

func (b bBatch) applied() int64 { return int64(len(b.up)) + 1 }

// model is what the store must hold: every acknowledged batch, plus the
// batches that were in flight at a kill and were found (whole) after it.
type model struct {
	mu      sync.Mutex
	a       []aBatch // applied, in time order
	b       []bBatch
	rowZero []int64 // a batches whose row 0 is still present (delete targets)
	pendA   *aBatch // sent, not acknowledged
	pendB   *bBatch
	ackedW  map[string]int64 // highest acknowledged watermark per source
	seenG   int64            // highest G any answer showed
	nextID  int64
	rng     *rand.Rand
}

func newModel(seed uint64) *model {
	return &model{ackedW: map[string]int64{"a": none, "b": none}, seenG: none, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (m *model) newA(ts int64) aBatch {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	b := aBatch{id: m.nextID, ts: ts, del: -1}
	if len(m.rowZero) > 0 && m.rng.IntN(4) != 0 {
		b.del = m.rowZero[m.rng.IntN(len(m.rowZero))]
	}
	m.pendA = &b
	return b
}

func (m *model) newB(ts int64) bBatch {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	b := bBatch{id: m.nextID, ts: ts}
	keys := m.rng.Perm(bKeys)
	for _, k := range keys[:bUps] {
		b.up = append(b.up, int64(k))
	}
	b.del = int64(keys[bUps])
	m.pendB = &b
	return b
}

// applyALocked records a as applied.
func (m *model) applyALocked(a aBatch) {
	m.a = append(m.a, a)
	m.rowZero = append(m.rowZero, a.id)
	if a.del >= 0 {
		for i, id := range m.rowZero {
			if id == a.del {
				m.rowZero = append(m.rowZero[:i], m.rowZero[i+1:]...)
				break
			}
		}
	}
	m.pendA = nil
}

func (m *model) applyBLocked(b bBatch) {
	m.b = append(m.b, b)
	m.pendB = nil
}

// ack records an acknowledged batch and the G its answer showed.
func (m *model) ackA(a aBatch, g int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applyALocked(a)
	m.ackedW["a"] = max(m.ackedW["a"], a.ts)
	m.seenG = max(m.seenG, g)
}

func (m *model) ackB(b bBatch, g int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applyBLocked(b)
	m.ackedW["b"] = max(m.ackedW["b"], b.ts)
	m.seenG = max(m.seenG, g)
}

func (m *model) sawG(g int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seenG = max(m.seenG, g)
}

func (m *model) G() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seenG
}

// appliedCounts is the updates of the applied batches per source.
func (m *model) appliedCounts() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int64{"a": 0, "b": 0}
	for _, a := range m.a {
		out["a"] += a.applied()
	}
	for _, b := range m.b {
		out["b"] += b.applied()
	}
	return out
}

// eaAt is batch id -> row count of ea AS OF t.
func (m *model) eaAt(t int64) map[int64]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return eaOf(m.a, t)
}

func eaOf(as []aBatch, t int64) map[int64]int64 {
	out := map[int64]int64{}
	for _, a := range as {
		if a.ts > t {
			continue
		}
		out[a.id] += aRows
		if a.del >= 0 {
			out[a.del]--
		}
	}
	return out
}

// kbAt is k -> batch of kb AS OF t.
func (m *model) kbAt(t int64) map[int64]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return kbOf(m.b, t)
}

func kbOf(bs []bBatch, t int64) map[int64]int64 {
	out := map[int64]int64{}
	for _, b := range bs {
		if b.ts > t {
			continue
		}
		for _, k := range b.up {
			out[k] = b.id
		}
		delete(out, b.del)
	}
	return out
}

// viewAt is the view's aggregate (rows, matched rows, sum of bb) AS OF t:
// the view answers at the last epoch boundary at or before t.
func (m *model) viewAt(t int64) [3]int64 {
	b := floorEpoch(t)
	m.mu.Lock()
	ea, kb := eaOf(m.a, b), kbOf(m.b, b)
	m.mu.Unlock()
	var n, c, s int64
	for _, cnt := range ea {
		first := int64(0)
		if cnt < aRows {
			first = 1 // row 0 deleted
		}
		for i := first; i < aRows; i++ {
			n++
			if v, ok := kb[i]; ok {
				c++
				s += v
			}
		}
	}
	if c == 0 {
		s = nullInt
	}
	return [3]int64{n, c, s}
}

func floorEpoch(t int64) int64 { return t - ((t%epochUS)+epochUS)%epochUS }

// answer is a sealed answer recorded during the run.
type answer struct {
	sql   string
	kind  string // ea, kb, view
	at    int64
	rows  string
	cycle int
	model bool // checked against the model
}

// checkAgainstModel compares a recorded answer with what the model says
// the store held AS OF its time.
func (m *model) checkAgainstModel(a answer) error {
	rows, err := intRows([]byte(a.rows))
	if err != nil {
		return fmt.Errorf("%s: %v", a.sql, err)
	}
	switch a.kind {
	case "ea":
		got := map[int64]int64{}
		for _, r := range rows {
			got[r[0]] = r[1]
		}
		return diffMaps(a.sql, got, m.eaAt(a.at), "batch", "rows")
	case "kb":
		got := map[int64]int64{}
		for _, r := range rows {
			got[r[0]] = r[1]
		}
		return diffMaps(a.sql, got, m.kbAt(a.at), "k", "batch")
	case "view":
		want := m.viewAt(a.at)
		if len(rows) != 1 || [3]int64(rows[0]) != want {
			return fmt.Errorf("%s: got %s, want [[%d,%d,%s]]", a.sql, a.rows, want[0], want[1], fmtNull(want[2]))
		}
	}
	return nil
}

func fmtNull(v int64) string {
	if v == nullInt {
		return "null"
	}
	return strconv.FormatInt(v, 10)
}

// diffMaps describes how got differs from want (at most a few entries).
func diffMaps(what string, got, want map[int64]int64, key, val string) error {
	var diffs []string
	keys := map[int64]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	sorted := make([]int64, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for _, k := range sorted {
		g, gok := got[k]
		w, wok := want[k]
		if gok != wok || g != w {
			diffs = append(diffs, fmt.Sprintf("%s %d: %s got %s, want %s", key, k, val, present(g, gok), present(w, wok)))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("... %d differences in all", len(diffs)))
	}
	return fmt.Errorf("%s:\n  %s", what, strings.Join(diffs, "\n  "))
}

func present(v int64, ok bool) string {
	if !ok {
		return "absent"
	}
	return strconv.FormatInt(v, 10)
}
