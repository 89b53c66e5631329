package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/types"
)

func testTable() *catalog.Table {
	return &catalog.Table{ID: 3, Name: "prices", Source: "pricing", Columns: []catalog.Column{
		{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}, {Name: "currency", Type: types.Varchar},
	}, PK: []int{0}}
}

func row(id string, price float64) []types.Value {
	return []types.Value{types.String(id), types.Float(price), types.String("EUR")}
}

func TestSnapshotReadsVersionAtT(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		dir := t.TempDir()
		st, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tb := testTable()
		b := st.NewBatch()
		must(t, b.Put(tb, row("P1", 10), 100))
		must(t, b.Put(tb, row("P1", 11), 200))
		must(t, b.Put(tb, row("P2", 20), 150))
		must(t, b.Delete(tb, []types.Value{types.String("P1")}, 300))
		must(t, b.Put(tb, row("P1", 12), 400))
		must(t, b.Put(tb, row("P1", 13), 400)) // same ts: the later write wins
		must(t, b.Flush())
		if reopen {
			must(t, st.Close())
			if st, err = Open(dir, Options{}); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			at    int64
			want  float64 // 0: absent
			ts    int64
			count int
		}{
			{99, 0, 0, 0}, {100, 10, 100, 1}, {199, 10, 100, 2}, {200, 11, 200, 2},
			{300, 0, 0, 1}, {399, 0, 0, 1}, {400, 13, 400, 2}, {1 << 50, 13, 400, 2},
		}
		for _, c := range cases {
			sn := st.At(c.at)
			r, ts, ok, err := sn.Get(tb, []types.Value{types.String("P1")}, nil)
			must(t, err)
			if c.want == 0 && ok || c.want != 0 && (!ok || r[1].F != c.want || ts != c.ts) {
				t.Errorf("reopen=%v at %d: got ok=%v row=%v ts=%d, want %v@%d", reopen, c.at, ok, r, ts, c.want, c.ts)
			}
			it := sn.Scan(tb, nil)
			n := 0
			for it.Next() {
				n++
			}
			must(t, it.Err())
			it.Close()
			if n != c.count {
				t.Errorf("reopen=%v at %d: scan saw %d rows, want %d", reopen, c.at, n, c.count)
			}
			sn.Close()
		}
		st.Close()
	}
}

func TestHistoryValidity(t *testing.T) {
	st, err := Open("", Options{InMemory: true})
	must(t, err)
	defer st.Close()
	tb := testTable()
	b := st.NewBatch()
	must(t, b.Put(tb, row("P1", 10), 100))
	must(t, b.Put(tb, row("P1", 11), 200))
	must(t, b.Delete(tb, []types.Value{types.String("P1")}, 300))
	must(t, b.Put(tb, row("P1", 12), 400))
	must(t, b.Flush())
	type iv struct{ from, to int64 }
	const none = -1 << 63
	cases := []struct {
		from, to int64
		want     []iv
	}{
		{0, 1000, []iv{{400, none}, {200, 300}, {100, 200}}},
		{150, 250, []iv{{200, none}, {100, 200}}},
		{200, 350, []iv{{200, 300}}},
		{300, 399, nil},
		{50, 99, nil},
	}
	for _, c := range cases {
		var got []iv
		must(t, st.History(tb, nil, c.from, c.to, func(v RowVersion) error {
			got = append(got, iv{v.ValidFrom, v.ValidTo})
			return nil
		}))
		if len(got) != len(c.want) {
			t.Fatalf("[%d,%d]: got %v want %v", c.from, c.to, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("[%d,%d]: got %v want %v", c.from, c.to, got, c.want)
			}
		}
	}
}

func TestMetaCommitSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	must(t, err)
	must(t, st.CommitMeta(MetaWrite{Puts: map[string][]byte{"state": []byte("one")}, Rejects: [][]byte{[]byte("r0")}}, 0))
	must(t, st.CommitMeta(MetaWrite{Puts: map[string][]byte{"state": []byte("two")}, Rejects: [][]byte{[]byte("r1"), []byte("r2")}}, 1))
	must(t, st.Close())
	st, err = Open(dir, Options{})
	must(t, err)
	defer st.Close()
	must(t, st.CommitMeta(MetaWrite{Puts: map[string][]byte{"state": []byte("three")}}, 3))
	v, ok, err := st.Meta("state")
	must(t, err)
	if !ok || string(v) != "three" {
		t.Fatalf("state = %q, want three (meta versions must keep growing across reopen)", v)
	}
	var recs []string
	must(t, st.Rejects(func(seq uint64, b []byte) error { recs = append(recs, string(b)); return nil }))
	if len(recs) != 3 || recs[2] != "r2" {
		t.Fatalf("rejects %v", recs)
	}
}

func TestOpenTwiceIsLocked(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	must(t, err)
	defer st.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open of the same directory: %v, want ErrLocked", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenFinishesACommittedBatch(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	must(t, err)
	tb := testTable()
	b := st.NewBatch()
	must(t, b.Put(tb, row("P1", 10), 100))
	must(t, b.Delete(tb, []types.Value{types.String("P2")}, 100))
	// The first step of Commit only, as if the process died before the
	// versions were written.
	must(t, st.CommitMeta(MetaWrite{Puts: map[string][]byte{intentName: {1}, intentChunkName(0, 0): encodeIntent(b.ents), "state": []byte("after")}}, 0))
	sn := st.At(200)
	if _, _, ok, _ := sn.Get(tb, []types.Value{types.String("P1")}, nil); ok {
		t.Fatal("versions visible before they were written")
	}
	sn.Close()
	must(t, st.Close())
	st, err = Open(dir, Options{})
	must(t, err)
	defer st.Close()
	sn = st.At(200)
	defer sn.Close()
	r, ts, ok, err := sn.Get(tb, []types.Value{types.String("P1")}, nil)
	if err != nil || !ok || r[1].F != 10 || ts != 100 {
		t.Fatalf("after reopen: %v %d %v %v; want the batch finished", r, ts, ok, err)
	}
	// A meta commit without a batch retires the intent.
	must(t, st.CommitMeta(MetaWrite{Puts: map[string][]byte{"state": []byte("next")}}, 0))
	if v, _, _ := st.Meta(intentName); len(v) != 0 {
		t.Fatalf("intent still set: %d bytes", len(v))
	}
}

// get reads key's row at ts, or nil.
func get(t *testing.T, st *Store, tb *catalog.Table, key string, ts int64) []types.Value {
	t.Helper()
	sn := st.At(ts)
	defer sn.Close()
	r, _, ok, err := sn.Get(tb, []types.Value{types.String(key)}, nil)
	must(t, err)
	if !ok {
		return nil
	}
	return r
}

// Two batches can be committed with their versions unwritten (the second
// commits while the first's are being written); Open finishes both, the
// older first, whichever slot holds it.
func TestOpenFinishesTwoCommittedBatches(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	must(t, err)
	tb := testTable()
	commit := func(id string, price float64, ts int64) {
		b := st.NewBatch()
		must(t, b.Put(tb, row(id, price), ts))
		must(t, st.Commit(b, MetaWrite{Puts: map[string][]byte{"state": []byte(id)}}, 0))
	}
	commit("P0", 1, 50) // slot 0, written
	// As if the process died before the next versions reached Badger.
	st.writeFn = func([]pending) error { return nil }
	commit("P1", 10, 100) // slot 1
	commit("P1", 11, 100) // slot 0 again: the later write of P1 at 100
	commit("P2", 20, 100) // slot 1 again
	if r := get(t, st, tb, "P1", 200); r != nil {
		t.Fatalf("unwritten versions visible: %v", r)
	}
	must(t, st.Close())
	st, err = Open(dir, Options{})
	must(t, err)
	defer st.Close()
	if r := get(t, st, tb, "P0", 200); r == nil {
		t.Fatal("P0 lost")
	}
	// Slot 0 holds P1=11, slot 1 P2: P1=10's intent was overwritten, as it
	// is once its versions are durable.
	if r := get(t, st, tb, "P1", 200); r == nil || r[1].F != 11 {
		t.Fatalf("P1 = %v, want 11 (the later batch)", r)
	}
	if r := get(t, st, tb, "P2", 200); r == nil {
		t.Fatal("P2 lost")
	}
}

