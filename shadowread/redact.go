package shadowread

import (
	"fmt"
	"slices"
)

// minRedactionKey is the shortest key [WithRedactionKey] accepts, in bytes.
const minRedactionKey = 16

// WithSensitive marks the values at the given paths sensitive: the diff of
// a mismatch, wherever it goes (the log line, the [Mismatch] handed to the
// mismatch function), shows each of them as a short keyed hash such as
// "<redacted:1a2b3c4d>" instead of the value. Equal values hash alike and
// different values differently, so the diff still tells whether the two
// stores hold the same email, without showing it. Paths are written as
// for [WithIgnore] ("Email", "Address.Phone", "Contacts.*.Phone"); a path
// covers everything below it, and a map it names has its keys hidden too.
// A struct field tagged `cutover:"sensitive"` is sensitive without a path,
// in every reader of its type. Sensitive values are compared like any
// other. Paths that WithIgnore would reject make [New] fail.
func WithSensitive[T any](paths ...string) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.diff.Sensitive = append(c.diff.Sensitive, paths...) })
}

// WithRedactionKey sets the HMAC-SHA256 key of the hashes that stand for
// sensitive values, and for map keys when [WithoutDiffValues] is given.
// Without it the key is drawn at random once per process: hashes tell
// equal values from different ones within a process, but nobody can test
// guesses against them, and they differ from one process to the next. With
// a key of your own the hashes are the same in every instance and across
// restarts; whoever holds the key can test guesses of short values such
// as phone numbers, so keep it as secret as the values themselves. A key
// shorter than 16 bytes makes [New] fail; the key is copied.
func WithRedactionKey[T any](key []byte) Option[T] {
	key = slices.Clone(key)
	return optionFunc[T](func(c *config[T]) {
		c.diff.HashKey = key
		if len(key) < minRedactionKey {
			c.errs.Addf("WithRedactionKey: key of %d bytes; want at least %d", len(key), minRedactionKey)
		}
	})
}

// WithoutDiffValues makes the diff of a mismatch show no values at all:
// each line names the path and the kind of difference (".Email: values
// differ", ".Tags[2]: missing in new"), map keys in paths are shown as
// keyed hashes, and a difference between the stores' errors says which
// store failed, not what the errors said. Use it where no value read from
// a store may reach logs, or where the payload's sensitive fields cannot
// all be marked. Without it the diff shows values, except sensitive ones
// (see [WithSensitive]).
func WithoutDiffValues[T any]() Option[T] {
	return optionFunc[T](func(c *config[T]) { c.diff.HideValues = true })
}

// errorDiff returns the diff of two outcomes of which at least one is an
// error.
func (r *Reader[T]) errorDiff(old, new error) string {
	if r.comparer.HidesValues() {
		return "error: " + outcome(old) + " != " + outcome(new)
	}
	return fmt.Sprintf("error: %v != %v", errText(old), errText(new))
}

// outcome names, without its text, the outcome of a read.
func outcome(err error) string {
	if err == nil {
		return "<nil>"
	}
	return "<error>"
}
