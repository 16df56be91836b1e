package engine

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendEvent appends an event's journal line (JSON, without the newline) to dst, as the
// engine's own stores write it; for other stores (kubestate).
func AppendEvent(dst []byte, ev *Event) ([]byte, error) { return appendEvent(dst, ev) }

// appendEvent appends an event's journal line (without the newline) to dst: the bytes
// json.Marshal(ev) gives, without its reflection, which was most of a step's allocations
// (TestAppendEventIsJSONMarshal holds them equal). The rare events that carry a run's
// header or a session go through json.Marshal.
func appendEvent(dst []byte, ev *Event) ([]byte, error) {
	if ev.Header != nil || ev.Session != nil {
		b, err := json.Marshal(ev)
		return append(dst, b...), err
	}
	start := len(dst)
	var err error
	dst = append(dst, `{"k":`...)
	dst = appendJSONString(dst, string(ev.Kind))
	dst = append(dst, `,"t":`...)
	if dst, err = appendJSONTime(dst, ev.Time); err != nil {
		return dst[:start], err
	}
	dst = appendStringField(dst, "s", ev.Step)
	dst = appendIntField(dst, "i", ev.Item)
	dst = appendIntField(dst, "attempt", ev.Attempt)
	if len(ev.Params) > 0 {
		dst = append(dst, `,"params":`...)
		if dst, err = appendJSONValue(dst, ev.Params); err != nil {
			return dst[:start], err
		}
	}
	dst = appendStringField(dst, "status", ev.Status)
	if len(ev.Outputs) > 0 {
		dst = append(dst, `,"outputs":`...)
		if dst, err = appendJSONValue(dst, ev.Outputs); err != nil {
			return dst[:start], err
		}
	}
	dst = appendStringField(dst, "error", ev.Error)
	dst = appendStringField(dst, "reason", ev.Reason)
	dst = appendStringField(dst, "key", ev.Key)
	if len(ev.Value) > 0 {
		// json.Marshal compacts a RawMessage and escapes HTML in it, as it does elsewhere.
		v, err := json.Marshal(ev.Value)
		if err != nil {
			return dst[:start], err
		}
		dst = append(append(dst, `,"value":`...), v...)
	}
	if l := ev.Link; l != nil {
		dst = append(dst, `,"link":{"title":`...)
		dst = appendJSONString(dst, l.Title)
		dst = append(dst, `,"url":`...)
		dst = appendJSONString(dst, l.URL)
		dst = appendStringField(dst, "step", l.Step)
		dst = append(dst, '}')
	}
	dst = appendStringField(dst, "line", ev.Line)
	if c := ev.Choice; c != nil {
		dst = append(dst, `,"choice":{"step":`...)
		dst = appendJSONString(dst, c.Step)
		dst = append(dst, `,"action":`...)
		dst = appendJSONString(dst, c.Action)
		dst = append(dst, `,"by":`...)
		dst = appendJSONString(dst, c.By)
		dst = append(dst, `,"at":`...)
		if dst, err = appendJSONTime(dst, c.At); err != nil {
			return dst[:start], err
		}
		dst = appendStringField(dst, "reason", c.Reason)
		dst = append(dst, '}')
	}
	if len(ev.Items) > 0 {
		dst = append(dst, `,"items":`...)
		if dst, err = appendJSONValue(dst, ev.Items); err != nil {
			return dst[:start], err
		}
	}
	return append(dst, '}'), nil
}

// appendStringField appends ,"name":"value" unless value is empty (omitempty).
func appendStringField(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(append(append(dst, `,"`...), name...), `":`...)
	return appendJSONString(dst, value)
}

// appendIntField appends ,"name":n unless n is 0 (omitempty).
func appendIntField(dst []byte, name string, n int) []byte {
	if n == 0 {
		return dst
	}
	dst = append(append(append(dst, `,"`...), name...), `":`...)
	return strconv.AppendInt(dst, int64(n), 10)
}

// appendJSONTime is time.Time's MarshalJSON.
func appendJSONTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		b, err := json.Marshal(t) // its error
		return append(dst, b...), err
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// appendJSONValue encodes the values a run's events carry (what YAML, expressions and
// JSON decoding give) as json.Marshal does; any other type goes through json.Marshal.
func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendJSONString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case float64:
		return appendJSONFloat(dst, x)
	case []any:
		return appendJSONList(dst, x)
	case []string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, e)
		}
		return append(dst, ']'), nil
	case map[string]any:
		return appendJSONObject(dst, x)
	}
	b, err := json.Marshal(v)
	return append(dst, b...), err
}

func appendJSONList(dst []byte, l []any) ([]byte, error) {
	if l == nil {
		return append(dst, "null"...), nil
	}
	var err error
	dst = append(dst, '[')
	for i, e := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendJSONValue(dst, e); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// appendJSONObject encodes a map with its keys sorted, as json.Marshal does.
func appendJSONObject(dst []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var err error
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendJSONString(dst, k), ':')
		if dst, err = appendJSONValue(dst, m[k]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendJSONFloat formats a float64 as encoding/json does.
func appendJSONFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		_, err := json.Marshal(f) // its error
		return dst, err
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// appendJSONString quotes s as encoding/json does: HTML characters, U+2028 and U+2029
// escaped, invalid UTF-8 replaced with U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