// The newer of the two intents is replayed last even when it is in slot 0.
func TestIntentsReplayedOldestFirst(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	must(t, err)
	tb := testTable()
	st.writeFn = func([]pending) error { return nil }
	for i, price := range []float64{10, 11, 12} { // slots 0, 1, 0
		b := st.NewBatch()
		must(t, b.Put(tb, row("P1", price), 100))
		must(t, st.Commit(b, MetaWrite{Puts: map[string][]byte{"state": {byte(i)}}}, 0))
	}
	must(t, st.Close())
	st, err = Open(dir, Options{})
	must(t, err)
	defer st.Close()
	if r := get(t, st, tb, "P1", 200); r == nil || r[1].F != 12 {
		t.Fatalf("P1 = %v, want 12 (the last batch)", r)
	}
}

// A slot is reused only once the versions of the batch before it there are
// durable: until then its intent is what a crash would need.
func TestSlotReuseWaitsForVersions(t *testing.T) {
	st, err := Open(t.TempDir(), Options{})
	must(t, err)
	defer st.Close()
	tb := testTable()
	release := make(chan struct{})
	var writes []int
	st.writeFn = func(ents []pending) error {
		if len(writes) == 0 {
			<-release
		}
		writes = append(writes, len(ents))
		return st.writeVersions(ents)
	}
	commit := func(n int) *Flushing {
		b := st.NewBatch()
		for i := 0; i < n; i++ {
			must(t, b.Put(tb, row(fmt.Sprint("P", i), 1), 100))
		}
		f, err := st.CommitAsync(b, MetaWrite{}, 0)
		must(t, err)
		return f
	}
	commit(1) // slot 0, its write held
	commit(2) // slot 1, written after the first
	third := make(chan *Flushing)
	go func() { third <- commit(3) }() // slot 0 again
	select {
	case <-third:
		close(release)
		t.Fatal("slot 0 reused while its batch's versions were unwritten")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	must(t, (<-third).Wait())
	if fmt.Sprint(writes) != "[1 2 3]" {
		t.Fatalf("versions written in the order %v, want [1 2 3]", writes)
	}
}

// A batch whose versions fail to be written stops the store: later
// commits would record state for versions that are not there. Reopening
// finishes the batch.
func TestWriteFailureStopsCommits(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	must(t, err)
	tb := testTable()
	boom := errors.New("disk on fire")
	st.writeFn = func([]pending) error { return boom }
	b := st.NewBatch()
	must(t, b.Put(tb, row("P1", 10), 100))
	f, err := st.CommitAsync(b, MetaWrite{Puts: map[string][]byte{"state": []byte("1")}}, 0)
	must(t, err)
	if err := f.Wait(); !errors.Is(err, boom) {
		t.Fatalf("Wait = %v, want the write's error", err)
	}
	st.writeFn = st.writeVersions
	for i := 0; i < 2; i++ { // each slot
		b = st.NewBatch()
		must(t, b.Put(tb, row("P2", 20), 200))
		if err := st.Commit(b, MetaWrite{Puts: map[string][]byte{"state": []byte("2")}}, 0); !errors.Is(err, ErrWriteFailed) {
			t.Fatalf("commit %d after a failed write = %v, want ErrWriteFailed", i, err)
		}
	}
	if err := st.CommitMeta(MetaWrite{Puts: map[string][]byte{"catalog": nil}}, 0); !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("meta commit after a failed write = %v, want ErrWriteFailed", err)
	}
	must(t, st.CommitMeta(MetaWrite{Puts: map[string][]byte{"aside": nil}, Aside: true}, 0))
	st.Close()
	st, err = Open(dir, Options{})
	must(t, err)
	defer st.Close()
	if r := get(t, st, tb, "P1", 150); r == nil || r[1].F != 10 {
		t.Fatalf("after reopen P1 = %v, want the failed batch finished", r)
	}
	if v, _, _ := st.Meta("state"); string(v) != "1" {
		t.Fatalf("state = %q, want the failed batch's", v)
	}
}

