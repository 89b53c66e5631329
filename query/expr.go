package query

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/timeline"
	"ttq/types"
)

// expr is a compiled scalar expression over a row of a scope.
type expr struct {
	typ   types.Type // types.Null only for a NULL literal
	eval  func(row []types.Value) types.Value
	konst bool // no column references: eval(nil) is its value
}

func constExpr(v types.Value) *expr {
	return &expr{typ: v.T, konst: true, eval: func([]types.Value) types.Value { return v }}
}

var (
	trueV  = types.Bool(true)
	falseV = types.Bool(false)
)

// compiler compiles sqlparser expressions against a scope. In aggregate
// mode (groups != nil) only grouped expressions and aggregates may be used.
type compiler struct {
	sc *scope
	// aggregate mode
	agg     *aggBuilder
	aliases map[string]sqlparser.Expr // select aliases usable in HAVING / ORDER BY
	where   string                    // clause name for messages
}

func (c *compiler) compile(e sqlparser.Expr) (*expr, error) {
	if c.agg != nil {
		if x, ok, err := c.agg.lookup(e, c); ok || err != nil {
			return x, err
		}
	}
	switch e := e.(type) {
	case *sqlparser.SQLVal:
		return literal(e)
	case *sqlparser.NullVal:
		return constExpr(types.NullValue), nil
	case sqlparser.BoolVal:
		return constExpr(types.Bool(bool(e))), nil
	case *sqlparser.ColName:
		return c.column(e)
	case *sqlparser.ParenExpr:
		return c.compile(e.Expr)
	case *sqlparser.AndExpr:
		return c.logic(e.Left, e.Right, true)
	case *sqlparser.OrExpr:
		return c.logic(e.Left, e.Right, false)
	case *sqlparser.NotExpr:
		x, err := c.boolean(e.Expr)
		if err != nil {
			return nil, err
		}
		return derive(types.Boolean, func(row []types.Value) types.Value {
			v := x.eval(row)
			if v.IsNull() {
				return v
			}
			return types.Bool(!truth(v))
		}, x), nil
	case *sqlparser.ComparisonExpr:
		return c.comparison(e)
	case *sqlparser.RangeCond:
		ge := &sqlparser.ComparisonExpr{Operator: ">=", Left: e.Left, Right: e.From}
		le := &sqlparser.ComparisonExpr{Operator: "<=", Left: e.Left, Right: e.To}
		x, err := c.logic(ge, le, true)
		if err != nil {
			return nil, err
		}
		if e.Operator == sqlparser.NotBetweenStr {
			return not(x), nil
		}
		return x, nil
	case *sqlparser.IsExpr:
		x, err := c.compile(e.Expr)
		if err != nil {
			return nil, err
		}
		var f func(v types.Value) bool
		switch e.Operator {
		case sqlparser.IsNullStr:
			f = func(v types.Value) bool { return v.IsNull() }
		case sqlparser.IsNotNullStr:
			f = func(v types.Value) bool { return !v.IsNull() }
		case sqlparser.IsTrueStr:
			f = func(v types.Value) bool { return !v.IsNull() && truth(v) }
		case sqlparser.IsNotTrueStr:
			f = func(v types.Value) bool { return v.IsNull() || !truth(v) }
		case sqlparser.IsFalseStr:
			f = func(v types.Value) bool { return !v.IsNull() && !truth(v) }
		case sqlparser.IsNotFalseStr:
			f = func(v types.Value) bool { return v.IsNull() || truth(v) }
		default:
			return nil, fmt.Errorf("%w: %s", ErrUnsupported, sqlparser.String(e))
		}
		return derive(types.Boolean, func(row []types.Value) types.Value { return types.Bool(f(x.eval(row))) }, x), nil
	case *sqlparser.BinaryExpr:
		return c.arith(e)
	case *sqlparser.UnaryExpr:
		x, err := c.compile(e.Expr)
		if err != nil {
			return nil, err
		}
		switch e.Operator {
		case sqlparser.UPlusStr:
			if !numeric(x.typ) {
				return nil, fmt.Errorf("%w: unary + on %s in %s", ErrType, x.typ, sqlparser.String(e))
			}
			return x, nil
		case sqlparser.UMinusStr:
			if !numeric(x.typ) {
				return nil, fmt.Errorf("%w: unary - on %s in %s", ErrType, x.typ, sqlparser.String(e))
			}
			return derive(x.typ, func(row []types.Value) types.Value {
				v := x.eval(row)
				switch v.T {
				case types.BigInt:
					return types.Int(-v.I)
				case types.Double:
					return types.Float(-v.F)
				}
				return v
			}, x), nil
		case sqlparser.BangStr:
			return not(x), nil
		}
		return nil, fmt.Errorf("%w: operator %s in %s", ErrUnsupported, strings.TrimSpace(e.Operator), sqlparser.String(e))
	case *sqlparser.FuncExpr:
		return c.function(e)
	case *sqlparser.CaseExpr:
		return c.caseExpr(e)
	case *sqlparser.Subquery, *sqlparser.ExistsExpr:
		return nil, fmt.Errorf("%w: subqueries (%s); use a JOIN", ErrUnsupported, sqlparser.String(e))
	}
	return nil, fmt.Errorf("%w: expression %s", ErrUnsupported, sqlparser.String(e))
}

