// Package statuspage serves the status of the migrations of an
// [expandcontract.Store] over HTTP, for operators: an HTML page and a JSON
// document per migration and for all of them, and, when the service
// enables them, the actions that steer a migration without writing Go.
//
// # Mounting
//
// [New] returns an [http.Handler] that answers paths relative to where it
// is mounted, as [http.FileServer] does, so mount it below a prefix with
// [http.StripPrefix], the way net/http/pprof is mounted at /debug/pprof/:
//
//	page, err := statuspage.New(store)
//	if err != nil {
//		return err
//	}
//	mux.Handle("/debug/cutover/", http.StripPrefix("/debug/cutover", page))
//
// Every link, form and redirect of the page is relative, so any prefix
// works without telling the page what it is, and so does stripping the
// prefix with its slash ("/debug/cutover/"). The page shows the
// metadata as it is, actors and reasons included, and checks nobody's
// right to read it: mount it where only operators reach it, or behind the
// service's own authentication, as pprof.
//
// # Paths
//
// Below the prefix:
//
//	GET  /                      every migration, as HTML
//	GET  /status.json           every migration, as JSON
//	GET  /m/NAME/               one migration, as HTML (/m/NAME redirects here)
//	GET  /m/NAME/status.json    one migration, as JSON
//	POST /m/NAME/pause          pause the backfill          fields: reason
//	POST /m/NAME/resume         resume it                   fields: reason
//	POST /m/NAME/rate           set its rate limit          fields: rate (rows/s, 0 for none), reason
//	POST /m/NAME/batch-size     set its batch size          fields: size (keys, 0 for the runner's own), reason
//	POST /m/NAME/move           move the phase one step     fields: to (a phase), version, reason
//	POST /m/NAME/lift           lift the stage ceiling      fields: reason
//
// NAME is the migration's name, escaped as a path segment (url.PathEscape:
// "users/email" is users%2Femail). HEAD works wherever GET does. A page
// that does not exist, or a migration that does not, is 404 Not Found; a
// method a path does not take is 405 Method Not Allowed, with Allow. A
// database error is 500 Internal Server Error with a short message, and
// the error itself goes to the log ([WithLogger]). The JSON paths answer
// errors as {"error": "..."}.
//
// The HTML pages are drawn with html/template and work without JavaScript:
// the progress bar is a progress element and the charts of the backfill
// rate and of the repair backlog over the recent past are inline SVG drawn
// on the server. Every answer carries a Content-Security-Policy that allows
// no script at all, no frame and nothing from another origin, with the
// page's one style sheet allowed by its hash.
//
// # JSON
//
// The JSON documents are expandcontract.Status written out: times in RFC
// 3339 (UTC, fractions of a second when there are any, null when there is
// none), durations in seconds, phases and stages by name. The schema is in
// docs/status.md; fields are only ever added to it, never renamed, removed
// or given another meaning.
//
// # Actions
//
// The page is read-only unless [WithActions] gives it a function that
// authorises each action and names the actor that the migration's history
// records. Then the migration's page has forms to pause and resume the
// backfill, set its rate limit and batch size, and move the phase one step
// forward or back (never forced), and, while a stage ceiling is in force,
// to lift it. An action is refused, and nothing
// changed, with
//
//   - 405 Method Not Allowed unless it is a POST;
//   - 403 Forbidden if actions are not enabled, if the request comes from
//     another origin (its Sec-Fetch-Site header, or else its Origin header
//     against the request's Host; see [http.CrossOriginProtection]: a
//     request with neither, from a client that is no browser, passes), or
//     if the authorisation refuses it, with its error's text;
//   - 400 Bad Request, with a message naming the field, for a body that is
//     not a form (application/x-www-form-urlencoded) or is larger than 16
//     KiB, an unknown or repeated field, a number that is not one, negative
//     or too large, an unknown phase, or a reason longer than 1000 bytes or
//     holding control characters;
//   - 404 Not Found for an unknown migration;
//   - 409 Conflict for a move that expandcontract refuses (a guard, an
//     illegal move, or a version that is no longer the migration's): the
//     answer is the migration's page with the refusal's message above it.
//
// An action that is applied answers 303 See Other back to the migration's
// page, is recorded in the history with the actor and reason, and is
// logged.
package statuspage
