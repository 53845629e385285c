package storetest

import (
	"testing"

	"github.com/porthole/porthole/store"
)

// RunSameDatabase checks what happens when several stores open one
// database, as several server nodes (or a restart) do: stores opening a
// new database at once take turns to migrate it, each sees what the
// others write, and opening it again later migrates nothing and loses
// nothing. open must open the same, initially empty, database each time.
func RunSameDatabase(t *testing.T, open func() (store.Store, error)) {
	ctx := t.Context()
	type opened struct {
		s   store.Store
		err error
	}
	nodes := race(4, func(int) opened {
		s, err := open()
		return opened{s, err}
	})
	for _, n := range nodes {
		if n.err == nil {
			t.Cleanup(func() { n.s.Close() })
		}
	}
	for _, n := range nodes {
		ok(t, "open at once", n.err)
	}
	f := mkFleet(t, nodes[0].s, "alpha")
	for _, n := range nodes[1:] {
		got, err := n.s.GetFleetByName(ctx, "alpha")
		ok(t, "GetFleetByName through another store", err)
		equal(t, "fleet", got, f)
	}
	for _, n := range nodes {
		ok(t, "Close", n.s.Close())
	}

	again, err := open()
	ok(t, "open again", err)
	defer again.Close()
	got, err := again.GetFleetByName(ctx, "alpha")
	ok(t, "GetFleetByName after reopening", err)
	equal(t, "fleet", got, f)
}
