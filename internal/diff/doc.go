// Package diff is the comparison engine behind shadow reads: it decides
// whether the value one store returned equals the value the other store
// returned, and, when they differ, writes a short report naming each
// differing field.
//
// A [Comparer] is built once by [Compile] from [Options] and is then safe for
// concurrent use. [Comparer.Equal] answers the question; [Comparer.Diff]
// explains the answer. They always agree: Equal(a, b) is true exactly when
// Diff(a, b) is "".
//
// # Old and new
//
// Both methods take the old store's value first and the new store's value
// second, whichever store is authoritative in the current stage, so a report
// reads the same way in every stage:
//
//	.Email: "a@x.org" != "b@x.org"
//	.Tags[2]: missing in new (old: "admin")
//	.Meta["plan"]: missing in old (new: "pro")
//	.Items[0].Price: 10 != 12
//	: <nil> != &User{ID:7, Name:"Ann"}
//
// Each line starts with the path of a difference from the root: ".Name" for
// a struct field, "[3]" for a slice or array element, `["k"]` for a map key.
// Pointers and interfaces add nothing to a path. A difference at the root
// has the empty path, hence the line starting with ": ".
//
// # What counts as equal
//
// The rules are those of [reflect.DeepEqual], with three exceptions:
//
//   - A type whose method set has a method Equal(T) bool, such as
//     [time.Time], is compared by calling that method rather than field by
//     field, so two times for the same instant in different locations are
//     equal. Reflection cannot call methods of values reached through
//     unexported struct fields; such values are compared field by field.
//     Ignore rules do not reach inside a value compared by its Equal method.
//     If the method panics, the values are compared field by field instead.
//   - A floating-point NaN equals any other NaN (also in complex numbers):
//     two stores that both hold NaN hold the same thing. Map keys are the
//     exception: a NaN key never matches another key, so a map with a NaN
//     key differs even from a copy of itself, unless both sides are the
//     same map.
//   - Fields, elements and keys matched by an ignore rule are skipped
//     (see [Options.Ignore]).
//
// As in reflect.DeepEqual, a nil slice differs from an empty one, and a nil
// map from an empty one; the report says "nil != empty" (or "empty != nil").
// When one side is nil and the other holds elements, the elements are
// reported as missing instead. If every element of the non-nil side is
// ignored, the difference in nil-ness remains and is reported as
// "nil != non-nil (every element ignored)".
//
// Funcs are equal only when both are nil; channels and unsafe pointers are
// equal when they are the same. Pointers are equal when they point to equal
// values; cycles are detected the way reflect.DeepEqual detects them, so
// cyclic values compare without hanging. With ignore rules, a pair of
// pointers is compared once for each set of rules that can still apply
// below it, so in a cyclic value the same difference may be listed under
// more than one path.
//
// # Hidden values
//
// A report shows values, since they are what tells why two answers differ,
// except the sensitive ones: those of struct fields tagged
// `cutover:"sensitive"` (an option among others separated by commas, as
// in `cutover:"sensitive,other"`), wherever their struct is met, and those
// below the paths of [Options.Sensitive]. Everything below a sensitive
// field is sensitive too, including the keys of a sensitive map. A
// sensitive value is shown as a keyed hash, "<redacted:1a2b3c4d>": the
// first 8 hex digits of its HMAC-SHA256 under [Options.HashKey] (by
// default a key drawn at random once per process). Equal values have the
// same hash and different values different ones, so a report still says
// whether the old store's email equals the new store's in another line, or
// which of two elements moved, without saying what the email is. A nil
// sensitive value is shown as <nil>; one too large to hash (64 KiB of text
// or 4096 values) as <redacted>; a hash that the cap on a value shown
// would cut is left out. Long sensitive strings are not shown around their
// first difference. A value shown whole, such as an element missing on one
// side, shows its sensitive fields as hashes, and a type with a String or
// Error method is then shown field by field rather than by the method,
// which could print them.
//
// With [Options.HideValues] a report shows no values at all: each line
// names the path and the kind of difference, such as ".Email: values
// differ", ".Tags[2]: missing in new" or ".Extra: types differ: int !=
// string", and every map key in a path is shown as a hash.
//
// What is hidden changes what a report shows, never what is equal: Equal
// is the same with and without these options.
//
// # Limits
//
// The cost of a comparison is bounded whatever the values hold. One walk
// over the two values follows at most [Options.MaxDepth] levels of nesting
// ([DefaultMaxDepth] unless set) and does at most [Options.MaxWork] units
// of work ([DefaultMaxWork]): one per pair of values, one per map entry,
// one per KiB of strings and byte slices. Equal makes one walk; Diff and
// Compare make at most two.
//
// A value nested deeper than the limit is not followed and the walk goes on
// with the rest; once the work is spent the walk ends. Either way, unless a
// difference was found anyway, the values count as differing: Equal
// reports false, and [Comparer.Compare] returns a [*LimitError] next to a
// report whose last line names the limit and the path where the walk
// stopped:
//
//	comparison stopped: depth limit 1000 exceeded at .Next.Next.Next...
//	comparison stopped: work limit 100000 exceeded at .Meta
//
// A map is charged for all its entries before any is read, so two maps of
// millions of entries stop the walk at once instead of costing seconds. A
// map is never sorted whole unless it is small: the differing entries are
// found in the map's own order and only those the report lists are put in
// key order. A map of more than 1024 entries is shown by its length.
//
// # The report
//
// Differences are listed in a fixed order: struct fields in declaration
// order, elements by index, map keys sorted (numbers by value, strings
// lexically; pointer and channel keys by address, which is the one source of
// varying order). At most [Options.MaxDiffs] differences are listed; a final
// line "... and N more differences" counts the rest. The whole report is then
// cut to [Options.MaxBytes] bytes on a UTF-8 boundary, with "..." appended
// when it was cut. Every value shown is cut to 64 runes; strings are quoted
// as by %q. When a string longer than that differs, the report shows the
// byte offset of the first difference and the text from a little before it.
// Values of types with a String or Error method are shown with that method
// when reflection allows the call; other values are shown in a Go-like
// syntax with package names left out of type names (User{ID:1}, not
// mypkg.User{ID:1}) and nested pointers followed rather than printed as
// addresses.
package diff
