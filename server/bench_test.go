package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"ttq/engine"
	"ttq/query"
)

// BenchmarkPointQueryHTTP: a primary-key AS OF query over real loopback HTTP,
// with parallel clients; the server-side cost per request.
func BenchmarkPointQueryHTTP(b *testing.B) {
	e, err := engine.Open(b.TempDir(), engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if err := e.ExecScript(ctx, `CREATE SOURCE s; CREATE TABLE p (id VARCHAR PRIMARY KEY, price DOUBLE) SOURCE s;`, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		b.Fatal(err)
	}
	const keys, base = 10000, int64(1_800_000_000_000_000)
	var in strings.Builder
	for i := 0; i < keys*5; i++ {
		fmt.Fprintf(&in, `{"source":"s","table":"p","op":"upsert","ts":%d,"data":{"id":"P%d","price":%d}}`+"\n", base+int64(i), i%keys, i)
	}
	fmt.Fprintf(&in, `{"source":"s","op":"watermark","ts":%d}`+"\n", base+keys*5)
	if _, err := e.Load(ctx, strings.NewReader(in.String()), "bench"); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(New(e, Config{MaxConcurrentQueries: 64}).Handler())
	defer srv.Close()
	for _, accept := range []string{"text/csv", "application/json"} {
		b.Run(accept, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewSource(rand.Int63()))
				for pb.Next() {
					q := fmt.Sprintf(`{"sql":"SELECT price FROM p AS OF %d WHERE id = 'P%d'"}`, base+r.Int63n(keys*5), r.Intn(keys))
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/sql", bytes.NewBufferString(q))
					req.Header.Set("Accept", accept)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}
