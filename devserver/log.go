package devserver

import (
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// serverLogLevel is the lowest level of Temporal server log that reaches
	// the caller's logger. At info the server logs every shard, queue and
	// membership transition, which drowns out gatehouse's own output.
	serverLogLevel = zapcore.WarnLevel
	// silentLevel mutes the adapter entirely: it never writes above error
	// (see DPanic), so a fatal floor lets nothing through.
	silentLevel = zapcore.FatalLevel
)

// zapLogger lets the Temporal server log through a caller-supplied zap logger.
// Temporal ships its own zap-backed logger, but it insists on adding a
// "logging-call-at" field with a file path to every entry; ours keeps entries
// short and applies an adjustable level floor.
type zapLogger struct {
	zl *zap.Logger
	// min is shared by every logger derived through With, so the Server can
	// mute the whole server log in one place when it stops.
	min zap.AtomicLevel
}

var (
	_ log.Logger     = zapLogger{}
	_ log.WithLogger = zapLogger{}
)

func newZapLogger(zl *zap.Logger, min zap.AtomicLevel) zapLogger {
	return zapLogger{zl: zl, min: min}
}

func (l zapLogger) Debug(msg string, tags ...tag.Tag) { l.write(zapcore.DebugLevel, msg, tags) }
func (l zapLogger) Info(msg string, tags ...tag.Tag)  { l.write(zapcore.InfoLevel, msg, tags) }
func (l zapLogger) Warn(msg string, tags ...tag.Tag)  { l.write(zapcore.WarnLevel, msg, tags) }
func (l zapLogger) Error(msg string, tags ...tag.Tag) { l.write(zapcore.ErrorLevel, msg, tags) }

// DPanic, Panic and Fatal are logged as errors and nothing more: the server is
// embedded in gatehouse, and one misbehaving service must not be able to panic
// or os.Exit the whole process (zap's Fatal would exit, and DPanic panics in
// development loggers).
func (l zapLogger) DPanic(msg string, tags ...tag.Tag) { l.write(zapcore.ErrorLevel, msg, tags) }
func (l zapLogger) Panic(msg string, tags ...tag.Tag)  { l.write(zapcore.ErrorLevel, msg, tags) }
func (l zapLogger) Fatal(msg string, tags ...tag.Tag)  { l.write(zapcore.ErrorLevel, msg, tags) }

// With is used by the server to pre-attach service/component tags; building
// the zap child once is cheaper than re-encoding the tags on every entry.
func (l zapLogger) With(tags ...tag.Tag) log.Logger {
	return zapLogger{zl: l.zl.With(zapFields(tags)...), min: l.min}
}

func (l zapLogger) write(level zapcore.Level, msg string, tags []tag.Tag) {
	if !l.min.Enabled(level) {
		return
	}
	// Check before converting tags so filtered entries cost next to nothing.
	if ce := l.zl.Check(level, msg); ce != nil {
		ce.Write(zapFields(tags)...)
	}
}

func zapFields(tags []tag.Tag) []zap.Field {
	fields := make([]zap.Field, 0, len(tags))
	for _, t := range tags {
		// Almost every server tag is a thin wrapper around a zap.Field, which
		// keeps its type (durations, errors, ints) instead of going through
		// reflection.
		if zt, ok := t.(tag.ZapTag); ok {
			fields = append(fields, zt.Field())
			continue
		}
		fields = append(fields, zap.Any(t.Key(), t.Value()))
	}
	return fields
}