// derive builds a non-leaf expression; it is constant when all its operands are.
func derive(t types.Type, f func([]types.Value) types.Value, args ...*expr) *expr {
	k := true
	for _, a := range args {
		k = k && a.konst
	}
	x := &expr{typ: t, eval: f, konst: k}
	if k { // fold constants once
		v := f(nil)
		x.eval = func([]types.Value) types.Value { return v }
	}
	return x
}

func literal(v *sqlparser.SQLVal) (*expr, error) {
	switch v.Type {
	case sqlparser.StrVal:
		return constExpr(types.String(string(v.Val))), nil
	case sqlparser.IntVal:
		n, err := strconv.ParseInt(string(v.Val), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(v.Val), 64)
			if ferr != nil {
				return nil, fmt.Errorf("%w: number %s out of range", ErrType, v.Val)
			}
			return constExpr(types.Float(f)), nil
		}
		return constExpr(types.Int(n)), nil
	case sqlparser.FloatVal:
		f, err := strconv.ParseFloat(string(v.Val), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: number %s", ErrType, v.Val)
		}
		return constExpr(types.Float(f)), nil
	}
	return nil, fmt.Errorf("%w: literal %s (use strings, integers and decimals)", ErrUnsupported, sqlparser.String(v))
}

func (c *compiler) column(e *sqlparser.ColName) (*expr, error) {
	i, err := c.sc.resolve(e.Qualifier.Name.String(), e.Name.String())
	if err != nil {
		if c.aliases != nil && e.Qualifier.IsEmpty() {
			if a, ok := c.aliases[e.Name.Lowered()]; ok {
				return c.compile(a)
			}
		}
		if c.where != "" {
			return nil, fmt.Errorf("%w (in %s)", err, c.where)
		}
		return nil, err
	}
	return &expr{typ: c.sc.cols[i].typ, eval: func(row []types.Value) types.Value { return row[i] }}, nil
}

func truth(v types.Value) bool {
	switch v.T {
	case types.Double:
		return v.F != 0
	case types.Varchar:
		f, _ := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
		return f != 0
	}
	return v.I != 0
}

func not(x *expr) *expr {
	return derive(types.Boolean, func(row []types.Value) types.Value {
		v := x.eval(row)
		if v.IsNull() {
			return v
		}
		return types.Bool(!truth(v))
	}, x)
}

func (c *compiler) boolean(e sqlparser.Expr) (*expr, error) {
	x, err := c.compile(e)
	if err != nil {
		return nil, err
	}
	if x.typ == types.Varchar || x.typ == types.Timestamp {
		return nil, fmt.Errorf("%w: %s is %s, not a condition", ErrType, sqlparser.String(e), x.typ)
	}
	return x, nil
}

// logic is AND (and=true) or OR with SQL's three-valued logic.
func (c *compiler) logic(l, r sqlparser.Expr, and bool) (*expr, error) {
	a, err := c.boolean(l)
	if err != nil {
		return nil, err
	}
	b, err := c.boolean(r)
	if err != nil {
		return nil, err
	}
	return derive(types.Boolean, func(row []types.Value) types.Value {
		x := a.eval(row)
		if !x.IsNull() && truth(x) != and {
			return types.Bool(!and) // false AND _, true OR _
		}
		y := b.eval(row)
		if !y.IsNull() && truth(y) != and {
			return types.Bool(!and)
		}
		if x.IsNull() || y.IsNull() {
			return types.NullValue
		}
		return types.Bool(and)
	}, a, b), nil
}

