package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	_ "github.com/mattn/go-sqlite3"

	"ttq/catalog"
	"ttq/engine"
	"ttq/mvcc"
	"ttq/query"
	"ttq/server"
	"ttq/types"
)

// An answer is a query's rows, each row its fields joined by "|", in the
// query's order. Floats are compared with a relative tolerance (see check).
type answer []string

// system answers the four queries.
type system interface {
	Name() string
	Q1(product string, t int64) (answer, error)
	Q2(listing string, t int64) (answer, error)
	Q3(t int64) (answer, error)
	Q4(product string, t1, t2 int64) (answer, error)
}

const ddl = `CREATE SOURCE pricing;
CREATE SOURCE search;
CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE) SOURCE pricing;
CREATE TABLE listings (listing_id VARCHAR PRIMARY KEY, product_id VARCHAR, category VARCHAR, active BOOLEAN, title VARCHAR) SOURCE search;`

func q1SQL(p string, t int64) string {
	return fmt.Sprintf("SELECT price, _ts FROM prices AS OF %d WHERE product_id = '%s'", t, p)
}

func q2SQL(l string, t int64) string {
	return fmt.Sprintf("SELECT l.listing_id, l.title, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF %d WHERE l.listing_id = '%s'", t, l)
}

func q3SQL(t int64) string {
	return fmt.Sprintf("SELECT l.category, COUNT(*) AS n, AVG(p.price) AS avg_price FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF %d WHERE l.active = true GROUP BY l.category ORDER BY l.category", t)
}

func q4SQL(p string, t1, t2 int64) string {
	return fmt.Sprintf("SELECT price, _valid_from, _valid_to FROM prices FOR SYSTEM_TIME BETWEEN %d AND %d WHERE product_id = '%s' ORDER BY _valid_from", t1, t2, p)
}

