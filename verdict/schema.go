package verdict

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/theeye/theeye"
)

// CompiledSchema is a schema ready to judge data. It is safe for concurrent
// use.
type CompiledSchema struct {
	s *jsonschema.Schema
}

// schemaURL is the name a schema is compiled under; nothing is fetched.
const schemaURL = "theeye:schema.json"

// maxSchemaDepth bounds the nesting of a schema document before the
// compiler sees it.
const maxSchemaDepth = 64

// CompileSchema compiles a JSON Schema document (draft 2020-12 unless its
// $schema names another draft the library knows, such as draft-07). No
// $ref is ever loaded from the network or the file system: only the
// document itself and the embedded meta-schemas resolve. The result depends
// only on the bytes, so every node reaches the same verdict. An error is a
// *theeye.Error with code EInvalidRequest and the compiler's message.
func CompileSchema(raw []byte) (*CompiledSchema, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, theeye.Errorf(theeye.EInvalidRequest, "schema is empty")
	}
	if err := checkDepth(raw); err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, theeye.Errorf(theeye.EInvalidRequest, "schema is not JSON: %v", err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, theeye.Errorf(theeye.EInvalidRequest, "schema must be a JSON object (or a boolean), got %s", theeye.JSONKind(raw))
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, theeye.Errorf(theeye.EInvalidRequest, "schema: %v", err)
	}
	s, err := compile(c)
	if err != nil {
		return nil, theeye.Errorf(theeye.EInvalidRequest, "schema does not compile: %s", strings.ReplaceAll(err.Error(), schemaURL, "schema"))
	}
	return &CompiledSchema{s: s}, nil
}

// compile turns a compiler panic (a library bug on a malformed schema) into
// an error: a bad schema must never take a node down.
func compile(c *jsonschema.Compiler) (s *jsonschema.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compiler failed: %v", r)
		}
	}()
	return c.Compile(schemaURL)
}

// checkDepth refuses documents nested deeper than maxSchemaDepth.
func checkDepth(raw []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > maxSchemaDepth {
				return theeye.Errorf(theeye.EInvalidRequest, "schema is nested deeper than %d levels", maxSchemaDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// noLoader refuses every URL: schemas may only refer to themselves.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, errors.New("loading " + url + " is disabled: a schema may only $ref itself or a standard meta-schema")
}

// Validate judges data (the raw JSON of an event's "data") and returns one
// schema_violation Reason per failing leaf of the schema, each with the
// JSON pointer of the failing value from the event's root (/data/...) and
// the failing keyword in its message.
func (c *CompiledSchema) Validate(data []byte) []theeye.Reason {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return []theeye.Reason{{Code: theeye.ReasonSchemaViolation, Field: "/data", Message: "data is not JSON: " + err.Error()}}
	}
	err = c.s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []theeye.Reason{{Code: theeye.ReasonSchemaViolation, Field: "/data", Message: err.Error()}}
	}
	p := message.NewPrinter(language.English)
	var out []theeye.Reason
	collectLeaves(ve, p, &out)
	if len(out) == 0 {
		out = append(out, theeye.Reason{Code: theeye.ReasonSchemaViolation, Field: "/data", Message: ve.Error()})
	}
	return out
}

func collectLeaves(e *jsonschema.ValidationError, p *message.Printer, out *[]theeye.Reason) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collectLeaves(c, p, out)
		}
		return
	}
	field := "/data" + pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		missing := append([]string(nil), k.Missing...)
		sort.Strings(missing)
		for _, m := range missing {
			*out = append(*out, theeye.Reason{Code: theeye.ReasonSchemaViolation, Field: field + "/" + theeye.EscapePointer(m),
				Message: fmt.Sprintf("required: missing property %q", m)})
		}
		return
	case *kind.Type:
		*out = append(*out, theeye.Reason{Code: theeye.ReasonSchemaViolation, Field: field,
			Message: fmt.Sprintf("type: want %s, got %s", strings.Join(k.Want, " or "), k.Got)})
		return
	case *kind.FalseSchema:
		*out = append(*out, theeye.Reason{Code: theeye.ReasonSchemaViolation, Field: field, Message: "false schema: no value is allowed here"})
		return
	}
	kw := strings.Join(e.ErrorKind.KeywordPath(), "/")
	if kw == "" {
		kw = "schema"
	}
	*out = append(*out, theeye.Reason{Code: theeye.ReasonSchemaViolation, Field: field, Message: kw + ": " + e.ErrorKind.LocalizedString(p)})
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(theeye.EscapePointer(t))
	}
	return b.String()
}