func numeric(t types.Type) bool {
	return t == types.BigInt || t == types.Double || t == types.Boolean || t == types.Null
}

// coerce makes a constant operand comparable with the other side: a string
// compared with a TIMESTAMP is a time literal, with a number a number.
func coerce(x *expr, other types.Type, node sqlparser.SQLNode) (*expr, error) {
	text := func() string {
		if node == nil {
			return ""
		}
		return sqlparser.String(node)
	}
	if !x.konst || x.typ != types.Varchar || other == types.Varchar || other == types.Null {
		return x, nil
	}
	v := x.eval(nil)
	switch other {
	case types.Timestamp:
		ts, err := timeline.ParseAbsolute(v.S)
		if err != nil {
			return nil, fmt.Errorf("%w: %s compared with a TIMESTAMP: %w", ErrType, text(), err)
		}
		return constExpr(types.Time(ts)), nil
	case types.BigInt, types.Double, types.Boolean:
		if n, err := strconv.ParseInt(strings.TrimSpace(v.S), 10, 64); err == nil {
			return constExpr(types.Int(n)), nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s compared with a %s is not a number", ErrType, text(), other)
		}
		return constExpr(types.Float(f)), nil
	}
	return x, nil
}

// comparable reports whether values of a and b can be compared.
func comparable(a, b types.Type) bool {
	if a == types.Null || b == types.Null || a == b {
		return true
	}
	if numeric(a) && numeric(b) {
		return true
	}
	// Timestamps compare with integers of microseconds.
	return (a == types.Timestamp && b == types.BigInt) || (a == types.BigInt && b == types.Timestamp)
}

// compareValues orders two non-NULL values of comparable types.
func compareValues(a, b types.Value) int {
	if a.T == b.T || (a.T != types.Double && b.T != types.Double && a.T != types.Varchar && b.T != types.Varchar) {
		if a.T == types.Varchar || a.T == types.Double {
			return types.Compare(a, b)
		}
		switch {
		case a.I < b.I:
			return -1
		case a.I > b.I:
			return 1
		}
		return 0
	}
	if a.T != types.Varchar && b.T != types.Varchar {
		af, bf := a.AsFloat(), b.AsFloat()
		switch {
		case af < bf:
			return -1
		case af > bf:
			return 1
		}
		return 0
	}
	return types.Compare(a, b)
}

func (c *compiler) operands(l, r sqlparser.Expr, whole sqlparser.Expr) (*expr, *expr, error) {
	a, err := c.compile(l)
	if err != nil {
		return nil, nil, err
	}
	b, err := c.compile(r)
	if err != nil {
		return nil, nil, err
	}
	if a, err = coerce(a, b.typ, l); err != nil {
		return nil, nil, err
	}
	if b, err = coerce(b, a.typ, r); err != nil {
		return nil, nil, err
	}
	if !comparable(a.typ, b.typ) {
		return nil, nil, fmt.Errorf("%w: cannot compare %s with %s in %s", ErrType, a.typ, b.typ, sqlparser.String(whole))
	}
	return a, b, nil
}

func (c *compiler) comparison(e *sqlparser.ComparisonExpr) (*expr, error) {
	switch e.Operator {
	case sqlparser.InStr, sqlparser.NotInStr:
		return c.in(e)
	case sqlparser.LikeStr, sqlparser.NotLikeStr:
		return c.like(e)
	case sqlparser.RegexpStr, sqlparser.NotRegexpStr:
		return c.regexp(e)
	}
	a, b, err := c.operands(e.Left, e.Right, e)
	if err != nil {
		return nil, err
	}
	var test func(int) bool
	switch e.Operator {
	case "=":
		test = func(n int) bool { return n == 0 }
	case "<":
		test = func(n int) bool { return n < 0 }
	case ">":
		test = func(n int) bool { return n > 0 }
	case "<=":
		test = func(n int) bool { return n <= 0 }
	case ">=":
		test = func(n int) bool { return n >= 0 }
	case "!=", "<>":
		test = func(n int) bool { return n != 0 }
	case sqlparser.NullSafeEqualStr:
		return derive(types.Boolean, func(row []types.Value) types.Value {
			x, y := a.eval(row), b.eval(row)
			if x.IsNull() || y.IsNull() {
				return types.Bool(x.IsNull() && y.IsNull())
			}
			return types.Bool(compareValues(x, y) == 0)
		}, a, b), nil
	default:
		return nil, fmt.Errorf("%w: operator %s", ErrUnsupported, e.Operator)
	}
	return derive(types.Boolean, func(row []types.Value) types.Value {
		x := a.eval(row)
		if x.IsNull() {
			return x
		}
		y := b.eval(row)
		if y.IsNull() {
			return y
		}
		return types.Bool(test(compareValues(x, y)))
	}, a, b), nil
}

