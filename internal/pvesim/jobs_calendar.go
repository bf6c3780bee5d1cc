package pvesim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Calendar events as PVE's job scheduler reads them (proxmox-time's
// CalendarEvent, reached through pve-common's PVE::CalendarEvent). The parser
// follows the same grammar and the same backtracking, so odd inputs parse
// the way PVE parses them ("25:00" is minute 25 of every hour); see
// REFERENCE.md 9.4 for the subset and the error texts.

type calValue struct {
	kind   byte // 's' single, 'r' range, 'p' repeated
	a, b   uint32
	rep    uint32
	hasEnd bool
}

func (v calValue) contains(x uint32) bool {
	switch v.kind {
	case 's':
		return x == v.a
	case 'r':
		return x >= v.a && x <= v.b
	}
	if x < v.a || (v.hasEnd && x > v.b) {
		return false
	}
	if v.rep == 0 {
		return x == v.a
	}
	return (x-v.a)%v.rep == 0
}

// next is the smallest value > x this entry matches, if any.
func (v calValue) next(x uint32) (uint32, bool) {
	switch v.kind {
	case 's':
		return v.a, v.a > x
	case 'r':
		if v.a > x {
			return v.a, true
		}
		return x + 1, x < v.b
	}
	if v.a > x {
		return v.a, true
	}
	if v.rep == 0 {
		return 0, false
	}
	n := v.a + ((x-v.a)/v.rep+1)*v.rep
	if v.hasEnd && n > v.b {
		return 0, false
	}
	return n, true
}

func calListContains(l []calValue, x uint32) bool {
	for _, v := range l {
		if v.contains(x) {
			return true
		}
	}
	return false
}

func calListNext(l []calValue, x uint32) (uint32, bool) {
	best, found := uint32(0), false
	for _, v := range l {
		if n, ok := v.next(x); ok && (!found || n < best) {
			best, found = n, true
		}
	}
	return best, found
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

// tmEditor mirrors proxmox-time's TmEditor: broken-down local time whose
// add_* helpers reset the smaller fields and normalise like mktime.
type tmEditor struct {
	y, mo, d, h, mi, s int
	loc                *time.Location
}

func (t *tmEditor) norm() {
	n := time.Date(t.y, time.Month(t.mo), t.d, t.h, t.mi, t.s, 0, t.loc)
	t.y, t.mo, t.d = n.Year(), int(n.Month()), n.Day()
	t.h, t.mi, t.s = n.Hour(), n.Minute(), n.Second()
}
func (t *tmEditor) addYears(n int)  { t.y += n; t.mo, t.d, t.h, t.mi, t.s = 1, 1, 0, 0, 0; t.norm() }
func (t *tmEditor) addMonths(n int) { t.mo += n; t.d, t.h, t.mi, t.s = 1, 0, 0, 0; t.norm() }
func (t *tmEditor) addDays(n int)   { t.d += n; t.h, t.mi, t.s = 0, 0, 0; t.norm() }
func (t *tmEditor) setTime(h, m, s int) {
	t.h, t.mi, t.s = h, m, s
	t.norm()
}
func (t *tmEditor) setMinSec(m, s int) { t.mi, t.s = m, s; t.norm() }
func (t *tmEditor) setSec(s int)       { t.s = s; t.norm() }
func (t *tmEditor) dayNum() int { // Monday = 0
	wd := int(time.Date(t.y, time.Month(t.mo), t.d, 12, 0, 0, 0, t.loc).Weekday())
	return (wd + 6) % 7
}

// next is compute_next_event: the first matching second after last, or
// false when none is found within 1000 steps.
func (ev *calendarEvent) next(last time.Time, loc *time.Location) (time.Time, bool) {
	if ev.utc {
		loc = time.UTC
	}
	start := last.Add(time.Second).In(loc)
	t := &tmEditor{y: start.Year(), mo: int(start.Month()), d: start.Day(), h: start.Hour(), mi: start.Minute(), s: start.Second(), loc: loc}
	allDays := ev.days == 0 || ev.days == 127
	for count := 0; count <= 1000; count++ {
		if len(ev.yr) > 0 && !calListContains(ev.yr, uint32(t.y)) {
			n, ok := calListNext(ev.yr, uint32(t.y))
			if !ok {
				return time.Time{}, false
			}
			t.addYears(int(n) - t.y)
			continue
		}
		if len(ev.month) > 0 && !calListContains(ev.month, uint32(t.mo)) {
			if n, ok := calListNext(ev.month, uint32(t.mo)); ok {
				t.addMonths(int(n) - t.mo)
			} else {
				t.addYears(1)
			}
			continue
		}
		if len(ev.day) > 0 && !calListContains(ev.day, uint32(t.d)) {
			if n, ok := calListNext(ev.day, uint32(t.d)); ok {
				t.addDays(int(n) - t.d)
			} else {
				t.addMonths(1)
			}
			continue
		}
		if !allDays {
			dn := t.dayNum()
			if ev.days&(1<<dn) == 0 {
				step := 7 - dn
				for d := dn + 1; d < 7; d++ {
					if ev.days&(1<<d) != 0 {
						step = d - dn
						break
					}
				}
				t.addDays(step)
				continue
			}
		}
		if len(ev.hour) > 0 && !calListContains(ev.hour, uint32(t.h)) {
			if n, ok := calListNext(ev.hour, uint32(t.h)); ok {
				t.setTime(int(n), 0, 0)
			} else {
				t.addDays(1)
			}
			continue
		}
		if len(ev.minute) > 0 && !calListContains(ev.minute, uint32(t.mi)) {
			if n, ok := calListNext(ev.minute, uint32(t.mi)); ok {
				t.setMinSec(int(n), 0)
			} else {
				t.setTime(t.h+1, 0, 0)
			}
			continue
		}
		if len(ev.second) > 0 && !calListContains(ev.second, uint32(t.s)) {
			if n, ok := calListNext(ev.second, uint32(t.s)); ok {
				t.setSec(int(n))
			} else {
				t.setMinSec(t.mi+1, 0)
			}
			continue
		}
		return time.Date(t.y, time.Month(t.mo), t.d, t.h, t.mi, t.s, 0, loc), true
	}
	return time.Time{}, false
}
