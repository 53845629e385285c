package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/spf13/cobra"
)

// listing describes a list command's output: a table for people, or with
// --json a JSON array for scripts (always an array, [] when empty).
type listing[T any] struct {
	fetch   func(context.Context, *apiclient.Client) ([]T, error)
	compare func(x, y T) int // sort order, so output is stable
	none    string           // said on stderr for an empty table, e.g. "no devices"
	headers []string
	row     func(T) []string
}

// attach makes cmd run the listing and gives it --json.
func (l listing[T]) attach(a *app, cmd *cobra.Command) *cobra.Command {
	var asJSON bool
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.connect()
		if err != nil {
			return err
		}
		items, err := l.fetch(cmd.Context(), c)
		if err != nil {
			return err
		}
		slices.SortStableFunc(items, l.compare)
		if asJSON {
			return writeJSON(a.io.Out, items)
		}
		return l.print(a.io.Out, a.io.Err, items)
	}
	return cmd
}

// print writes items as a table. An empty table prints nothing on out and
// says so on errw, so scripts reading out see no stray words.
func (l listing[T]) print(out, errw io.Writer, items []T) error {
	if len(items) == 0 {
		fmt.Fprintln(errw, l.none)
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(l.headers, "\t"))
	for _, it := range items {
		fmt.Fprintln(tw, strings.Join(l.row(it), "\t"))
	}
	return tw.Flush()
}

// writeJSON writes v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// timeLayout is how tables and notes show a moment, in the local zone.
const timeLayout = "2006-01-02 15:04 MST"

// formatTime shows t in the local zone, or "-" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(timeLayout)
}

// orDash is s, or "-" for an empty table cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
