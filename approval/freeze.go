package approval

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// FreezeWindow is a recurring time in which approved runs do not apply: it
// opens at every activation of Cron (standard five fields, or a descriptor
// such as @weekly; a CRON_TZ= prefix names the time zone, UTC otherwise) and
// lasts Duration.
type FreezeWindow struct {
	Cron     string        `json:"cron"`
	Duration time.Duration `json:"duration"`
	Reason   string        `json:"reason,omitempty"`
}

// ParseFreeze checks a window's schedule.
func (w FreezeWindow) schedule() (cron.Schedule, error) {
	s, err := cron.ParseStandard(w.Cron)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", w.Cron, err)
	}
	return s, nil
}

// CheckFreeze reports what is wrong with a window, for the config.
func CheckFreeze(w FreezeWindow) error {
	if _, err := w.schedule(); err != nil {
		return err
	}
	if w.Duration <= 0 {
		return fmt.Errorf("duration must be positive")
	}
	return nil
}

// Freeze is a freeze a run waits out.
type Freeze struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}

// maxChained bounds how many back-to-back windows FrozenUntil follows.
const maxChained = 32

// FrozenUntil reports whether now falls in one of the windows, and if so
// until when: the end of the window, or of the windows that follow on from
// it without a gap. A window whose schedule does not parse freezes (fail
// closed) for a day, and says so.
func FrozenUntil(windows []FreezeWindow, now time.Time) (Freeze, bool) {
	var f Freeze
	at := now
	for range maxChained {
		end, reason, ok := frozenAt(windows, at)
		if !ok {
			break
		}
		if f.Reason == "" {
			f.Reason = reason
		}
		f.Until = end
		at = end
	}
	return f, !f.Until.IsZero()
}

// frozenAt returns the latest end of the windows open at t.
func frozenAt(windows []FreezeWindow, t time.Time) (time.Time, string, bool) {
	var end time.Time
	var reason string
	for _, w := range windows {
		s, err := w.schedule()
		if err != nil {
			if e := t.Add(24 * time.Hour); e.After(end) {
				end, reason = e, "freeze window "+w.Cron+" cannot be read (fail closed)"
			}
			continue
		}
		// The last opening at or before t, if it is recent enough for
		// the window still to be open: walk the openings from one window
		// length back.
		var opened time.Time
		for next := s.Next(t.Add(-w.Duration)); !next.IsZero() && !next.After(t); next = s.Next(next) {
			opened = next
		}
		if opened.IsZero() {
			continue
		}
		if e := opened.Add(w.Duration); e.After(t) && e.After(end) {
			end, reason = e, w.Reason
		}
	}
	return end, reason, !end.IsZero()
}