func (c *compiler) in(e *sqlparser.ComparisonExpr) (*expr, error) {
	tuple, ok := e.Right.(sqlparser.ValTuple)
	if !ok {
		return nil, fmt.Errorf("%w: IN with a subquery (%s); list the values", ErrUnsupported, sqlparser.String(e))
	}
	a, err := c.compile(e.Left)
	if err != nil {
		return nil, err
	}
	list := make([]*expr, len(tuple))
	args := []*expr{a}
	for i, t := range tuple {
		b, err := c.compile(t)
		if err != nil {
			return nil, err
		}
		if b, err = coerce(b, a.typ, t); err != nil {
			return nil, err
		}
		if !comparable(a.typ, b.typ) {
			return nil, fmt.Errorf("%w: cannot compare %s with %s in %s", ErrType, a.typ, b.typ, sqlparser.String(e))
		}
		list[i] = b
		args = append(args, b)
	}
	neg := e.Operator == sqlparser.NotInStr
	return derive(types.Boolean, func(row []types.Value) types.Value {
		x := a.eval(row)
		if x.IsNull() {
			return x
		}
		sawNull := false
		for _, b := range list {
			y := b.eval(row)
			if y.IsNull() {
				sawNull = true
				continue
			}
			if compareValues(x, y) == 0 {
				return types.Bool(!neg)
			}
		}
		if sawNull {
			return types.NullValue
		}
		return types.Bool(neg)
	}, args...), nil
}

// like compiles LIKE / NOT LIKE: % matches any run, _ one character, and the
// escape character (default \) makes the next one literal. Matching is
// case-sensitive (byte-wise on UTF-8 runes).
func (c *compiler) like(e *sqlparser.ComparisonExpr) (*expr, error) {
	a, err := c.compile(e.Left)
	if err != nil {
		return nil, err
	}
	p, err := c.compile(e.Right)
	if err != nil {
		return nil, err
	}
	if (a.typ != types.Varchar && a.typ != types.Null) || (p.typ != types.Varchar && p.typ != types.Null) {
		return nil, fmt.Errorf("%w: LIKE needs strings in %s", ErrType, sqlparser.String(e))
	}
	esc := '\\'
	if e.Escape != nil {
		x, err := c.compile(e.Escape)
		if err != nil {
			return nil, err
		}
		v := x.eval(nil)
		if !x.konst || v.T != types.Varchar || len([]rune(v.S)) != 1 {
			return nil, fmt.Errorf("%w: ESCAPE takes one character in %s", ErrSyntax, sqlparser.String(e))
		}
		esc = []rune(v.S)[0]
	}
	neg := e.Operator == sqlparser.NotLikeStr
	return derive(types.Boolean, func(row []types.Value) types.Value {
		x, y := a.eval(row), p.eval(row)
		if x.IsNull() || y.IsNull() {
			return types.NullValue
		}
		return types.Bool(likeMatch([]rune(x.S), []rune(y.S), esc) != neg)
	}, a, p), nil
}

func likeMatch(s, p []rune, esc rune) bool {
	for len(p) > 0 {
		switch {
		case p[0] == '%':
			for len(p) > 0 && p[0] == '%' {
				p = p[1:]
			}
			if len(p) == 0 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if likeMatch(s[i:], p, esc) {
					return true
				}
			}
			return false
		case p[0] == '_':
			if len(s) == 0 {
				return false
			}
			s, p = s[1:], p[1:]
		default:
			ch := p[0]
			if ch == esc && len(p) > 1 {
				p = p[1:]
				ch = p[0]
			}
			if len(s) == 0 || s[0] != ch {
				return false
			}
			s, p = s[1:], p[1:]
		}
	}
	return len(s) == 0
}

