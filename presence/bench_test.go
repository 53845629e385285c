package presence

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkStorm: every device connects at once, as after a broker
// restart, then every device disconnects; it reports how long each
// device's change takes to reach the store (SQLite), lookups included:
//
//	go test -run '^$' -bench Storm ./presence
func BenchmarkStorm(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f := newFixture(b, nil)
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("dev%d", i)
				f.enroll(b, names[i])
			}
			var took [2]time.Duration // connects (with ID lookups), disconnects
			b.ResetTimer()
			for range b.N {
				for i, online := range []bool{true, false} {
					start, want := time.Now(), f.st.written()+n
					for _, name := range names {
						f.note(deviceKey{"acme", name}, online, start)
					}
					for f.st.written() < want {
						time.Sleep(time.Millisecond)
					}
					took[i] += time.Since(start)
				}
			}
			perChange := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n*b.N) }
			b.ReportMetric(perChange(took[0]), "µs/connect")
			b.ReportMetric(perChange(took[1]), "µs/disconnect")
		})
	}
}
