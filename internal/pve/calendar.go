package pve

import (
	"fmt"
	"strconv"
	"strings"
)

// Calendar events as PVE's job scheduler reads them (proxmox-time's
// CalendarEvent behind pve-common's PVE::CalendarEvent), checked here so a
// bad backup-job schedule fails at plan time with PVE's own error text. The
// grammar and its backtracking follow PVE's parser ("25:00" is minute 25 of
// every hour there, and here).

type calValue struct {
	kind   byte // 's' single, 'r' range, 'p' repeated
	a, b   uint32
	rep    uint32
	hasEnd bool
}

// calendarEvent: empty lists mean "any"; days is a bit set, Monday = bit 0.
type calendarEvent struct {
	utc                                  bool
	days                                 uint8
	second, minute, hour, day, month, yr []calValue
}

type calParseError struct {
	at, kind string
}

func (e *calParseError) Error() string {
	return fmt.Sprintf("unable to parse calendar event at '%s' - %s", e.at, e.kind)
}

func calCtx(at, ctx string) *calParseError {
	return &calParseError{at: at, kind: fmt.Sprintf("Context(%q)", ctx)}
}

// parseCalendarEvent parses like PVE::CalendarEvent::parse_calendar_event:
// trimmed, non-empty, then the proxmox-time grammar on the whole line.
func parseCalendarEvent(text string) (*calendarEvent, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("unable to parse calendar event - event is empty")
	}
	ev, rest, err := parseCalendarIncomplete(text)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, &calParseError{at: rest, kind: "Nom(Eof)"}
	}
	return ev, nil
}

var calShortcuts = map[string]func(*calendarEvent){
	"minutely": func(e *calendarEvent) { e.second = calSingle(0) },
	"hourly":   func(e *calendarEvent) { e.minute, e.second = calSingle(0), calSingle(0) },
	"daily":    func(e *calendarEvent) { e.hour, e.minute, e.second = calSingle(0), calSingle(0), calSingle(0) },
	"weekly": func(e *calendarEvent) {
		e.hour, e.minute, e.second, e.days = calSingle(0), calSingle(0), calSingle(0), 1
	},
	"monthly": func(e *calendarEvent) {
		e.hour, e.minute, e.second, e.day = calSingle(0), calSingle(0), calSingle(0), calSingle(1)
	},
	"yearly": func(e *calendarEvent) {
		e.hour, e.minute, e.second, e.day, e.month = calSingle(0), calSingle(0), calSingle(0), calSingle(1), calSingle(1)
	},
	"quarterly": func(e *calendarEvent) {
		e.hour, e.minute, e.second, e.day = calSingle(0), calSingle(0), calSingle(0), calSingle(1)
		e.month = append(calSingle(1), calSingle(4)[0], calSingle(7)[0], calSingle(10)[0])
	},
	"semiannually": func(e *calendarEvent) {
		e.hour, e.minute, e.second, e.day = calSingle(0), calSingle(0), calSingle(0), calSingle(1)
		e.month = append(calSingle(1), calSingle(7)[0])
	},
}

func init() {
	calShortcuts["annually"] = calShortcuts["yearly"]
	calShortcuts["semi-annually"] = calShortcuts["semiannually"]
}

func calSingle(v uint32) []calValue { return []calValue{{kind: 's', a: v}} }

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func parseCalendarIncomplete(i string) (*calendarEvent, string, error) {
	ev := &calendarEvent{}
	if n, ok := strings.CutSuffix(i, "UTC"); ok {
		ev.utc = true
		i = strings.TrimRight(n, " ")
	}
	hasDay, hasTime, hasDate := false, false, false
	if i != "" && isAlpha(i[0]) {
		if f, ok := calShortcuts[i]; ok {
			f(ev)
			return ev, "", nil
		}
		for {
			d, rest, err := parseWeekdayRange(i)
			if err != nil {
				return nil, "", err
			}
			ev.days |= d
			i = rest
			if !strings.HasPrefix(i, ",") {
				break
			}
			// separated_list1: a failing element after "," ends the list
			// before the separator (only the first element's error counts)
			if _, _, err := parseWeekdayRange(i[1:]); err != nil {
				break
			}
			i = i[1:]
		}
		hasDay = true
		i = strings.TrimLeft(i, " \t")
	}
	if y, mo, d, rest, ok := parseDateSpec(i); ok {
		ev.yr, ev.month, ev.day = y, mo, d
		hasDate = true
		i = strings.TrimLeft(rest, " \t")
	}
	if h, m, s, rest, ok := parseTimeSpec(i); ok {
		ev.hour, ev.minute, ev.second = h, m, s
		hasTime = true
		i = rest
	} else {
		ev.hour, ev.minute, ev.second = calSingle(0), calSingle(0), calSingle(0)
	}
	if !hasDay && !hasTime && !hasDate {
		return nil, "", calCtx(i, "date or time specification")
	}
	return ev, i, nil
}

var weekdayNames = map[string]uint8{
	"monday": 1, "mon": 1, "tuesday": 2, "tue": 2, "wednesday": 4, "wed": 4, "thursday": 8, "thu": 8,
	"friday": 16, "fri": 16, "saturday": 32, "sat": 32, "sunday": 64, "sun": 64,
}