func (c *compiler) regexp(e *sqlparser.ComparisonExpr) (*expr, error) {
	a, err := c.compile(e.Left)
	if err != nil {
		return nil, err
	}
	p, err := c.compile(e.Right)
	if err != nil {
		return nil, err
	}
	pv := p.eval(nil)
	if !p.konst || pv.T != types.Varchar || a.typ != types.Varchar {
		return nil, fmt.Errorf("%w: REGEXP needs a string and a constant pattern in %s", ErrUnsupported, sqlparser.String(e))
	}
	re, err := regexp.Compile(pv.S)
	if err != nil {
		return nil, fmt.Errorf("%w: bad REGEXP pattern in %s: %v", ErrSyntax, sqlparser.String(e), err)
	}
	neg := e.Operator == sqlparser.NotRegexpStr
	return derive(types.Boolean, func(row []types.Value) types.Value {
		x := a.eval(row)
		if x.IsNull() {
			return x
		}
		return types.Bool(re.MatchString(x.S) != neg)
	}, a), nil
}

func (c *compiler) arith(e *sqlparser.BinaryExpr) (*expr, error) {
	a, err := c.compile(e.Left)
	if err != nil {
		return nil, err
	}
	b, err := c.compile(e.Right)
	if err != nil {
		return nil, err
	}
	op := e.Operator
	// Timestamp arithmetic in microseconds.
	if (a.typ == types.Timestamp || b.typ == types.Timestamp) && (op == "+" || op == "-") {
		var t types.Type
		switch {
		case a.typ == types.Timestamp && b.typ == types.Timestamp && op == "-":
			t = types.BigInt
		case a.typ == types.Timestamp && (b.typ == types.BigInt || b.typ == types.Null):
			t = types.Timestamp
		case b.typ == types.Timestamp && (a.typ == types.BigInt || a.typ == types.Null) && op == "+":
			t = types.Timestamp
		default:
			return nil, fmt.Errorf("%w: %s %s %s in %s (add or subtract microseconds)", ErrType, a.typ, op, b.typ, sqlparser.String(e))
		}
		return derive(t, func(row []types.Value) types.Value {
			x, y := a.eval(row), b.eval(row)
			if x.IsNull() || y.IsNull() {
				return types.NullValue
			}
			n := x.I + y.I
			if op == "-" {
				n = x.I - y.I
			}
			return types.Value{T: t, I: n}
		}, a, b), nil
	}
	if !numeric(a.typ) || !numeric(b.typ) {
		return nil, fmt.Errorf("%w: %s %s %s in %s (arithmetic needs numbers)", ErrType, a.typ, op, b.typ, sqlparser.String(e))
	}
	integer := a.typ != types.Double && b.typ != types.Double
	t := types.Double
	switch op {
	case "+", "-", "*", "%":
		if integer {
			t = types.BigInt
		}
	case "/":
	case sqlparser.IntDivStr:
		t = types.BigInt
	default:
		return nil, fmt.Errorf("%w: operator %s in %s", ErrUnsupported, op, sqlparser.String(e))
	}
	return derive(t, func(row []types.Value) types.Value {
		x, y := a.eval(row), b.eval(row)
		if x.IsNull() || y.IsNull() {
			return types.NullValue
		}
		if t == types.BigInt && x.T != types.Double && y.T != types.Double {
			switch op {
			case "+":
				return types.Int(x.I + y.I)
			case "-":
				return types.Int(x.I - y.I)
			case "*":
				return types.Int(x.I * y.I)
			case "%":
				if y.I == 0 {
					return types.NullValue
				}
				if y.I == -1 {
					return types.Int(0)
				}
				return types.Int(x.I % y.I)
			default: // div
				if y.I == 0 {
					return types.NullValue
				}
				if y.I == -1 {
					return types.Int(-x.I)
				}
				return types.Int(x.I / y.I)
			}
		}
		xf, yf := x.AsFloat(), y.AsFloat()
		switch op {
		case "+":
			return types.Float(xf + yf)
		case "-":
			return types.Float(xf - yf)
		case "*":
			return types.Float(xf * yf)
		case "%":
			if yf == 0 {
				return types.NullValue
			}
			return types.Float(math.Mod(xf, yf))
		case "/":
			if yf == 0 {
				return types.NullValue
			}
			return types.Float(xf / yf)
		default:
			if yf == 0 {
				return types.NullValue
			}
			q := math.Trunc(xf / yf)
			if math.IsNaN(q) || q > math.MaxInt64 || q < math.MinInt64 {
				return types.NullValue
			}
			return types.Int(int64(q))
		}
	}, a, b), nil
}

