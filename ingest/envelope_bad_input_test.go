package ingest

import (
	"testing"

	"ttq/catalog"
	"ttq/types"
)

// TestDecodeEscapesAtTheEnd: inputs that end inside a string escape, and
// escaped strings that fill their buffer exactly, decode (or are rejected)
// without the decoder reading past its input. Run with -race: checkptr
// then turns such a read into a fatal error.
func TestDecodeEscapesAtTheEnd(t *testing.T) {
	cat := catalog.New()
	if err := cat.AddSource(&catalog.Source{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	if err := cat.AddTable(&catalog.Table{Name: "t", Source: "s", Columns: []catalog.Column{{Name: "k", Type: types.Varchar}}, PK: []int{0}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, reason, key string }{
		{`{"\29\`, ReasonInvalidJSON, ""},
		{`{"source":"\`, ReasonInvalidJSON, ""},
		{`{"source":"a\u00`, ReasonInvalidJSON, ""},
		{`{"source":"s","table":"t","op":"upsert","ts":1,"data":{"k":"\ud800"}}`, "", "\ufffd"},
		{`{"source":"s","table":"t","op":"upsert","ts":1,"data":{"k":"a\u0000b"}}`, "", "a\x00b"},
		{`{"source":"s","table":"t","op":"upsert","ts":1,"data":{"k":"\"q\"\\\n"}}`, "", "\"q\"\\\n"},
		{`{"source":"\u0073","table":"t","op":"upsert","ts":1,"data":{"\u006b":"plain"}}`, "", "plain"},
	} {
		line := append(make([]byte, 0, len(c.in)), c.in...) // no spare capacity
		u, re := Decode(line, cat)
		switch {
		case c.reason != "":
			if re == nil || re.Reason != c.reason {
				t.Errorf("%q: %+v, want %s", c.in, re, c.reason)
			}
		case re != nil:
			t.Errorf("%q: rejected %s: %s", c.in, re.Reason, re.Message)
		case u.Row[0].S != c.key:
			t.Errorf("%q: key %q, want %q", c.in, u.Row[0].S, c.key)
		}
	}
}
