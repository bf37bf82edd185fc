package expandcontract

import "fmt"

// KeyKind says how the keys of a table are read and passed around: as
// int64 values or as strings. The zero value is [IntKeys].
type KeyKind uint8

// The kinds of keys.
const (
	IntKeys  KeyKind = iota // integer keys, as int64
	TextKeys                // text keys, as string
)

// String returns "int", "text", or "KeyKind(N)" for a value that is not a
// kind.
func (k KeyKind) String() string {
	switch k {
	case IntKeys:
		return "int"
	case TextKeys:
		return "text"
	}
	return fmt.Sprintf("KeyKind(%d)", uint8(k))
}

// KeyRange is a range of keys: those after From, which is not in the range
// (nil: from the first key), up to and including To (nil: to the last
// key). Keys are int64 or string values, as their [KeyKind] says.
type KeyRange struct {
	From, To any
}
