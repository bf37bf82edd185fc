package meta

// Handle is one migration of a store: what a *expandcontract.Migration
// holds.
type Handle struct {
	Store *Store
	Name  string
}

// handleOf returns the handle inside a *expandcontract.Migration, or nil for
// a nil one. Package expandcontract sets it when it is initialised, so that
// its sub-packages take a *expandcontract.Migration and reach the store
// behind it without expandcontract exporting anything of this package.
var handleOf func(m any) *Handle

// SetHandleOf sets the function behind [HandleOf]. Only package
// expandcontract calls it, once, from an init function.
func SetHandleOf(f func(m any) *Handle) { handleOf = f }

// HandleOf returns the handle inside m, a *expandcontract.Migration, or nil
// if m is nil.
func HandleOf(m any) *Handle { return handleOf(m) }
