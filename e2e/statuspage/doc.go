// Package statuspage holds a test, and nothing else, of the status page in
// a real browser.
package statuspage
