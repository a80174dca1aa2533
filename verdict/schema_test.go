package verdict_test

import (
	"testing"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/verdict"
)

func TestCompileSchemaAndValidate(t *testing.T) {
	s, err := verdict.CompileSchema([]byte(`{"type":"object","required":["form"],"properties":{"form":{"type":"object",
		"required":["first_name","last_name"],"properties":{"first_name":{"type":"string"},"age":{"type":"integer","minimum":0}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Validate([]byte(`{"form":{"first_name":"John","last_name":"Doe"}}`)); r != nil {
		t.Fatalf("valid data: %v", r)
	}
	got := s.Validate([]byte(`{"form":{"first_name":12,"age":-1}}`))
	want := map[string]string{
		"/data/form/first_name": "type: want string, got number",
		"/data/form/last_name":  `required: missing property "last_name"`,
		"/data/form/age":        "minimum: ",
	}
	if len(got) != len(want) {
		t.Fatalf("reasons %+v, want %d", got, len(want))
	}
	for _, r := range got {
		w, ok := want[r.Field]
		if r.Code != theeye.ReasonSchemaViolation || !ok || len(r.Message) < len(w) || r.Message[:len(w)] != w {
			t.Errorf("reason %+v, want field in %v", r, want)
		}
	}
	if got := s.Validate([]byte(`{}`)); len(got) != 1 || got[0].Field != "/data/form" {
		t.Errorf("missing form: %+v", got)
	}
}

func TestCompileSchemaDrafts(t *testing.T) {
	for _, doc := range []string{
		`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{"type":"string"}}}`,
		`{"$schema":"https://json-schema.org/draft/2020-12/schema","prefixItems":[{"type":"string"}]}`,
		`{"$defs":{"s":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/s"}}}`,
		`true`,
	} {
		if _, err := verdict.CompileSchema([]byte(doc)); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
}

func TestCompileSchemaRefusals(t *testing.T) {
	for _, doc := range []string{
		`{"type": 12}`,
		`{"type":"strin"}`,
		`{"$ref":"https://example.com/remote.json"}`,
		`{"$ref":"file:///etc/passwd"}`,
		`{"minimum":"x"}`,
		`[1,2]`,
		`"string"`,
		`{"pattern":"("}`,
		`{`,
		``,
	} {
		_, err := verdict.CompileSchema([]byte(doc))
		if theeye.ErrorCode(err) != theeye.EInvalidRequest {
			t.Errorf("%s: %v, want an invalid_request error", doc, err)
		}
	}
}

// FuzzCompileSchema: whatever is registered, compiling it gives a schema
// or an invalid_request error, and a compiled schema judges data without
// panicking.
func FuzzCompileSchema(f *testing.F) {
	for _, s := range []string{
		`{"type":"object","required":["form"],"properties":{"form":{"type":"object"}}}`,
		`{"type": 12}`, `{"$ref":"#/definitions/x"}`, `{"$ref":"http://x/y"}`, `{"allOf":[{"type":"string"},{"minLength":2}]}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"type":"string"}]}`, `{"pattern":"["}`, `true`, `[]`,
		`{"$id":"http://a/b","$ref":"c"}`, `{"format":"email"}`, `{"$dynamicRef":"#x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := verdict.CompileSchema(raw)
		if err != nil {
			if theeye.ErrorCode(err) != theeye.EInvalidRequest {
				t.Fatalf("error %v has code %s", err, theeye.ErrorCode(err))
			}
			return
		}
		for _, d := range []string{`{}`, `{"a":1,"form":{"first_name":2}}`, `{"x":[1,"a",null,{"y":true}]}`} {
			for _, r := range s.Validate([]byte(d)) {
				if r.Code != theeye.ReasonSchemaViolation || len(r.Field) < 5 || r.Field[:5] != "/data" {
					t.Fatalf("reason %+v", r)
				}
			}
		}
	})
}
