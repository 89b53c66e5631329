package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"time"
)

// T0 is the start of the workload's timeline: 2026-11-25T10:00:00Z.
var T0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixMicro()

const (
	second     = int64(1_000_000)
	categories = 50
	deleteRate = 0.03 // share of updates to a live row that delete it
	priceShare = 0.6  // share of updates that touch prices (the rest: listings)
)

// Workload sizes the generated data.
type Workload struct {
	Products int   // prices rows (product_id P000000...)
	Listings int   // listings rows (listing_id L000000...)
	Updates  int   // updates after the initial load
	Seconds  int   // timeline the updates are spread over
	Seed     int64 // generator seed
}

// GenStats says what the generator wrote.
type GenStats struct {
	Records    int64 // upserts and deletes (initial rows included)
	Deletes    int64
	Watermarks int64
	Lines      int64
	Bytes      int64
	Start, End int64 // first ts written; the last watermark (= G after ingest)
	UpdStart   int64 // first ts of the update phase
}

func productID(i int) string { return fmt.Sprintf("P%07d", i) }
func listingID(i int) string { return fmt.Sprintf("L%07d", i) }
func category(i int) string  { return fmt.Sprintf("cat%02d", i) }

// Generate writes the workload as NDJSON envelopes (SPEC §3) to w: the
// initial rows of both tables, then Updates updates spread over Seconds of
// timeline, with a watermark for each source at the end of every second.
// Every ts is distinct, so there are no same-ts ties to resolve.
func Generate(w io.Writer, wl Workload) (GenStats, error) {
	rng := rand.New(rand.NewSource(wl.Seed))
	bw := bufio.NewWriterSize(w, 1<<20)
	var st GenStats
	var buf []byte

	lProduct := make([]int32, wl.Listings)
	lCat := make([]int8, wl.Listings)
	lVer := make([]int32, wl.Listings)
	lActive := make([]bool, wl.Listings)
	lAlive := make([]bool, wl.Listings)
	pAlive := make([]bool, wl.Products)

	emit := func() {
		buf = append(buf, '\n')
		bw.Write(buf)
		st.Lines++
		st.Bytes += int64(len(buf))
	}
	price := func() float64 { return float64(100+rng.Intn(99_900)) / 100 } // 1.00 .. 999.99
	putPrice := func(i int, ts int64) {
		buf = append(buf[:0], `{"source":"pricing","table":"prices","op":"upsert","ts":`...)
		buf = strconv.AppendInt(buf, ts, 10)
		buf = append(buf, `,"data":{"product_id":"`...)
		buf = append(buf, productID(i)...)
		buf = append(buf, `","price":`...)
		buf = strconv.AppendFloat(buf, price(), 'f', -1, 64)
		buf = append(buf, "}}"...)
		emit()
		pAlive[i] = true
		st.Records++
	}
	delPrice := func(i int, ts int64) {
		buf = append(buf[:0], `{"source":"pricing","table":"prices","op":"delete","ts":`...)
		buf = strconv.AppendInt(buf, ts, 10)
		buf = append(buf, `,"key":{"product_id":"`...)
		buf = append(buf, productID(i)...)
		buf = append(buf, `"}}`...)
		emit()
		pAlive[i] = false
		st.Records++
		st.Deletes++
	}
	putListing := func(i int, ts int64) {
		lVer[i]++
		buf = append(buf[:0], `{"source":"search","table":"listings","op":"upsert","ts":`...)
		buf = strconv.AppendInt(buf, ts, 10)
		buf = append(buf, `,"data":{"listing_id":"`...)
		buf = append(buf, listingID(i)...)
		buf = append(buf, `","product_id":"`...)
		buf = append(buf, productID(int(lProduct[i]))...)
		buf = append(buf, `","category":"`...)
		buf = append(buf, category(int(lCat[i]))...)
		buf = append(buf, `","active":`...)
		buf = strconv.AppendBool(buf, lActive[i])
		buf = append(buf, `,"title":"`...)
		buf = fmt.Appendf(buf, "listing %d version %d", i, lVer[i])
		buf = append(buf, `"}}`...)
		emit()
		lAlive[i] = true
		st.Records++
	}
	delListing := func(i int, ts int64) {
		buf = append(buf[:0], `{"source":"search","table":"listings","op":"delete","ts":`...)
		buf = strconv.AppendInt(buf, ts, 10)
		buf = append(buf, `,"key":{"listing_id":"`...)
		buf = append(buf, listingID(i)...)
		buf = append(buf, `"}}`...)
		emit()
		lAlive[i] = false
		st.Records++
		st.Deletes++
	}
	sealed := T0 - 1 // watermarks written up to here
	sealTo := func(ts int64) {
		// Before writing a record at ts, close every whole second before it.
		for sealed+second < ts {
			sealed += second
			for _, src := range [...]string{"pricing", "search"} {
				buf = append(buf[:0], `{"source":"`...)
				buf = append(buf, src...)
				buf = append(buf, `","op":"watermark","ts":`...)
				buf = strconv.AppendInt(buf, sealed, 10)
				buf = append(buf, '}')
				emit()
				st.Watermarks++
			}
		}
	}

	// Initial load: at most 400,000 rows a second of timeline.
	st.Start = T0
	ts := T0
	for i := 0; i < wl.Products; i++ {
		sealTo(ts)
		putPrice(i, ts)
		ts += 2
	}
	for i := 0; i < wl.Listings; i++ {
		lProduct[i] = int32(rng.Intn(wl.Products))
		lCat[i] = int8(rng.Intn(categories))
		lActive[i] = rng.Float64() < 0.8
		sealTo(ts)
		putListing(i, ts)
		ts += 2
	}
	// Updates start on the next whole second.
	start := T0 + ((ts-T0)/second+1)*second
	st.UpdStart = start
	span := int64(wl.Seconds) * second
	stride := int64(1)
	if wl.Updates > 0 {
		stride = max(1, span/int64(wl.Updates))
	}
	for u := 0; u < wl.Updates; u++ {
		ts := start + int64(u)*stride + rng.Int63n(stride)
		sealTo(ts)
		if rng.Float64() < priceShare {
			i := rng.Intn(wl.Products)
			if pAlive[i] && rng.Float64() < deleteRate {
				delPrice(i, ts)
			} else {
				putPrice(i, ts)
			}
			continue
		}
		i := rng.Intn(wl.Listings)
		if lAlive[i] && rng.Float64() < deleteRate {
			delListing(i, ts)
			continue
		}
		switch r := rng.Float64(); {
		case r < 0.3:
			lActive[i] = !lActive[i]
		case r < 0.35:
			lCat[i] = int8(rng.Intn(categories))
		}
		putListing(i, ts)
	}
	end := start + span
	if ts+1 > end {
		end = ts + 1
	}
	sealTo(end + second) // seal the last second
	st.End = sealed
	return st, bw.Flush()
}
