package theeye

// A small structural JSON scanner over bytes already known to be valid
// JSON (json.Valid). It finds where values start and end without decoding
// or allocating; ingest uses it to split bodies and ParseEvent to walk an
// event's members.

// SkipJSONSpace returns the index of the first non-whitespace byte at or
// after i.
func SkipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// JSONValueEnd returns the index just past the JSON value starting at
// b[i]. b must be valid JSON from i on.
func JSONValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return jsonStringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = jsonStringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) {
			switch b[i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// jsonStringEnd returns the index just past the string at b[i] == '"'.
func jsonStringEnd(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return i
}

// objectIter walks the members of a valid JSON object.
type objectIter struct {
	b []byte
	i int
}

// newObjectIter starts at the object's '{'; ok is false when b does not
// hold an object.
func newObjectIter(b []byte) (objectIter, bool) {
	i := SkipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return objectIter{}, false
	}
	return objectIter{b: b, i: i + 1}, true
}

// next returns the next member's raw key (with its quotes) and value.
func (it *objectIter) next() (key, value []byte, ok bool) {
	b := it.b
	i := SkipJSONSpace(b, it.i)
	if i >= len(b) || b[i] == '}' {
		return nil, nil, false
	}
	if b[i] == ',' {
		i = SkipJSONSpace(b, i+1)
	}
	kEnd := jsonStringEnd(b, i)
	key = b[i:kEnd]
	i = SkipJSONSpace(b, kEnd) + 1 // past ':'
	i = SkipJSONSpace(b, i)
	vEnd := JSONValueEnd(b, i)
	value = b[i:vEnd]
	it.i = vEnd
	return key, value, true
}