func ff(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func valueText(v types.Value) string {
	switch v.T {
	case types.Null:
		return ""
	case types.BigInt, types.Timestamp:
		return strconv.FormatInt(v.I, 10)
	case types.Double:
		return ff(v.F)
	case types.Boolean:
		return strconv.FormatBool(v.I != 0)
	}
	return v.S
}

// ---- ttq embedded ----

type ttqEmbedded struct{ e *engine.Engine }

func (s *ttqEmbedded) Name() string { return "ttq embedded" }

func (s *ttqEmbedded) run(q string) (answer, error) {
	r, err := s.e.Exec(context.Background(), q, query.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer r.Release()
	var out answer
	var b []byte
	for _, row := range r.Rows() {
		b = b[:0]
		for c, v := range row {
			if c > 0 {
				b = append(b, '|')
			}
			b = append(b, valueText(v)...)
		}
		out = append(out, string(b))
	}
	return out, nil
}

func (s *ttqEmbedded) Q1(p string, t int64) (answer, error) { return s.run(q1SQL(p, t)) }
func (s *ttqEmbedded) Q2(l string, t int64) (answer, error) { return s.run(q2SQL(l, t)) }
func (s *ttqEmbedded) Q3(t int64) (answer, error)           { return s.run(q3SQL(t)) }
func (s *ttqEmbedded) Q4(p string, t1, t2 int64) (answer, error) {
	return s.run(q4SQL(p, t1, t2))
}

// ---- ttq over HTTP ----

type ttqHTTP struct {
	url string
	hc  *http.Client
}

func (s *ttqHTTP) Name() string { return "ttq HTTP" }

// startServer serves e on a loopback listener in this process.
func startServer(ctx context.Context, e *engine.Engine) (*ttqHTTP, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := server.New(e, server.Config{MaxIngestBytes: 256 << 20, MaxConcurrentQueries: 4})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
	h := &ttqHTTP{url: "http://" + ln.Addr().String(), hc: &http.Client{Transport: tr}}
	stop := func() {
		cancel()
		<-done
		tr.CloseIdleConnections()
	}
	return h, stop, nil
}

func (s *ttqHTTP) post(path, ctype, accept string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", accept)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

func (s *ttqHTTP) sql(q string) ([]byte, error) {
	body, _ := json.Marshal(map[string]string{"sql": q})
	return s.post("/v1/sql", "application/json", "text/csv", body)
}

func (s *ttqHTTP) run(q string) (answer, error) {
	b, err := s.sql(q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: bad CSV: %w", q, err)
	}
	var out answer
	for _, r := range recs[1:] { // header first
		for i, f := range r {
			if t, err := time.Parse(time.RFC3339Nano, f); err == nil {
				r[i] = strconv.FormatInt(t.UnixMicro(), 10)
			}
		}
		out = append(out, joinFields(r))
	}
	return out, nil
}

func joinFields(r []string) string {
	var b []byte
	for i, f := range r {
		if i > 0 {
			b = append(b, '|')
		}
		b = append(b, f...)
	}
	return string(b)
}

func (s *ttqHTTP) Q1(p string, t int64) (answer, error) { return s.run(q1SQL(p, t)) }
func (s *ttqHTTP) Q2(l string, t int64) (answer, error) { return s.run(q2SQL(l, t)) }
func (s *ttqHTTP) Q3(t int64) (answer, error)           { return s.run(q3SQL(t)) }
func (s *ttqHTTP) Q4(p string, t1, t2 int64) (answer, error) {
	return s.run(q4SQL(p, t1, t2))
}

// ---- raw Badger managed mode ----

type rawBadger struct {
	db               *badger.DB
	prices, listings *catalog.Table
}

func (s *rawBadger) Name() string { return "raw Badger" }

func openRawBadger(dir string, prices, listings *catalog.Table) (*rawBadger, error) {
	// The options ttq's store uses (mvcc.Open): every version kept, fsync
	// at each commit.
	opts := badger.DefaultOptions(dir).WithNumVersionsToKeep(math.MaxInt32).WithSyncWrites(true).
		WithDetectConflicts(false).WithLogger(nil).WithMetricsEnabled(false)
	db, err := badger.OpenManaged(opts)
	if err != nil {
		return nil, err
	}
	return &rawBadger{db: db, prices: prices, listings: listings}, nil
}

type kv struct {
	k, v []byte
	ver  uint64
}

// encode turns parsed records into Badger entries with ttq's key and row
// encodings (v == nil: delete), at version ts+1.
func (s *rawBadger) encode(rs []rec, dst []kv) []kv {
	dst = dst[:0]
	for _, r := range rs {
		var k, v []byte
		if r.Table == "prices" {
			d := r.Data
			if d == nil {
				d = r.Key
			}
			k = mvcc.EncodeKey(nil, s.prices.ID, []types.Value{types.String(d.ProductID)})
			if r.Op == "upsert" {
				v = mvcc.EncodeRow(nil, s.prices.Columns, []types.Value{types.String(d.ProductID), types.Float(d.Price)})
			}
		} else {
			d := r.Data
			if d == nil {
				d = r.Key
			}
			k = mvcc.EncodeKey(nil, s.listings.ID, []types.Value{types.String(d.ListingID)})
			if r.Op == "upsert" {
				v = mvcc.EncodeRow(nil, s.listings.Columns, []types.Value{types.String(d.ListingID),
					types.String(d.ProductID), types.String(d.Category), types.Bool(d.Active), types.String(d.Title)})
			}
		}
		dst = append(dst, kv{k, v, mvcc.Version(r.TS)})
	}
	return dst
}

// write commits one chunk with a managed WriteBatch (durable at Flush).
func (s *rawBadger) write(es []kv) error {
	wb := s.db.NewManagedWriteBatch()
	defer wb.Cancel()
	for _, e := range es {
		var err error
		if e.v == nil {
			err = wb.DeleteAt(e.k, e.ver)
		} else {
			err = wb.SetEntryAt(badger.NewEntry(e.k, e.v), e.ver)
		}
		if err != nil {
			return err
		}
	}
	return wb.Flush()
}

func (s *rawBadger) get(txn *badger.Txn, t *catalog.Table, key string, dst []types.Value) ([]types.Value, int64, bool, error) {
	var kb [32]byte
	item, err := txn.Get(mvcc.EncodeKey(kb[:0], t.ID, []types.Value{types.String(key)}))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	var row []types.Value
	err = item.Value(func(b []byte) error {
		row, err = mvcc.DecodeRow(dst, t.Columns, b)
		return err
	})
	return row, mvcc.TS(item.Version()), err == nil, err
}

func (s *rawBadger) Q1(p string, t int64) (answer, error) {
	txn := s.db.NewTransactionAt(mvcc.Version(t), false)
	defer txn.Discard()
	var dst [2]types.Value
	row, ts, ok, err := s.get(txn, s.prices, p, dst[:])
	if err != nil || !ok {
		return nil, err
	}
	return answer{ff(row[1].F) + "|" + strconv.FormatInt(ts, 10)}, nil
}

func (s *rawBadger) Q2(l string, t int64) (answer, error) {
	txn := s.db.NewTransactionAt(mvcc.Version(t), false)
	defer txn.Discard()
	var ld [5]types.Value
	lr, _, ok, err := s.get(txn, s.listings, l, ld[:])
	if err != nil || !ok {
		return nil, err
	}
	var pd [2]types.Value
	pr, _, ok, err := s.get(txn, s.prices, lr[1].S, pd[:])
	if err != nil || !ok {
		return nil, err
	}
	return answer{lr[0].S + "|" + lr[4].S + "|" + ff(pr[1].F)}, nil
}

// Q3 is a hand-written hash join: prices at T into a map, then listings at
// T probing it, grouped by category.
func (s *rawBadger) Q3(t int64) (answer, error) {
	txn := s.db.NewTransactionAt(mvcc.Version(t), false)
	defer txn.Discard()
	price := map[string]float64{}
	scan := func(tb *catalog.Table, fn func(row []types.Value)) error {
		p := mvcc.EncodeKey(nil, tb.ID, nil)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
		defer it.Close()
		var row []types.Value
		for it.Seek(p); it.Valid(); it.Next() {
			err := it.Item().Value(func(b []byte) error {
				var err error
				row, err = mvcc.DecodeRow(row, tb.Columns, b)
				return err
			})
			if err != nil {
				return err
			}
			fn(row)
		}
		return nil
	}
	if err := scan(s.prices, func(r []types.Value) { price[r[0].S] = r[1].F }); err != nil {
		return nil, err
	}
	type agg struct {
		n   int64
		sum float64
	}
	groups := map[string]*agg{}
	err := scan(s.listings, func(r []types.Value) {
		if r[3].I == 0 {
			return
		}
		p, ok := price[r[1].S]
		if !ok {
			return
		}
		g := groups[r[2].S]
		if g == nil {
			g = &agg{}
			groups[r[2].S] = g
		}
		g.n++
		g.sum += p
	})
	if err != nil {
		return nil, err
	}
	cats := make([]string, 0, len(groups))
	for c := range groups {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	out := make(answer, len(cats))
	for i, c := range cats {
		g := groups[c]
		out[i] = c + "|" + strconv.FormatInt(g.n, 10) + "|" + ff(g.sum/float64(g.n))
	}
	return out, nil
}

// Q4 walks the key's versions newest first at T2 and stops at the first one
// at or before T1.
func (s *rawBadger) Q4(p string, t1, t2 int64) (answer, error) {
	txn := s.db.NewTransactionAt(mvcc.Version(t2), false)
	defer txn.Discard()
	k := mvcc.EncodeKey(nil, s.prices.ID, []types.Value{types.String(p)})
	it := txn.NewIterator(badger.IteratorOptions{Prefix: k, AllVersions: true})
	defer it.Close()
	var rev answer
	next := int64(-1) // ts of the next newer version; -1: none at or before t2
	var row []types.Value
	for it.Seek(k); it.Valid(); it.Next() {
		item := it.Item()
		if !bytes.Equal(item.Key(), k) {
			break
		}
		ts := mvcc.TS(item.Version())
		if !item.IsDeletedOrExpired() {
			err := item.Value(func(b []byte) error {
				var err error
				row, err = mvcc.DecodeRow(row, s.prices.Columns, b)
				return err
			})
			if err != nil {
				return nil, err
			}
			to := ""
			if next >= 0 {
				to = strconv.FormatInt(next, 10)
			}
			rev = append(rev, ff(row[1].F)+"|"+strconv.FormatInt(ts, 10)+"|"+to)
		}
		next = ts
		if ts <= t1 {
			break
		}
	}
	out := make(answer, len(rev))
	for i, r := range rev {
		out[len(rev)-1-i] = r
	}
	return out, nil
}

// ---- SQLite ----

type sqliteSys struct {
	db             *sql.DB
	q1, q2, q3, q4 *sql.Stmt
}

func (s *sqliteSys) Name() string { return "SQLite" }

const sqliteSchema = `
CREATE TABLE price_hist (product_id TEXT NOT NULL, ts INTEGER NOT NULL, deleted INTEGER NOT NULL, price REAL,
  PRIMARY KEY (product_id, ts)) WITHOUT ROWID;
CREATE TABLE listing_hist (listing_id TEXT NOT NULL, ts INTEGER NOT NULL, deleted INTEGER NOT NULL,
  product_id TEXT, category TEXT, active INTEGER, title TEXT,
  PRIMARY KEY (listing_id, ts)) WITHOUT ROWID;`

// The AS OF formulations (docs/BENCHMARKS.md says why these).
const (
	sqliteQ1 = `SELECT price, ts FROM (SELECT price, ts, deleted FROM price_hist
  WHERE product_id = ?1 AND ts <= ?2 ORDER BY ts DESC LIMIT 1) WHERE deleted = 0`
	sqliteQ2 = `SELECT l.listing_id, l.title, p.price
FROM (SELECT listing_id, product_id, title, deleted FROM listing_hist
      WHERE listing_id = ?1 AND ts <= ?2 ORDER BY ts DESC LIMIT 1) l
JOIN price_hist p ON p.product_id = l.product_id
 AND p.ts = (SELECT MAX(ts) FROM price_hist WHERE product_id = l.product_id AND ts <= ?2)
WHERE l.deleted = 0 AND p.deleted = 0`
	// SQLite's bare columns with MAX(): the other columns come from the row
	// holding the maximum ts of each group.
	sqliteQ3 = `SELECT l.category, COUNT(*), AVG(p.price)
FROM (SELECT product_id, category, active, deleted, MAX(ts) FROM listing_hist WHERE ts <= ?1 GROUP BY listing_id) l
JOIN (SELECT product_id, price, deleted, MAX(ts) FROM price_hist WHERE ts <= ?1 GROUP BY product_id) p
  ON p.product_id = l.product_id
WHERE l.deleted = 0 AND l.active = 1 AND p.deleted = 0
GROUP BY l.category ORDER BY l.category`
	sqliteQ4 = `SELECT price, ts, nxt FROM (
  SELECT price, ts, deleted, LEAD(ts) OVER (ORDER BY ts) AS nxt FROM price_hist
  WHERE product_id = ?1 AND ts <= ?3
    AND ts >= COALESCE((SELECT MAX(ts) FROM price_hist WHERE product_id = ?1 AND ts <= ?2), 0))
WHERE deleted = 0 ORDER BY ts`
)

func openSQLite(path string) (*sqliteSys, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_cache_size=-262144")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(sqliteSchema); err != nil {
		db.Close()
		return nil, err
	}
	return &sqliteSys{db: db}, nil
}

// load inserts every chunk fn yields in one transaction.
func (s *sqliteSys) load(each func(fn func([]rec) error) error, timed func(func() error) error) error {
	var tx *sql.Tx
	var ip, il *sql.Stmt
	err := timed(func() error {
		var err error
		if tx, err = s.db.Begin(); err != nil {
			return err
		}
		if ip, err = tx.Prepare(`INSERT OR REPLACE INTO price_hist VALUES (?, ?, ?, ?)`); err != nil {
			return err
		}
		il, err = tx.Prepare(`INSERT OR REPLACE INTO listing_hist VALUES (?, ?, ?, ?, ?, ?, ?)`)
		return err
	})
	if err != nil {
		return err
	}
	err = each(func(rs []rec) error {
		return timed(func() error {
			for _, r := range rs {
				var err error
				switch {
				case r.Table == "prices" && r.Op == "upsert":
					_, err = ip.Exec(r.Data.ProductID, r.TS, 0, r.Data.Price)
				case r.Table == "prices":
					_, err = ip.Exec(r.Key.ProductID, r.TS, 1, nil)
				case r.Op == "upsert":
					active := 0
					if r.Data.Active {
						active = 1
					}
					_, err = il.Exec(r.Data.ListingID, r.TS, 0, r.Data.ProductID, r.Data.Category, active, r.Data.Title)
				default:
					_, err = il.Exec(r.Key.ListingID, r.TS, 1, nil, nil, nil, nil)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		tx.Rollback()
		return err
	}
	return timed(func() error {
		ip.Close()
		il.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
		_, err := s.db.Exec(`ANALYZE`)
		return err
	})
}

func (s *sqliteSys) prepare() error {
	var err error
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{{&s.q1, sqliteQ1}, {&s.q2, sqliteQ2}, {&s.q3, sqliteQ3}, {&s.q4, sqliteQ4}} {
		if *p.st, err = s.db.Prepare(p.q); err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", p.q, err)
		}
	}
	return nil
}

func (s *sqliteSys) rows(st *sql.Stmt, args ...any) (answer, error) {
	rs, err := st.Query(args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out answer
	fs := make([]string, len(cols))
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				fs[i] = ""
			case int64:
				fs[i] = strconv.FormatInt(x, 10)
			case float64:
				fs[i] = ff(x)
			case []byte:
				fs[i] = string(x)
			case string:
				fs[i] = x
			default:
				fs[i] = fmt.Sprint(x)
			}
		}
		out = append(out, joinFields(fs))
	}
	return out, rs.Err()
}

func (s *sqliteSys) Q1(p string, t int64) (answer, error) { return s.rows(s.q1, p, t) }
func (s *sqliteSys) Q2(l string, t int64) (answer, error) { return s.rows(s.q2, l, t) }
func (s *sqliteSys) Q3(t int64) (answer, error)           { return s.rows(s.q3, t) }
func (s *sqliteSys) Q4(p string, t1, t2 int64) (answer, error) {
	return s.rows(s.q4, p, t1, t2)
}