func (c *compiler) caseExpr(e *sqlparser.CaseExpr) (*expr, error) {
	var subject *expr
	var err error
	if e.Expr != nil {
		if subject, err = c.compile(e.Expr); err != nil {
			return nil, err
		}
	}
	conds := make([]*expr, len(e.Whens))
	vals := make([]*expr, len(e.Whens)+1)
	args := []*expr{}
	if subject != nil {
		args = append(args, subject)
	}
	for i, w := range e.Whens {
		var cond sqlparser.Expr = w.Cond
		if subject != nil {
			cond = &sqlparser.ComparisonExpr{Operator: "=", Left: e.Expr, Right: w.Cond}
		}
		if conds[i], err = c.compile(cond); err != nil {
			return nil, err
		}
		if vals[i], err = c.compile(w.Val); err != nil {
			return nil, err
		}
		args = append(args, conds[i], vals[i])
	}
	if e.Else != nil {
		if vals[len(e.Whens)], err = c.compile(e.Else); err != nil {
			return nil, err
		}
	} else {
		vals[len(e.Whens)] = constExpr(types.NullValue)
	}
	args = append(args, vals[len(e.Whens)])
	t, err := commonType(vals, sqlparser.String(e))
	if err != nil {
		return nil, err
	}
	return derive(t, func(row []types.Value) types.Value {
		for i, cd := range conds {
			if v := cd.eval(row); !v.IsNull() && truth(v) {
				return castTo(vals[i].eval(row), t)
			}
		}
		return castTo(vals[len(conds)].eval(row), t)
	}, args...), nil
}

// commonType is the type of CASE/COALESCE branches: all the same, or
// numbers widened to DOUBLE.
func commonType(xs []*expr, text string) (types.Type, error) {
	t := types.Null
	for _, x := range xs {
		switch {
		case x.typ == types.Null || x.typ == t:
		case t == types.Null:
			t = x.typ
		case (t == types.BigInt || t == types.Double) && (x.typ == types.BigInt || x.typ == types.Double):
			t = types.Double
		default:
			return 0, fmt.Errorf("%w: branches of %s mix %s and %s", ErrType, text, t, x.typ)
		}
	}
	return t, nil
}

func castTo(v types.Value, t types.Type) types.Value {
	if t == types.Double && v.T == types.BigInt {
		return types.Float(float64(v.I))
	}
	return v
}

var aggregateNames = map[string]bool{"count": true, "sum": true, "avg": true, "min": true, "max": true}