func TestIntentRoundTrip(t *testing.T) {
	ents := []pending{{key: []byte("k1"), val: []byte("v"), ver: 7}, {key: []byte("k2"), ver: 9, del: true}, {key: []byte{0}, val: nil, ver: 1}}
	got, err := decodeIntent(encodeIntent(ents))
	if err != nil || len(got) != 3 || string(got[0].key) != "k1" || !got[1].del || got[1].ver != 9 || string(got[0].val) != "v" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := decodeIntent([]byte{5, 0}); err == nil {
		t.Fatal("truncated intent decoded")
	}
}

func TestLargeBatchCommitsInMemoryAndOnDisk(t *testing.T) {
	for _, mem := range []bool{true, false} {
		dir := ""
		if !mem {
			dir = t.TempDir()
		}
		st, err := Open(dir, Options{InMemory: mem})
		must(t, err)
		tb := testTable()
		b := st.NewBatch()
		for i := 0; i < 30000; i++ {
			must(t, b.Put(tb, []types.Value{types.String(fmt.Sprintf("P%06d", i)), types.Float(1), types.String("a fairly long currency name")}, int64(100+i)))
		}
		must(t, st.Commit(b, MetaWrite{Puts: map[string][]byte{"state": []byte("x")}}, 0))
		sn := st.At(1 << 40)
		it := sn.Scan(tb, nil)
		n := 0
		for it.Next() {
			n++
		}
		it.Close()
		sn.Close()
		if n != 30000 {
			t.Fatalf("in memory %v: %d rows", mem, n)
		}
		if !mem {
			must(t, st.Close())
			st, err = Open(dir, Options{}) // replays the chunked intent
			must(t, err)
		}
		st.Close()
	}
}

// Every meta commit rewrites its records at one Badger version, so the
// store keeps one copy of each (an intent is about the size of its batch)
// instead of one per commit.
func TestMetaRecordsKeepOneVersion(t *testing.T) {
	st, err := Open(t.TempDir(), Options{})
	must(t, err)
	defer st.Close()
	tb := testTable()
	for i := range 20 {
		b := st.NewBatch()
		must(t, b.Put(tb, row(fmt.Sprint("P", i), 1), int64(100+i)))
		must(t, st.Commit(b, MetaWrite{Puts: map[string][]byte{"state": {byte(i)}}}, 0))
	}
	must(t, st.CommitMeta(MetaWrite{Puts: map[string][]byte{"state": {99}}}, 0))
	txn := st.DB().NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixMeta}, AllVersions: true})
	defer it.Close()
	seen := map[string]int{}
	for it.Rewind(); it.Valid(); it.Next() {
		seen[string(it.Item().Key()[1:])]++
	}
	for _, name := range []string{"state", "seq", "intent", "intent1", "intent.0", "intent1.0"} {
		if seen[name] != 1 {
			t.Errorf("meta record %q has %d versions, want 1 (all: %v)", name, seen[name], seen)
		}
	}
	if v, _, _ := st.Meta("state"); len(v) != 1 || v[0] != 99 {
		t.Errorf("state = %v, want the last commit's [99]", v)
	}
}

