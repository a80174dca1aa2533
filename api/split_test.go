package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/theeye/theeye"
)

func TestSplitJSON(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     []string
		wantCode string
		detail   string // a detail key the error must carry
	}{
		{name: "object", body: ` {"a":1} `, want: []string{`{"a":1}`}},
		{name: "array", body: `[{"a":"]}"} , {"b":[1,{"c":2}]}]`, want: []string{`{"a":"]}"}`, `{"b":[1,{"c":2}]}`}},
		{name: "escaped quote", body: `[{"a":"x\"}"}]`, want: []string{`{"a":"x\"}"}`}},
		{name: "empty body", body: "  ", wantCode: theeye.EEmptyBatch},
		{name: "empty array", body: "[ ]", wantCode: theeye.EEmptyBatch},
		{name: "not json", body: `{"a":}`, wantCode: theeye.EInvalidJSON, detail: "offset"},
		{name: "scalar", body: `"hi"`, wantCode: theeye.ENotAnObject},
		{name: "element not object", body: `[{"a":1}, 2]`, wantCode: theeye.ENotAnObject, detail: "index"},
		{name: "too large", body: `[{"a":1},{"a":"` + strings.Repeat("x", 100) + `"}]`, wantCode: theeye.EEventTooLarge, detail: "index"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitJSON([]byte(tt.body), splitLimits{event: 64, events: 10000})
			if tt.wantCode != "" {
				e, ok := theeye.AsError(err)
				if !ok || e.Code != tt.wantCode {
					t.Fatalf("err = %v, want code %s", err, tt.wantCode)
				}
				if tt.detail != "" {
					if _, ok := e.Details[tt.detail]; !ok {
						t.Fatalf("error %v has no detail %q", e, tt.detail)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Errorf("event %d = %s, want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSplitJSONErrorNamesElement(t *testing.T) {
	_, err := splitJSON([]byte(`[{"a":1},{"b":2},"x"]`), splitLimits{event: 1024, events: 10000})
	e, _ := theeye.AsError(err)
	if e == nil || e.Details["index"] != 2 || !strings.Contains(e.Message, "element 2") {
		t.Fatalf("err = %v, want element 2 named", err)
	}
	_, err = splitJSON([]byte(`[{"a":1},{"b":2]`), splitLimits{event: 1024, events: 10000})
	e, _ = theeye.AsError(err)
	if e == nil || e.Details["offset"] != int64(15) {
		t.Fatalf("err = %#v, want offset 15", e)
	}
}

func TestSplitNDJSON(t *testing.T) {
	got, err := splitNDJSON([]byte("{\"a\":1}\r\n\n  {\"b\":2}\n"), splitLimits{event: 64, events: 10000})
	if err != nil || len(got) != 2 || string(got[1]) != `{"b":2}` {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, tc := range []struct{ body, code string }{
		{"{\"a\":1}\n{\"a\":\n", theeye.EInvalidJSON},
		{"{\"a\":1}\n[1]\n", theeye.ENotAnObject},
		{"\n\n", theeye.EEmptyBatch},
		{"{\"a\":\"" + strings.Repeat("y", 80) + "\"}", theeye.EEventTooLarge},
	} {
		_, err := splitNDJSON([]byte(tc.body), splitLimits{event: 64, events: 10000})
		if c := theeye.ErrorCode(err); c != tc.code {
			t.Errorf("body %q: code %q, want %q (%v)", tc.body, c, tc.code, err)
		}
	}
	_, err = splitNDJSON([]byte("{\"a\":1}\n{\"a\":1}\n{oops}\n"), splitLimits{event: 64, events: 10000})
	if e, _ := theeye.AsError(err); e == nil || e.Details["line"] != 3 {
		t.Fatalf("err = %v, want line 3", err)
	}
}

// FuzzSplitJSON checks the splitter against encoding/json: whatever it
// accepts is exactly the elements encoding/json sees, each an object.
func FuzzSplitJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[{"a":"x\"]"},{"b":{}}]`, `[]`, `[1]`, `{`, ` [ {"a" : [1,2,{"c":"}"}]} ] `, `"s"`, `[{"a":1},]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := splitJSON(body, splitLimits{event: 1 << 20, events: 10000})
		if err != nil {
			if _, ok := theeye.AsError(err); !ok {
				t.Fatalf("error is not a *theeye.Error: %v", err)
			}
			return
		}
		var want []json.RawMessage
		trimmed := bytes.TrimSpace(body)
		if trimmed[0] == '{' {
			want = []json.RawMessage{trimmed}
		} else if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("splitter accepted what encoding/json refuses: %v", err)
		}
		if len(events) != len(want) {
			t.Fatalf("got %d events, encoding/json %d", len(events), len(want))
		}
		for i := range events {
			if events[i][0] != '{' || !json.Valid(events[i]) {
				t.Fatalf("event %d is not a valid object: %q", i, events[i])
			}
			if !bytes.Equal(bytes.TrimSpace(want[i]), events[i]) {
				t.Fatalf("event %d = %q, encoding/json %q", i, events[i], want[i])
			}
		}
	})
}

func FuzzSplitNDJSON(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\n"))
	f.Add([]byte("\n{]\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := splitNDJSON(body, splitLimits{event: 1 << 20, events: 10000})
		if err != nil {
			if _, ok := theeye.AsError(err); !ok {
				t.Fatalf("error is not a *theeye.Error: %v", err)
			}
			return
		}
		for i, ev := range events {
			if ev[0] != '{' || !json.Valid(ev) {
				t.Fatalf("event %d is not a valid object: %q", i, ev)
			}
		}
	})
}
