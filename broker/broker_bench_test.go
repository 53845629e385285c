package broker

import (
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// What one idle device costs the broker, measured on the 2-core build
// machine (Go 1.26, linux/amd64) with
//
//	go test -run '^$' -bench IdleConnections -benchtime 8000x ./broker
//
// at 8,000 devices, each connected over MQTT 3.1.1, subscribed to its cmd
// topic and with a retained state:
//
//	heap   ≈ 8.3-9.2 KB per connection (77 KB with mochi's defaults of 8,192
//	         pending writes and 2 KiB buffers)
//	stack  ≈ 20-23 KB per connection: two goroutines (reader and writer),
//	         grown by mochi passing its large Packet struct by value
//	total  ≈ 29 KB per idle device, ≈ 29 GB per million; connecting one took
//	         ≈ 0.26 ms (login with signature check, subscribe, publish)
//
// The heap figure includes the test's own client sockets (a few hundred
// bytes each) but not kernel socket buffers.

// nopPresence keeps the presence bookkeeping in the measurement without
// recording anything.
type nopPresence struct{}

func (nopPresence) DeviceConnected(string, string, time.Time)    {}
func (nopPresence) DeviceDisconnected(string, string, time.Time) {}

// BenchmarkIdleConnections connects b.N devices (set it with -benchtime Nx)
// and reports the broker's memory per idle connection.
func BenchmarkIdleConnections(b *testing.B) {
	tb := startBroker(b, func(c *Config) {
		c.Logger = slog.New(slog.DiscardHandler)
		c.Presence = nopPresence{}
	})
	devices := make([]idleDevice, b.N)
	for i := range devices {
		devices[i] = newIdleDevice(b, tb, i)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	b.ResetTimer()
	for i := range devices {
		devices[i].connect(b, tb)
	}
	b.StopTimer()
	tb.waitConns(b, b.N)
	for range 4 { // each GC may halve a stack that its goroutine no longer needs
		runtime.GC()
	}
	runtime.ReadMemStats(&after)

	n := float64(b.N)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "heap-B/conn")
	b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/n, "stack-B/conn")
	b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/n, "goroutines/conn")
	for _, d := range devices {
		d.conn.Close()
	}
}

// TestIdleDevices runs the benchmark's device on a few connections, so the
// benchmark keeps working, and checks a 3.1.1 device can subscribe and
// publish its state.
func TestIdleDevices(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	states := collect(t, tb, "porthole/v1/+/+/state")
	for i := range 5 {
		d := newIdleDevice(t, tb, i)
		d.connect(t, tb)
		if m := next(t, states); m.topic != d.stateTopic() || m.payload != "online" {
			t.Errorf("state = %+v; want online on %s", m, d.stateTopic())
		}
	}
	tb.waitConns(t, 5)
}

// idleDevice is a device as the broker sees most of them: logged in,
// subscribed, its state published, then silent. It speaks raw MQTT 3.1.1 so
// the client side adds no goroutines or buffers to the measurement.
type idleDevice struct {
	device
	password string
	conn     net.Conn
}

func newIdleDevice(t testing.TB, tb *testBroker, i int) idleDevice {
	d := tb.enroll(t, "bench", "dev-"+strconv.Itoa(i))
	return idleDevice{device: d, password: d.password()}
}

func (d *idleDevice) connect(t testing.TB, tb *testBroker) {
	t.Helper()
	conn, code := tb.dialV311(t, d.username(), d.username(), d.password, 300)
	if code != 0 {
		t.Fatalf("%s: CONNECT return code %d", d.username(), code)
	}
	d.conn = conn
	subscribe := append([]byte{0x82, byte(2 + 2 + len(d.cmdTopic()) + 1), 0, 1}, mqttString(d.cmdTopic())...)
	subscribe = append(subscribe, 1) // QoS 1
	publish := append([]byte{0x31, byte(2 + len(d.stateTopic()) + len("online"))}, mqttString(d.stateTopic())...)
	publish = append(publish, "online"...) // QoS 0, retained
	if _, err := conn.Write(append(subscribe, publish...)); err != nil {
		t.Fatal(err)
	}
	suback := make([]byte, 5)
	if _, err := io.ReadFull(conn, suback); err != nil || suback[0] != 0x90 || suback[4] != 1 {
		t.Fatalf("%s: SUBACK % x, %v; want QoS 1 granted", d.username(), suback, err)
	}
}

func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