func parseWeekday(i string) (uint8, string, error) {
	n := 0
	for n < len(i) && isAlpha(i[n]) {
		n++
	}
	if n == 0 {
		return 0, i, &calParseError{at: i, kind: "Nom(Alpha)"}
	}
	d, ok := weekdayNames[strings.ToLower(i[:n])]
	if !ok {
		return 0, i, calCtx(i[:n], "weekday")
	}
	return d, i[n:], nil
}

func parseWeekdayRange(i string) (uint8, string, error) {
	start, rest, err := parseWeekday(i)
	if err != nil {
		return 0, i, err
	}
	if strings.HasPrefix(rest, "..") {
		if end, r2, err := parseWeekday(rest[2:]); err == nil {
			gen := func(a, b uint8) uint8 {
				var res uint8
				for p := a; ; p <<= 1 {
					res |= p
					if p >= b {
						break
					}
				}
				return res
			}
			if start > end {
				return gen(start, 64) | gen(1, end), r2, nil
			}
			return gen(start, end), r2, nil
		}
	}
	return start, rest, nil
}

// parseTimeComp: digits, value < limit.
func parseTimeComp(i string, limit uint32) (uint32, string, bool) {
	n := 0
	for n < len(i) && isDigit(i[n]) {
		n++
	}
	if n == 0 {
		return 0, i, false
	}
	v, err := strconv.ParseUint(i[:n], 10, 32)
	if err != nil || uint32(v) >= limit {
		return 0, i, false
	}
	return uint32(v), i[n:], true
}

func parseDateTimeComp(i string, limit uint32) (calValue, string, bool) {
	v, rest, ok := parseTimeComp(i, limit)
	if !ok {
		return calValue{}, i, false
	}
	if strings.HasPrefix(rest, "..") {
		if end, r2, ok := parseTimeComp(rest[2:], limit); ok {
			if v > end {
				return calValue{}, i, false
			}
			if strings.HasPrefix(r2, "/") {
				rep, r3, ok := parseTimeComp(r2[1:], limit)
				if !ok {
					return calValue{}, i, false
				}
				return calValue{kind: 'p', a: v, rep: rep, b: end, hasEnd: true}, r3, true
			}
			return calValue{kind: 'r', a: v, b: end}, r2, true
		}
	}
	if strings.HasPrefix(rest, "/") {
		rep, r2, ok := parseTimeComp(rest[1:], limit)
		if !ok {
			return calValue{}, i, false
		}
		return calValue{kind: 'p', a: v, rep: rep}, r2, true
	}
	return calValue{kind: 's', a: v}, rest, true
}

func parseDateTimeCompList(i string, start, limit uint32) ([]calValue, string, bool) {
	if rest, ok := strings.CutPrefix(i, "*"); ok {
		if t, ok := strings.CutPrefix(rest, "/"); ok {
			if rep, r2, ok := parseTimeComp(t, limit); ok && rep > 0 {
				return []calValue{{kind: 'p', a: start, rep: rep}}, r2, true
			}
		}
		return nil, rest, true
	}
	first, rest, ok := parseDateTimeComp(i, limit)
	if !ok {
		return nil, i, false
	}
	out := []calValue{first}
	for strings.HasPrefix(rest, ",") {
		v, r2, ok := parseDateTimeComp(rest[1:], limit)
		if !ok {
			break
		}
		out, rest = append(out, v), r2
	}
	return out, rest, true
}

func parseTimeSpec(i string) (h, m, s []calValue, rest string, ok bool) {
	rest = i
	if hl, r, ok := parseDateTimeCompList(rest, 0, 24); ok && strings.HasPrefix(r, ":") {
		h, rest = hl, r[1:]
	}
	m, rest, ok = parseDateTimeCompList(rest, 0, 60)
	if !ok {
		return nil, nil, nil, i, false
	}
	s = calSingle(0)
	if strings.HasPrefix(rest, ":") {
		if sl, r, ok := parseDateTimeCompList(rest[1:], 0, 60); ok {
			s, rest = sl, r
		}
	}
	return h, m, s, rest, true
}

func parseDateSpec(i string) (y, mo, d []calValue, rest string, ok bool) {
	if yl, r, ok := parseDateTimeCompList(i, 0, 2200); ok && strings.HasPrefix(r, "-") {
		if ml, r2, ok := parseDateTimeCompList(r[1:], 1, 13); ok && strings.HasPrefix(r2, "-") {
			if dl, r3, ok := parseDateTimeCompList(r2[1:], 1, 32); ok {
				return yl, ml, dl, r3, true
			}
		}
	}
	if ml, r, ok := parseDateTimeCompList(i, 1, 13); ok && strings.HasPrefix(r, "-") {
		if dl, r2, ok := parseDateTimeCompList(r[1:], 1, 32); ok {
			return nil, ml, dl, r2, true
		}
	}
	return nil, nil, nil, i, false
}

// ValidateCalendarEvent checks a schedule the way PVE's pve-calendar-event
// format does and returns PVE's error text.
func ValidateCalendarEvent(text string) error {
	_, err := parseCalendarEvent(text)
	return err
}