// A store written before meta records moved to one version (each at its
// commit's sequence number, the intent header a bare chunk count) opens:
// its last batch is finished from its intent, and new commits supersede
// its records and continue its sequence.
func TestOpenStoreWithSequenceVersionedMeta(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	must(t, err)
	tb := testTable()
	b := st.NewBatch()
	must(t, b.Put(tb, row("P1", 10), 100))
	intent := encodeIntent(b.ents)
	txn := st.DB().NewTransactionAt(math.MaxUint64, true)
	for name, v := range map[string][]byte{"seq": nil, "state": []byte("old"), "intent": {1}, "intent.0": intent} {
		must(t, txn.Set(metaKey(name), v))
	}
	must(t, txn.CommitAt(7, nil))
	must(t, st.Close())

	st, err = Open(dir, Options{})
	must(t, err)
	if st.metaSeq != 7 {
		t.Errorf("meta sequence %d, want 7 (the old seq record's version)", st.metaSeq)
	}
	if r := get(t, st, tb, "P1", 200); r == nil || r[1].F != 10 {
		t.Fatalf("P1 = %v, want 10 (replayed from the old intent)", r)
	}
	b = st.NewBatch()
	must(t, b.Put(tb, row("P1", 11), 150))
	must(t, st.Commit(b, MetaWrite{Puts: map[string][]byte{"state": []byte("new")}}, 0))
	must(t, st.Close())

	st, err = Open(dir, Options{})
	must(t, err)
	defer st.Close()
	if v, _, _ := st.Meta("state"); string(v) != "new" || st.metaSeq != 8 {
		t.Errorf("state %q, meta sequence %d; want new and 8", v, st.metaSeq)
	}
	if r := get(t, st, tb, "P1", 200); r == nil || r[1].F != 11 {
		t.Fatalf("P1 = %v, want 11", r)
	}
}

// In memory, the largest row Batch.Put takes can still be checkpointed
// (a checkpoint stores it behind a 9-byte header, within Badger's value
// threshold); one byte more is refused with ErrTooLarge.
func TestLargestRowInMemoryCheckpoints(t *testing.T) {
	st, err := Open("", Options{InMemory: true})
	must(t, err)
	defer st.Close()
	tb := testTable()
	fixed := len(EncodeRow(nil, tb.Columns, []types.Value{types.String("P1"), types.Float(1), types.String("")}))
	big := func(n int) []types.Value {
		return []types.Value{types.String("P1"), types.Float(1), types.String(strings.Repeat("x", n))}
	}
	b := st.NewBatch()
	n := st.maxValue - fixed - 8 // the string's length prefix, at most
	for len(EncodeRow(nil, tb.Columns, big(n+1))) <= st.maxValue {
		n++
	}
	must(t, b.Put(tb, big(n), 100))
	if err := b.Put(tb, big(n+1), 101); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a row of %d bytes: %v, want ErrTooLarge", len(EncodeRow(nil, tb.Columns, big(n+1))), err)
	}
	must(t, st.Commit(b, MetaWrite{}, 0))
	if _, err := st.Checkpoint(tb, 200); err != nil {
		t.Fatalf("checkpoint of the largest row: %v", err)
	}
}

