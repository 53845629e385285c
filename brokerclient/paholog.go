package brokerclient

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// pahoLogger hands the MQTT library's lines to slog at debug level: they
// describe every packet, which only someone chasing a bug wants to read.
// It implements the library's log.Logger.
type pahoLogger struct{ log *slog.Logger }

func (l pahoLogger) Println(v ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
	}
}

func (l pahoLogger) Printf(format string, v ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(strings.TrimSuffix(fmt.Sprintf(format, v...), "\n"))
	}
}
