package index

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/theeye/theeye"
)

// checkJSONString checks that appendJSONString(s) is valid JSON that
// decodes to what json.Marshal(s) decodes to.
func checkJSONString(t *testing.T, s string) {
	t.Helper()
	out := appendJSONString([]byte("x"), s)[1:]
	if !json.Valid(out) {
		t.Fatalf("appendJSONString(%q) = %s: not valid JSON", s, out)
	}
	if bytes.ContainsAny(out, "\n\r") {
		t.Fatalf("appendJSONString(%q) = %s: holds a line break", s, out)
	}
	var got, want string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	ref, _ := json.Marshal(s)
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("appendJSONString(%q) decodes to %q, json.Marshal to %q", s, got, want)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted"`, `back\slash`, "nl\nrc\rtab\t", "\x00\x01\x1f\x7f",
		"<html>&", "é日本", "\u2028\u2029", "bad\xffutf8\xc3", "\xed\xa0\x80"} {
		checkJSONString(t, s)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		checkJSONString(t, string(b))
	}
	if got := string(appendJSONString(nil, "a\"b\\c\nd\x01")); got != `"a\"b\\c\nd\u0001"` {
		t.Errorf("got %s", got)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("hello \"world\"\n")
	f.Add("\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

func TestAppendEvent(t *testing.T) {
	recv := time.Date(2021, 1, 1, 9, 15, 30, 0, time.UTC)
	raw := `{"session_id":"s1","category":"page interaction","name":"pageview",
	  "data": {
	    "host": "www.example.com", "path": "/"
	  },
	  "timestamp":"2021-01-01 09:15:27.243860","ua":"Mozilla","n":[1, 2],"quote\"key":{"a":
	  1}}`
	env := mkEnv("shop-web", recv, raw)
	ev, reasons := theeye.ParseEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
	if len(reasons) != 0 {
		t.Fatalf("reasons: %v", reasons)
	}
	out := appendEvent(nil, 42, &env, &ev)
	if bytes.ContainsAny(out, "\n\r") {
		t.Errorf("rendered event spans lines: %s", out)
	}
	want := `{"seq":42,"id":"` + ulid.ULID(env.ID).String() + `","app":"shop-web","session_id":"s1",` +
		`"category":"page interaction","name":"pageview","data":{"host":"www.example.com","path":"/"},` +
		`"timestamp":"2021-01-01T09:15:27.24386Z","received_at":"2021-01-01T09:15:30Z",` +
		`"ua":"Mozilla","n":[1, 2],"quote\"key":{"a":1}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}

	// A client id replaces the server's.
	env = mkEnv("shop-web", recv, `{"id":"c-1","session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01T09:15:00Z"}`)
	ev, _ = theeye.ParseEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
	if out := appendEvent(nil, 1, &env, &ev); !strings.HasPrefix(string(out), `{"seq":1,"id":"c-1",`) {
		t.Errorf("client id not used: %s", out)
	}
}

func TestAppendErrorRecord(t *testing.T) {
	recv := time.Date(2021, 1, 1, 9, 15, 30, 0, time.UTC)
	f := func(raw, wantEvent string) {
		t.Helper()
		env := mkEnv("app", recv, raw)
		ev, reasons := theeye.ParseEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
		if len(reasons) == 0 {
			t.Fatalf("%s: no reasons", raw)
		}
		out := appendErrorRecord(nil, 7, &env, &ev, reasons)
		if !json.Valid(out) || bytes.ContainsAny(out, "\n\r") {
			t.Fatalf("record is not one line of JSON: %s", out)
		}
		var rec errRecord
		if err := json.Unmarshal(out, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Seq != 7 || rec.App != "app" || !rec.ReceivedAt.Equal(recv) || len(rec.Reasons) != len(reasons) {
			t.Errorf("record %s", out)
		}
		if string(rec.Event) != wantEvent {
			t.Errorf("event = %s, want %s", rec.Event, wantEvent)
		}
	}
	f(`{"session_id": 1}`, `{"session_id": 1}`)
	f("{\n\"a\":\n1}", `{"a":1}`)
	f(`{"a":`, `"{\"a\":"`)
	f("not json\n", `"not json"`)
	f(`[1,2]`, `[1,2]`)
}