// DropTable (Badger's DropPrefix, which refuses every write while it runs)
// waits for the versions of a batch committed before it: written during
// the drop, they would fail and stop the store.
func TestDropTableWaitsForVersionsInFlight(t *testing.T) {
	st, err := Open(t.TempDir(), Options{})
	must(t, err)
	defer st.Close()
	tb := testTable()
	release := make(chan struct{})
	st.SetWriteHook(func(int) { <-release })
	b := st.NewBatch()
	must(t, b.Put(tb, row("P1", 10), 100))
	f, err := st.CommitAsync(b, MetaWrite{Puts: map[string][]byte{"state": []byte("1")}}, 0)
	must(t, err)
	dropped := make(chan error, 1)
	go func() { dropped <- st.DropTable(tb.ID + 1) }()
	select {
	case err := <-dropped:
		close(release)
		t.Fatalf("DropTable returned (%v) while a batch's versions were on their way", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	must(t, <-dropped)
	must(t, f.Wait())
	if r := get(t, st, tb, "P1", 200); r == nil {
		t.Fatal("P1 lost")
	}
}

// TestBatchAppend joins batches as Append's callers do, sorted or not,
// and checks that the joined write is the writes in order: every version
// lands, and of two writes of a key at one instant the appended one wins.
func TestBatchAppend(t *testing.T) {
	for _, tc := range []struct {
		name             string
		sortFirst, sortO bool
	}{
		{"neither sorted", false, false},
		{"both sorted", true, true},
		{"first sorted", true, false},
		{"appended sorted", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(t.TempDir(), Options{InMemory: true})
			must(t, err)
			defer st.Close()
			tb := testTable()
			a, o := st.NewBatch(), st.NewBatch()
			// a: P0..P9 at 100 (price i), P5 at 200; o: P3 and P7 at 100
			// again (price 1000+i), P8 deleted at 100, P10..P12 at 100.
			for i := 9; i >= 0; i-- {
				must(t, a.Put(tb, row(fmt.Sprintf("P%d", i), float64(i)), 100))
			}
			must(t, a.Put(tb, row("P5", 55), 200))
			for _, i := range []int{12, 7, 3, 11, 10} {
				must(t, o.Put(tb, row(fmt.Sprintf("P%d", i), float64(1000+i)), 100))
			}
			must(t, o.Delete(tb, []types.Value{types.String("P8")}, 100))
			if tc.sortFirst {
				a.Sort()
			}
			if tc.sortO {
				o.Sort()
			}
			n := a.Len() + o.Len()
			a.Append(o)
			if a.Len() != n || o.Len() != 0 {
				t.Fatalf("lengths after Append: %d and %d, want %d and 0", a.Len(), o.Len(), n)
			}
			if tc.sortFirst && tc.sortO && !slices.IsSortedFunc(a.ents, cmpPending) {
				t.Errorf("two sorted batches appended are not sorted")
			}
			must(t, a.Flush())
			want := map[string]float64{"P0": 0, "P1": 1, "P2": 2, "P3": 1003, "P4": 4, "P5": 5, "P6": 6, "P7": 1007, "P9": 9, "P10": 1010, "P11": 1011, "P12": 1012}
			got := map[string]float64{}
			it := st.At(100).Scan(tb, nil)
			for it.Next() {
				got[it.Row()[0].S] = it.Row()[1].F
			}
			must(t, it.Err())
			it.Close()
			if !maps.Equal(got, want) {
				t.Errorf("at 100: %v, want %v", got, want)
			}
			if r, _, ok, err := st.At(200).Get(tb, []types.Value{types.String("P5")}, nil); err != nil || !ok || r[1].F != 55 {
				t.Errorf("P5 at 200: %v %v %v", r, ok, err)
			}
		})
	}
}

// TestSortPendingKeepsWriteOrder sorts batches with many writes of the
// same key at the same version, large enough that the sort is not an
// insertion sort, and checks the result against a stable sort: of two
// writes of a key at one version, the later must stay after the earlier
// (it is the one Badger keeps).
func TestSortPendingKeepsWriteOrder(t *testing.T) {
	for _, n := range []int{10, 1000, 20000} {
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		ents := make([]pending, n)
		for i := range ents {
			ents[i] = pending{key: fmt.Appendf(nil, "k%03d", rng.IntN(50)), ver: uint64(rng.IntN(4)), val: fmt.Appendf(nil, "%d", i)}
		}
		want := slices.Clone(ents)
		slices.SortStableFunc(want, cmpPending)
		sortPending(ents)
		for i := range ents {
			if !bytes.Equal(ents[i].key, want[i].key) || ents[i].ver != want[i].ver || !bytes.Equal(ents[i].val, want[i].val) {
				t.Fatalf("n=%d: position %d holds %s@%d (write %s), want %s@%d (write %s)", n, i,
					ents[i].key, ents[i].ver, ents[i].val, want[i].key, want[i].ver, want[i].val)
			}
		}
	}
}
