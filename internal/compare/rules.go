package compare

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Rules normalize effects' fields before they are compared, and name the
// kinds of effect the new pipeline may add. Build them once
// per migration with Compile (which refuses invalid paths) or NewRules
// (which never fails); a *Rules is immutable and safe for concurrent use.
// A nil *Rules compares fields as they are (numbers by value, times as
// instants, every slice in order).
//
// Path syntax, for both lists: dot-separated field names, optionally scoped
// to one event type with a "type:" prefix.
//
//	fields.updatedAt          the effect's fields.updatedAt, on every event type
//	updatedAt                 the same: a path not starting with "fields" is relative to fields
//	ticket:fields.updatedAt   only on events whose entity type is ticket
//	fields.lines.price        price in every element of the lines list: paths go through lists
//	fields                    every field (as an ignore rule: only kind, key and op are compared)
//
// A name with dots matches nested objects and flattened keys alike:
// fields.board.name matches {"board": {"name": …}} and {"board.name": …}.
// A path only names fields: kind, key and op, the effect's identity, are
// never normalized, which is why rules can hide a value_diff and nothing
// else.
type Rules struct {
	// Ignore and Sets are the rules as given; do not change them once the
	// Rules are in use.
	Ignore []string
	Sets   []string
	// AllowExtraKinds are the effect kinds the new pipeline may add (see
	// Compare), as domain.Migration.Validate accepted them.
	AllowExtraKinds []string

	c atomic.Pointer[compiled]
}

// compiled is Rules turned into path tries: one for the rules that apply to
// every event type and one per scoped type, already merged with the former.
type compiled struct {
	all    *node
	byType map[string]*node
}

// node is one step of a path trie.
type node struct {
	kids   map[string]*node
	ignore bool // drop the value here
	set    bool // the list here is compared as a set
}

// Compile compiles r. It returns an *domain.Error with code
// domain.CodeInvalid naming the first invalid path: an empty path or
// name, an empty scope, or a path longer than 200 characters (the same
// paths domain.Migration.Validate refuses).
func Compile(r domain.CompareRules) (*Rules, error) {
	for _, p := range slices.Concat(r.Ignore, r.Sets) {
		if _, _, _, ok := parsePath(p); !ok {
			return nil, domain.Errorf(domain.CodeInvalid, "compare: path %q is invalid: use dot-separated field names such as fields.updatedAt, optionally scoped as ticket:fields.updatedAt", p)
		}
	}
	return NewRules(r), nil
}

// NewRules compiles r without failing, for rules that
// domain.Migration.Validate already accepted. A path it would have refused
// is not dropped but applied as written: empty names match fields whose
// name is empty, and an empty scope matches events whose type is empty.
func NewRules(r domain.CompareRules) *Rules {
	rs := &Rules{Ignore: slices.Clone(r.Ignore), Sets: slices.Clone(r.Sets), AllowExtraKinds: slices.Clone(r.AllowExtraKinds)}
	rs.c.Store(rs.compile())
	return rs
}

// trie returns the path trie for events of eventType, or nil when no rule
// applies to them. Rules built as a literal rather than with NewRules are
// compiled on first use.
func (r *Rules) trie(eventType string) *node {
	if r == nil {
		return nil
	}
	c := r.c.Load()
	if c == nil {
		c = r.compile()
		r.c.CompareAndSwap(nil, c)
	}
	if n, ok := c.byType[eventType]; ok {
		return n
	}
	return c.all
}

func (r *Rules) compile() *compiled {
	type rule struct {
		scope  string
		scoped bool
		segs   []string
		set    bool
	}
	var rules []rule
	for i, p := range slices.Concat(r.Ignore, r.Sets) {
		scope, scoped, segs, _ := parsePath(p)
		rules = append(rules, rule{scope: scope, scoped: scoped, segs: segs, set: i >= len(r.Ignore)})
	}
	c := &compiled{}
	for _, ru := range rules {
		if !ru.scoped {
			c.all = c.all.add(ru.segs, ru.set)
		}
	}
	for _, ru := range rules {
		if !ru.scoped {
			continue
		}
		if c.byType == nil {
			c.byType = map[string]*node{}
		}
		n, ok := c.byType[ru.scope]
		if !ok {
			n = c.all.clone()
		}
		c.byType[ru.scope] = n.add(ru.segs, ru.set)
	}
	return c
}

// parsePath splits p into its scope (scoped tells an empty scope from
// none) and its path relative to fields; ok
// reports whether domain.Migration.Validate would accept it. A scope is
// the text before the first colon when that text holds no dot, so a field
// name may contain a colon when it is written after a dot
// (fields.ns:name).
func parsePath(p string) (scope string, scoped bool, segs []string, ok bool) {
	ok = p != "" && len(p) <= 200
	rest := p
	if i := strings.IndexByte(p, ':'); i >= 0 && !strings.Contains(p[:i], ".") {
		scope, scoped, rest = p[:i], true, p[i+1:]
		ok = ok && scope != ""
	}
	segs = strings.Split(rest, ".")
	for _, s := range segs {
		ok = ok && s != ""
	}
	if segs[0] == "fields" {
		segs = segs[1:]
	}
	return scope, scoped, segs, ok
}

// add returns n (allocated when nil) with the path segs marked.
func (n *node) add(segs []string, set bool) *node {
	if n == nil {
		n = &node{}
	}
	at := n
	for _, s := range segs {
		kid := at.kids[s]
		if kid == nil {
			if at.kids == nil {
				at.kids = map[string]*node{}
			}
			kid = &node{}
			at.kids[s] = kid
		}
		at = kid
	}
	if set {
		at.set = true
	} else {
		at.ignore = true
	}
	return n
}

func (n *node) clone() *node {
	if n == nil {
		return nil
	}
	c := &node{ignore: n.ignore, set: n.set}
	if n.kids != nil {
		c.kids = make(map[string]*node, len(n.kids))
		for k, v := range n.kids {
			c.kids[k] = v.clone()
		}
	}
	return c
}

// child returns the node for the field name under n, or nil. A name with
// dots ("board.name", as flattened by some pipelines) walks one step per
// name.
func (n *node) child(name string) *node {
	if n == nil || n.kids == nil {
		return nil
	}
	if kid, ok := n.kids[name]; ok || strings.IndexByte(name, '.') < 0 {
		return kid
	}
	at := n
	for s := range strings.SplitSeq(name, ".") {
		if at = at.kids[s]; at == nil || at.ignore {
			return at // an ignored object hides its flattened members too
		}
	}
	return at
}