func (c *compiler) function(e *sqlparser.FuncExpr) (*expr, error) {
	name := e.Name.Lowered()
	if aggregateNames[name] {
		where := c.where
		if where == "" {
			where = "this clause"
		}
		return nil, fmt.Errorf("%w: aggregate %s is not allowed in %s", ErrUnsupported, sqlparser.String(e), where)
	}
	if e.Distinct || !e.Qualifier.IsEmpty() {
		return nil, fmt.Errorf("%w: function %s", ErrUnsupported, sqlparser.String(e))
	}
	args := make([]*expr, len(e.Exprs))
	for i, se := range e.Exprs {
		ae, ok := se.(*sqlparser.AliasedExpr)
		if !ok {
			return nil, fmt.Errorf("%w: %s takes no *", ErrSyntax, name)
		}
		x, err := c.compile(ae.Expr)
		if err != nil {
			return nil, err
		}
		args[i] = x
	}
	text := sqlparser.String(e)
	nargs := func(lo, hi int) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("%w: %s takes %d to %d arguments in %s", ErrSyntax, strings.ToUpper(name), lo, hi, text)
		}
		return nil
	}
	switch name {
	case "coalesce", "ifnull":
		if err := nargs(1, 1<<20); err != nil {
			return nil, err
		}
		if name == "ifnull" {
			if err := nargs(2, 2); err != nil {
				return nil, err
			}
		}
		t, err := commonType(args, text)
		if err != nil {
			return nil, err
		}
		return derive(t, func(row []types.Value) types.Value {
			for _, a := range args {
				if v := a.eval(row); !v.IsNull() {
					return castTo(v, t)
				}
			}
			return types.NullValue
		}, args...), nil
	case "nullif":
		if err := nargs(2, 2); err != nil {
			return nil, err
		}
		if !comparable(args[0].typ, args[1].typ) {
			return nil, fmt.Errorf("%w: cannot compare %s with %s in %s", ErrType, args[0].typ, args[1].typ, text)
		}
		return derive(args[0].typ, func(row []types.Value) types.Value {
			x, y := args[0].eval(row), args[1].eval(row)
			if !x.IsNull() && !y.IsNull() && compareValues(x, y) == 0 {
				return types.NullValue
			}
			return x
		}, args...), nil
	case "if":
		if err := nargs(3, 3); err != nil {
			return nil, err
		}
		t, err := commonType(args[1:], text)
		if err != nil {
			return nil, err
		}
		return derive(t, func(row []types.Value) types.Value {
			if v := args[0].eval(row); !v.IsNull() && truth(v) {
				return castTo(args[1].eval(row), t)
			}
			return castTo(args[2].eval(row), t)
		}, args...), nil
	case "upper", "lower", "length", "char_length", "trim":
		if err := nargs(1, 1); err != nil {
			return nil, err
		}
		if args[0].typ != types.Varchar && args[0].typ != types.Null {
			return nil, fmt.Errorf("%w: %s needs a string in %s", ErrType, strings.ToUpper(name), text)
		}
		t := types.Varchar
		if name == "length" || name == "char_length" {
			t = types.BigInt
		}
		return derive(t, func(row []types.Value) types.Value {
			v := args[0].eval(row)
			if v.IsNull() {
				return v
			}
			switch name {
			case "upper":
				return types.String(strings.ToUpper(v.S))
			case "lower":
				return types.String(strings.ToLower(v.S))
			case "trim":
				return types.String(strings.TrimSpace(v.S))
			case "length":
				return types.Int(int64(len(v.S)))
			}
			return types.Int(int64(len([]rune(v.S))))
		}, args...), nil
	case "concat":
		if err := nargs(1, 1<<20); err != nil {
			return nil, err
		}
		return derive(types.Varchar, func(row []types.Value) types.Value {
			var b strings.Builder
			for _, a := range args {
				v := a.eval(row)
				if v.IsNull() {
					return v
				}
				b.WriteString(v.Text())
			}
			return types.String(b.String())
		}, args...), nil
	case "abs", "floor", "ceil", "ceiling", "round":
		hi := 1
		if name == "round" {
			hi = 2
		}
		if err := nargs(1, hi); err != nil {
			return nil, err
		}
		for _, a := range args {
			if !numeric(a.typ) {
				return nil, fmt.Errorf("%w: %s needs a number in %s", ErrType, strings.ToUpper(name), text)
			}
		}
		t := args[0].typ
		if t != types.Double {
			t = types.BigInt
		}
		return derive(t, func(row []types.Value) types.Value {
			v := args[0].eval(row)
			if v.IsNull() {
				return v
			}
			digits := int64(0)
			if len(args) == 2 {
				d := args[1].eval(row)
				if d.IsNull() {
					return d
				}
				digits = int64(d.AsFloat())
			}
			if v.T != types.Double {
				n := v.I
				switch name {
				case "abs":
					if n < 0 {
						n = -n
					}
				case "round":
					if digits < 0 && digits > -19 {
						p := int64(math.Pow10(int(-digits)))
						n = int64(math.Round(float64(n)/float64(p))) * p
					}
				}
				return types.Int(n)
			}
			f := v.F
			switch name {
			case "abs":
				f = math.Abs(f)
			case "floor":
				f = math.Floor(f)
			case "ceil", "ceiling":
				f = math.Ceil(f)
			case "round":
				p := math.Pow10(int(max(min(digits, 300), -300)))
				f = math.Round(f*p) / p
			}
			return types.Float(f)
		}, args...), nil
	}
	return nil, fmt.Errorf("%w: function %s (ttq has COALESCE, IFNULL, NULLIF, IF, UPPER, LOWER, LENGTH, CONCAT, TRIM, ABS, ROUND, FLOOR, CEIL and the aggregates)", ErrUnsupported, strings.ToUpper(name))
}
