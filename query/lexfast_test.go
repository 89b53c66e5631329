package query

import (
	"slices"
	"testing"
)

// lexSeeds are statements of the plain subset and ones just outside it.
var lexSeeds = []string{
	"SELECT price, _ts FROM prices AS OF 1764064800000000 WHERE product_id = 'p-000042'",
	"select l.listing_id, l.title, p.price from listings l join prices p on l.product_id = p.product_id as of '2026-11-25T10:00:00Z' where l.listing_id = \"l-1\"",
	"SELECT * FROM Prices FOR SYSTEM_TIME BETWEEN 1 AND 2 WHERE a<>b AND c<=d OR e>=f AND g<=>h AND i!=j AND k<<1>>2 || x && y",
	"SELECT DUAL, Dual, dual, `dual` FROM t",
	"SELECT a FROM t WHERE b = 'it''s'",
	"SELECT a FROM t WHERE b = 'back\\\\slash'",
	"SELECT 1.5, .5, 1e3, 0x1F, x'AB', b'01', 12abc FROM t",
	"SELECT @@version, @x, a@b FROM t -- comment",
	"SELECT /* c */ 1 # more",
	"SELECT /*! 1 */",
	"SELECT :a, ?, a->b, a->>'$.x' FROM t",
	"SELECT 'unterminated",
	"SELECT é FROM t",
	"SELECT\tA\n,\rb FROM t;;",
	"SELECT -1, a-b, a/b, a%b, ~a, !a, a^b, a|b, a&b FROM t",
	"",
	"   ",
}

func TestLexFastMatchesTokenizer(t *testing.T) {
	accepted := 0
	for _, s := range lexSeeds {
		if checkLexFast(t, s) {
			accepted++
		}
	}
	if accepted < 5 {
		t.Fatalf("lexFast accepted %d of the seeds; the plain statements should take it", accepted)
	}
	for _, s := range lexSeeds[:3] {
		if _, ok := lexFast(s); !ok {
			t.Errorf("lexFast refused the plain statement %q", s)
		}
	}
}

func FuzzLexFast(f *testing.F) {
	for _, s := range lexSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkLexFast(t, s) })
}

// checkLexFast reports whether lexFast accepts s, failing t if its tokens
// differ from sqlparser's.
func checkLexFast(t *testing.T, s string) bool {
	t.Helper()
	fast, ok := lexFast(s)
	if !ok {
		return false
	}
	slow, err := tokenizeSQL(s)
	if err != nil {
		t.Fatalf("%q: lexFast accepted what sqlparser rejects: %v", s, err)
	}
	if !slices.Equal(fast, slow) {
		t.Fatalf("%q:\nlexFast %+v\nsqlparser %+v", s, fast, slow)
	}
	return true
}
