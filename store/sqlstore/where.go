package sqlstore

import (
	"fmt"
	"strings"
)

// where builds the WHERE clause of a list query, numbering placeholders
// ($1, $2, ...) as both databases read them.
type where struct {
	conds []string
	args  []any
}

// arg adds a value and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return fmt.Sprintf("$%d", len(w.args))
}

// add adds a condition; each "?" in cond takes the next of vals.
func (w *where) add(cond string, vals ...any) {
	for _, v := range vals {
		cond = strings.Replace(cond, "?", w.arg(v), 1)
	}
	w.conds = append(w.conds, cond)
}

// in adds "col IN (...)" for ids.
func (w *where) in(col string, ids []string) {
	marks := make([]string, len(ids))
	for i, id := range ids {
		marks[i] = w.arg(id)
	}
	w.conds = append(w.conds, col+" IN ("+strings.Join(marks, ", ")+")")
}

// String is " WHERE a AND b", or "" with no conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// limit is n, or def when n is not positive.
func limit(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}
