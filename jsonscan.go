package theeye

// A small structural JSON scanner over bytes already known to be valid
// JSON (json.Valid). It finds where values start and end without decoding
// or allocating; ingest uses it to split bodies and ParseEvent to walk an
// event's members. On bytes that are not valid JSON its answers mean
// nothing, but it never reads out of bounds and always ends (FuzzParseValidEvent).

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
	if i >= len(b) {
		return len(b)
	}
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
	return len(b)
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

// closed reports, once next has returned false, whether the object ended
// with its '}' and nothing but white space after it.
func (it *objectIter) closed() bool {
	return it.i < len(it.b) && it.b[it.i] == '}' && SkipJSONSpace(it.b, it.i+1) == len(it.b)
}

// next returns the next member's raw key (with its quotes) and value.
func (it *objectIter) next() (key, value []byte, ok bool) {
	b := it.b
	i := SkipJSONSpace(b, it.i)
	if i >= len(b) || b[i] == '}' {
		it.i = i
		return nil, nil, false
	}
	if b[i] == ',' {
		i = SkipJSONSpace(b, i+1)
	}
	if i >= len(b) {
		return nil, nil, false
	}
	kEnd := jsonStringEnd(b, i)
	key = b[i:kEnd]
	i = min(SkipJSONSpace(b, kEnd)+1, len(b)) // past ':'
	i = SkipJSONSpace(b, i)
	vEnd := JSONValueEnd(b, i)
	value = b[i:vEnd]
	it.i = vEnd
	return key, value, true
}
