package theeye_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC3339Nano, "" for an error
	}{
		{"2021-01-01 09:15:27.243860", "2021-01-01T09:15:27.24386Z"},
		{"2021-01-01 09:15:27", "2021-01-01T09:15:27Z"},
		{"2021-01-01T09:15:27.5", "2021-01-01T09:15:27.5Z"},
		{"2021-01-01T09:15:27Z", "2021-01-01T09:15:27Z"},
		{"2021-01-01T11:15:27.123456789+02:00", "2021-01-01T09:15:27.123456789Z"},
		{"2021-01-01 11:15:27+02:00", "2021-01-01T09:15:27Z"},
		{"1969-12-31 23:59:59.999", "1969-12-31T23:59:59.999Z"},
		{"2021-13-01 09:15:27", ""},
		{"2021-01-01", ""},
		{"yesterday", ""},
		{"2021-01-01 25:15:27", ""},
		{"1500-01-01 00:00:00", ""},
		{"2300-01-01T00:00:00Z", ""},
	}
	for _, tt := range tests {
		got, err := theeye.ParseTimestamp(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseTimestamp(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTimestamp(%q): %v", tt.in, err)
			continue
		}
		if s := got.Format(time.RFC3339Nano); s != tt.want {
			t.Errorf("ParseTimestamp(%q) = %s, want %s", tt.in, s, tt.want)
		}
	}
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2021-01-01 09:15:27.243860", "2021-01-01T09:15:27Z", "2021-01-01T11:15:27+02:00", "x", "2262-04-11T23:47:16.854775807Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := theeye.ParseTimestamp(s)
		if err != nil {
			return
		}
		if ts.Location() != time.UTC {
			t.Fatalf("%q parsed to a non-UTC time %v", s, ts)
		}
		// Every accepted time fits int64 nanoseconds and round-trips
		// through the response format.
		if time.Unix(0, ts.UnixNano()).UTC() != ts {
			t.Fatalf("%q: %v does not fit int64 nanoseconds", s, ts)
		}
		back, err := theeye.ParseTimestamp(theeye.FormatTime(ts))
		if err != nil || !back.Equal(ts) {
			t.Fatalf("%q: %v does not round-trip (%v, %v)", s, ts, back, err)
		}
	})
}

func reasonCodes(rs []theeye.Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code+" "+r.Field)
	}
	return out
}

func TestParseEventReasons(t *testing.T) {
	recv := time.Date(2021, 1, 1, 9, 20, 0, 0, time.UTC)
	p := theeye.Policy{MaxClockSkew: 5 * time.Minute, MaxEventAge: 24 * time.Hour}
	tests := []struct {
		name string
		raw  string
		want []string
	}{
		{"valid", `{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:15:27.243860"}`, nil},
		{"missing all", `{}`, []string{"missing_field /session_id", "missing_field /category", "missing_field /name", "missing_field /data", "missing_field /timestamp"}},
		{"wrong types", `{"session_id":1,"category":"c","name":"n","data":[],"timestamp":5}`, []string{"wrong_type /session_id", "wrong_type /data", "wrong_type /timestamp"}},
		{"empty data", `{"session_id":"s","category":"c","name":"n","data":{ },"timestamp":"2021-01-01 09:15:27"}`, []string{"empty_data /data"}},
		{"reserved", `{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:15:27","seq":3,"app":"x"}`, []string{"reserved_field /seq", "reserved_field /app"}},
		{"bad timestamp", `{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"soon"}`, []string{"invalid_timestamp /timestamp"}},
		{"future", `{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:25:01"}`, []string{"timestamp_in_future /timestamp"}},
		{"within skew", `{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:24:59"}`, nil},
		{"too old", `{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2020-12-31 09:19:59"}`, []string{"timestamp_too_old /timestamp"}},
		{"empty session", `{"session_id":"","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:15:27"}`, []string{"missing_field /session_id"}},
		{"id wrong type", `{"id":7,"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:15:27"}`, []string{"wrong_type /id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rs := theeye.ParseEvent([]byte(tt.raw), recv, p)
			got := strings.Join(reasonCodes(rs), ",")
			if want := strings.Join(tt.want, ","); got != want {
				t.Fatalf("reasons = %q, want %q", got, want)
			}
		})
	}
}

func TestParseEventKeepsExtraFields(t *testing.T) {
	raw := `{"id":"e1","session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:15:27","ua":"x","n":{"k":[1]}}`
	ev, rs := theeye.ParseEvent([]byte(raw), time.Date(2021, 1, 1, 10, 0, 0, 0, time.UTC), theeye.DefaultPolicy())
	if len(rs) != 0 {
		t.Fatalf("reasons %v", rs)
	}
	if ev.ID != "e1" || len(ev.Extra) != 2 || ev.Extra[0].Key != "ua" || string(ev.Extra[1].Value) != `{"k":[1]}` {
		t.Fatalf("event = %+v", ev)
	}
}

// FuzzParseEvent: any input yields either a parsed event or reasons, never
// a panic, and a verdict that depends only on its inputs.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:15:27"}`), int64(1609492527000000000))
	f.Add([]byte(`{"data":{}}`), int64(0))
	f.Add([]byte(`[1,2]`), int64(-5))
	f.Fuzz(func(t *testing.T, raw []byte, recv int64) {
		r := time.Unix(0, recv).UTC()
		_, a := theeye.ParseEvent(raw, r, theeye.DefaultPolicy())
		_, b := theeye.ParseEvent(raw, r, theeye.DefaultPolicy())
		if strings.Join(reasonCodes(a), ",") != strings.Join(reasonCodes(b), ",") {
			t.Fatalf("verdict not deterministic: %v vs %v", a, b)
		}
		for _, reason := range a {
			if reason.Code == "" || reason.Message == "" {
				t.Fatalf("reason without code or message: %+v", reason)
			}
		}
		// The member walk agrees with encoding/json on what the object holds.
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			return
		}
		ev, _ := theeye.ParseEvent(raw, r, theeye.DefaultPolicy())
		for _, f := range ev.Extra {
			if !bytes.Equal(bytes.TrimSpace(m[f.Key]), f.Value) {
				t.Fatalf("extra %q = %s, encoding/json %s", f.Key, f.Value, m[f.Key])
			}
		}
		var sid string
		if json.Unmarshal(m["session_id"], &sid) == nil && sid != ev.SessionID {
			t.Fatalf("session_id %q, encoding/json %q", ev.SessionID, sid)
		}
	})
}

// FuzzParseValidEvent: on any bytes ParseValidEvent ends without a panic;
// on valid JSON (all the log holds) it gives exactly ParseEvent's event
// and verdict.
func FuzzParseValidEvent(f *testing.F) {
	f.Add([]byte(`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:15:27","x":[1,{"y":"\"}"}]}`), int64(1609492527000000000))
	f.Add([]byte(`{"a":`), int64(0))
	f.Add([]byte(`{"a"`), int64(0))
	f.Add([]byte(`{"\`), int64(0))
	f.Add([]byte(`{,`), int64(0))
	f.Fuzz(func(t *testing.T, raw []byte, recv int64) {
		r := time.Unix(0, recv).UTC()
		ev, reasons := theeye.ParseValidEvent(raw, r, theeye.DefaultPolicy())
		if !json.Valid(raw) {
			return
		}
		want, wantReasons := theeye.ParseEvent(raw, r, theeye.DefaultPolicy())
		if !reflect.DeepEqual(ev, want) || !reflect.DeepEqual(reasons, wantReasons) {
			t.Fatalf("ParseValidEvent %+v %v, ParseEvent %+v %v", ev, reasons, want, wantReasons)
		}
	})
}
