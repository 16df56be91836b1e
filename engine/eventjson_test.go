package engine

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The journal's hand-written encoder writes what json.Marshal writes, byte for byte.
func TestAppendEventIsJSONMarshal(t *testing.T) {
	at := time.Date(2026, 12, 6, 19, 30, 1, 123456789, time.UTC)
	tricky := "a \"quoted\" \\ <b>&amp;</b>\n\t\r\b\f\x01\x1f é 世 \u2028\u2029 \xff end"
	evs := []*Event{
		{Kind: EventStart, Time: at, Step: "s1", Attempt: 1, Params: map[string]any{"message": "v1.2.3", "count": 3, "labels": []any{"a", "b"}, "nested": map[string]any{"z": nil, "a": true, "m": 1.5}}},
		{Kind: EventEnd, Time: at, Step: "s1", Item: 2, Attempt: 3, Status: "succeeded", Outputs: map[string]any{"length": float64(6), "tiny": 1e-7, "big": 1e21, "neg": -0.000001, "int64": int64(-5), "strs": []string{"x", tricky}, "empty": map[string]any{}, "nil list": []any(nil)}},
		{Kind: EventEnd, Time: at, Step: "k", Status: "skipped", Reason: "when: " + tricky + " was false"},
		{Kind: EventLog, Time: at.In(time.FixedZone("x", 3600)), Step: "s", Line: tricky},
		{Kind: EventKV, Time: at, Step: "s", Key: "result:1", Value: json.RawMessage(`{"a": [1, 2], "b":"<x>"}`)},
		{Kind: EventLink, Time: at, Step: "s", Link: &Link{Title: "t", URL: "https://x/?a=1&b=2"}},
		{Kind: EventLink, Time: at, Link: &Link{Title: "", URL: "", Step: "s2"}},
		{Kind: EventChoice, Time: at, Choice: &Choice{Step: "s", Action: "skip", By: "me", At: at, Reason: "r"}},
		{Kind: EventChoice, Time: at, Choice: &Choice{Step: "s", Action: "retry", By: "me"}},
		{Kind: EventItems, Time: at, Step: "f", Items: []any{"a", 1, map[string]any{"k": "v"}}},
		{Kind: EventRunEnd, Time: at, Status: "failed", Reason: "x", Step: "s", Error: "e"},
		{Kind: EventWarning, Params: map[string]any{}, Outputs: map[string]any{}, Items: []any{}},
		{Kind: EventSession, Time: at, Session: &Session{N: 2, Actor: "a"}},
		{Kind: EventEnd, Time: at, Outputs: map[string]any{"time": at, "dur": Duration(5 * time.Second), "u8": uint8(3), "f32": float32(0.1)}},
	}
	for i, ev := range evs {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEvent([]byte("prefix"), ev)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if string(got[6:]) != string(want) || string(got[:6]) != "prefix" {
			t.Errorf("event %d:\n got %s\nwant %s", i, got[6:], want)
		}
	}
	// NaN is refused as json.Marshal refuses it, and nothing is appended.
	if b, err := appendEvent(nil, &Event{Kind: EventEnd, Outputs: map[string]any{"x": nan()}}); err == nil || len(b) != 0 {
		t.Errorf("NaN: %q %v, want an error", b, err)
	}
}

func nan() float64 {
	var z float64
	return z / z
}

// Random values and strings, including every byte, encode as json.Marshal does.
func TestAppendJSONValueRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var gen func(depth int) any
	str := func() string {
		var b strings.Builder
		for n := rng.IntN(12); n > 0; n-- {
			switch rng.IntN(3) {
			case 0:
				b.WriteByte(byte(rng.IntN(256)))
			case 1:
				b.WriteRune(rune(rng.IntN(0x2100)))
			default:
				b.WriteString("<&>\"\\")
			}
		}
		return b.String()
	}
	gen = func(depth int) any {
		switch k := rng.IntN(8); {
		case k == 0:
			return nil
		case k == 1:
			return rng.IntN(2) == 0
		case k == 2:
			return rng.NormFloat64() * []float64{1e-9, 1, 1e6, 1e22}[rng.IntN(4)]
		case k == 3:
			return rng.IntN(1000) - 500
		case k == 4 && depth < 3:
			l := make([]any, rng.IntN(4))
			for i := range l {
				l[i] = gen(depth + 1)
			}
			return l
		case k == 5 && depth < 3:
			m := map[string]any{}
			for n := rng.IntN(20); n > 0; n-- {
				m[str()] = gen(depth + 1)
			}
			return m
		}
		return str()
	}
	for i := 0; i < 2000; i++ {
		v := gen(0)
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSONValue(nil, v)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%#v:\n got %s (%v)\nwant %s", v, got, err, want)
		}
	}
}

// Encoding a step's events into a reused buffer allocates nothing.
func TestAppendEventAllocs(t *testing.T) {
	ev := &Event{Kind: EventEnd, Time: time.Unix(1, 2).UTC(), Step: "s00001", Attempt: 1, Status: "succeeded",
		Outputs: map[string]any{"text": "v1.2.3", "length": float64(6), "labels": []any{"a"}}}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf, _ = appendEvent(buf[:0], ev) }); n != 0 {
		t.Errorf("%v allocations per event, want 0", n)
	}
}
