package broker

import (
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Config{DeviceKey: (&registry{}).DeviceKey}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil || cfg.Now == nil || cfg.MaxPacketSize != 32<<10 || cfg.ConnectTimeout != 10*time.Second ||
		cfg.MinKeepAlive != 30*time.Second || cfg.MaxKeepAlive != 5*time.Minute || cfg.WritesPending != 320 || cfg.BufferSize != 512 {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestConfigRefused(t *testing.T) {
	t.Parallel()
	key := (&registry{}).DeviceKey
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"no DeviceKey", Config{}},
		{"negative MaxClients", Config{DeviceKey: key, MaxClients: -1}},
		{"tiny packets", Config{DeviceKey: key, MaxPacketSize: 100}},
		{"negative ConnectTimeout", Config{DeviceKey: key, ConnectTimeout: -time.Second}},
		{"sub-second keep-alive", Config{DeviceKey: key, MinKeepAlive: time.Millisecond}},
		{"keep-alive range upside down", Config{DeviceKey: key, MinKeepAlive: time.Hour, MaxKeepAlive: time.Minute}},
		{"keep-alive beyond MQTT", Config{DeviceKey: key, MaxKeepAlive: 24 * time.Hour}},
		{"negative WritesPending", Config{DeviceKey: key, WritesPending: -1}},
		{"tiny buffers", Config{DeviceKey: key, BufferSize: 8}},
	} {
		if b, err := New(tt.cfg); err == nil {
			b.Close()
			t.Errorf("%s: New succeeded; want an error", tt.name)
		}
	}
}
