package statuspage

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
)

// css is the page's one style sheet. It is inlined in every page and
// allowed by its hash in the Content-Security-Policy, which allows no
// other style, no script and nothing from elsewhere.
const css = `
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa;
  --accent: #0969da; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #fff; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1.2em; border-bottom: 1px solid var(--line); background: var(--bg); }
header .home { font-weight: 600; color: var(--fg); text-decoration: none; }
header .json { margin-left: auto; }
main { padding: 1em 1.2em 3em; max-width: 1100px; }
a { color: var(--accent); }
h1 { font-size: 1.5em; margin: .2em 0 .3em; }
h2 { font-size: 1.1em; margin: 0 0 .5em; }
.meta { color: var(--muted); margin: 0 0 1em; }
.phase { display: inline-block; padding: .05em .55em; border-radius: 1em; background: #ddf4ff; color: #0550ae; font-size: .8em; vertical-align: middle; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1em; }
section { border: 1px solid var(--line); border-radius: 6px; padding: .8em 1em; margin-bottom: 1em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .5em 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
progress { width: 100%; height: 1.1em; accent-color: var(--accent); }
.bar { display: flex; gap: .6em; align-items: center; }
.bar progress { flex: 1; min-width: 8em; }
.state { font-weight: 600; }
.state.running, .clean { color: var(--ok); }
.state.paused, .state.idle, .state.throttled, .stuck { color: var(--warn); }
.state.canceled, .dirty { color: var(--bad); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3em .6em .3em 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; }
td.detail { color: var(--muted); overflow-wrap: anywhere; }
figure { margin: .6em 0 0; }
figcaption { color: var(--muted); font-size: .9em; }
svg.chart { display: block; max-width: 100%; height: auto; background: var(--bg); border-radius: 4px; }
svg.chart .axis { stroke: var(--line); stroke-width: 1; }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; stroke-linejoin: round; }
svg.chart .area { fill: #0969da22; stroke: none; }
svg.chart .dot { fill: var(--accent); }
svg.chart text { font-size: 10px; fill: var(--muted); }
.notice, .message, .ceiling { padding: .6em .9em; border-radius: 6px; border: 1px solid; }
.notice, .ceiling { background: #fff8c5; border-color: #d4a72c; }
.message { background: #ffebe9; border-color: #ff8182; }
form { display: flex; flex-wrap: wrap; gap: .5em; align-items: center; margin: .4em 0; }
form label { color: var(--muted); }
input[type=text], input[type=number] { padding: .25em .4em; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
input[name=reason] { min-width: 16em; }
input[type=number] { width: 17em; }
button { padding: .3em .8em; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); font: inherit; cursor: pointer; }
button:hover { border-color: var(--accent); }
`

// contentSecurityPolicy is the policy of every answer.
var contentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(css))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

// pageTemplate draws every HTML page. It has no script and no inline
// event handler, and works without JavaScript.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{{.Title}}</title>
<style>` + css + `</style>
</head>
<body>
<header>
<a class="home" href="{{.Root}}">cutover migrations</a>
{{with .M}}<span>› {{.Name}}</span>{{end}}
{{if .JSON}}<a class="json" href="{{.JSON}}">JSON</a>{{end}}
</header>
<main>
{{if .Message}}<p class="message" role="alert" id="message">{{.Message}}</p>
<p><a href="./">Back to the page</a></p>
{{else if .M}}{{template "migration" .}}
{{else}}{{template "index" .}}
{{end}}
</main>
</body>
</html>
{{- define "index"}}<h1>Migrations</h1>
{{if .Migrations}}<table id="migrations">
<thead><tr><th>migration</th><th>phase</th><th>backfill</th><th>verification</th><th>repairs</th><th>instances</th></tr></thead>
<tbody>
{{range .Migrations}}<tr>
<td><a href="{{.Href}}">{{.Name}}</a></td>
<td><span class="phase">{{.Phase}}</span></td>
<td>{{template "bar" .Backfill}}</td>
<td>{{template "verdict" .Verification}}</td>
<td>{{.Repairs.Summary}}</td>
<td>{{len .Instances}}</td>
</tr>
{{end}}</tbody>
</table>
{{else}}<p>No migration yet.</p>
{{end}}{{end}}

{{- define "bar"}}<div class="bar">
{{if .Total}}<progress max="{{.Total}}" value="{{.Rows}}" aria-label="backfill progress">{{.Percent}}</progress><span>{{.Percent}}</span>
{{else}}<progress aria-label="backfill progress">{{.State}}</progress>
{{end}}<span class="state {{.State}}">{{.State}}</span>
</div>{{end}}

{{- define "verdict"}}{{if .Never}}<span>never verified</span>{{else if .Clean}}<span class="clean">{{.Summary}}</span>{{else}}<span class="dirty">{{.Summary}}</span>{{end}}{{end}}

{{- define "chart"}}<figure>
<svg id="{{.ID}}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.W}} {{.H}}" width="{{.W}}" height="{{.H}}" role="img" aria-label="{{.Label}}">
<title>{{.Caption}}</title>
<line class="axis" x1="{{.X0}}" y1="{{.Y0}}" x2="{{.X0}}" y2="{{.Y1}}"/>
<line class="axis" x1="{{.X0}}" y1="{{.Y1}}" x2="{{.X1}}" y2="{{.Y1}}"/>
<text x="{{.X0}}" y="{{.YMaxY}}" dx="-4" text-anchor="end">{{.YMax}}</text>
<text x="{{.X0}}" y="{{.Y1}}" dx="-4" text-anchor="end">0</text>
{{if .Empty}}<text class="empty" x="{{.X1}}" y="{{.Y0}}" dx="-4" dy="20" text-anchor="end">no samples yet</text>
{{else}}<polygon class="area" points="{{.Area}}"/>
<polyline class="line" points="{{.Line}}"/>
<circle class="dot" cx="{{.LastX}}" cy="{{.LastY}}" r="3"/>
<text x="{{.X0}}" y="{{.TimeY}}">{{.From}}</text>
{{end}}<text x="{{.X1}}" y="{{.TimeY}}" text-anchor="end">{{.To}}</text>
</svg>
<figcaption>{{.Caption}}</figcaption>
</figure>{{end}}

{{- define "migration"}}{{$actions := .Actions}}{{with .M}}
<h1 id="name">{{.Name}} <span class="phase" id="phase">{{.Phase}}</span></h1>
<p class="meta">version {{.Version}} · stages allowed: {{.Stages}} · created {{.Created}} · updated {{.Updated}} · read at {{.Read}}</p>
{{if .Ceiling}}<p class="ceiling" role="status" id="ceiling">Demoted: {{.Ceiling}}</p>
{{end}}{{end}}{{if .Notice}}<p class="notice" role="alert" id="notice">{{.Notice}}</p>
{{end}}{{with .M}}<div class="grid">
<section id="backfill">
<h2>Backfill</h2>
{{template "bar" .Backfill}}
<dl>
<dt>copied</dt><dd id="backfill-rows">{{.Backfill.Done}}</dd>
<dt>rate</dt><dd id="backfill-rate">{{.Backfill.Rate}}</dd>
<dt>ETA</dt><dd id="backfill-eta">{{.Backfill.ETA}}</dd>
<dt>state</dt><dd id="backfill-state" class="state {{.Backfill.State}}">{{.Backfill.State}}</dd>
{{if .Backfill.Throttled}}<dt>throttled</dt><dd id="backfill-throttled">{{.Backfill.Throttled}}</dd>
{{end}}<dt>lease</dt><dd id="backfill-lease">{{.Backfill.Lease}}</dd>
<dt>rate limit</dt><dd id="backfill-rate-limit">{{.Backfill.RateLimit}}</dd>
<dt>batch size</dt><dd id="backfill-batch-size">{{.Backfill.BatchSize}}</dd>
<dt>started</dt><dd>{{.Backfill.Started}}</dd>
<dt>finished</dt><dd>{{.Backfill.Finished}}</dd>
{{if .Backfill.Checkpoint}}<dt>checkpoint</dt><dd>{{.Backfill.Checkpoint}}</dd>
{{end}}</dl>
{{template "chart" .RateChart}}
</section>
<section id="verification">
<h2>Verification</h2>
{{with .Verifying}}<div class="bar" id="verifying">
{{if .Total}}<progress max="{{.Total}}" value="{{.Rows}}" aria-label="verification progress">{{.Percent}}</progress><span>{{.Percent}}</span>
{{else}}<progress aria-label="verification progress">running</progress>
{{end}}<span class="state running">running</span>
</div>
<dl>
<dt>compared</dt><dd id="verifying-rows">{{.Compared}}</dd>
<dt>rate</dt><dd id="verifying-rate">{{.Rate}}</dd>
<dt>ETA</dt><dd id="verifying-eta">{{.ETA}}</dd>
<dt>run by</dt><dd id="verifying-owner">{{.Owner}}</dd>
<dt>started</dt><dd>{{.Started}}</dd>
<dt>last progress</dt><dd>{{.Updated}}</dd>
</dl>
<h3>Last result</h3>
{{end}}<p>{{template "verdict" .Verification}}</p>
{{if not .Verification.Never}}<dl>
<dt>at</dt><dd>{{.Verification.At}}</dd>
<dt>rows compared</dt><dd>{{.Verification.Rows}}</dd>
<dt>differences</dt><dd id="verification-differences">{{.Verification.Differences}}</dd>
{{if .Verification.Detail}}<dt>detail</dt><dd>{{.Verification.Detail}}</dd>
{{end}}</dl>
{{end}}</section>
<section id="repairs">
<h2>Repair backlog</h2>
<dl>
<dt>pending</dt><dd id="repairs-pending">{{.Repairs.Pending}}</dd>
<dt>stuck</dt><dd id="repairs-stuck"{{if ne .Repairs.Stuck "0"}} class="stuck"{{end}}>{{.Repairs.Stuck}}</dd>
<dt>oldest</dt><dd id="repairs-oldest">{{.Repairs.Oldest}}</dd>
</dl>
{{template "chart" .BacklogChart}}
</section>
<section id="instances">
<h2>Instances</h2>
{{if .Instances}}<table>
<thead><tr><th>stage</th><th>instances</th></tr></thead>
<tbody>{{range .ByStage}}<tr><td>{{.Stage}}</td><td>{{.N}}</td></tr>{{end}}</tbody>
</table>
<table>
<thead><tr><th>instance</th><th>stage</th><th>seen</th></tr></thead>
<tbody>{{range .Instances}}<tr><td>{{.ID}}</td><td>{{.Stage}}</td><td>{{.Seen}}</td></tr>{{end}}</tbody>
</table>
{{else}}<p>No instance reported a stage lately.</p>
{{end}}</section>
</div>
{{if $actions}}<section id="actions">
<h2>Actions</h2>
{{if eq .Backfill.State "paused"}}<form method="post" action="resume">
<input type="text" name="reason" placeholder="reason" aria-label="reason for resuming">
<button type="submit" id="resume">Resume backfill</button>
</form>
{{else}}<form method="post" action="pause">
<input type="text" name="reason" placeholder="reason" aria-label="reason for pausing">
<button type="submit" id="pause">Pause backfill</button>
</form>
{{end}}<form method="post" action="rate">
<label for="rate">rate limit</label>
<input type="number" id="rate" name="rate" min="0" step="any" required placeholder="rows/s, 0 for none">
<input type="text" name="reason" placeholder="reason" aria-label="reason for the rate limit">
<button type="submit">Set rate</button>
</form>
<form method="post" action="batch-size">
<label for="batch-size">batch size</label>
<input type="number" id="batch-size" name="size" min="0" step="1" required placeholder="keys, 0 for the runner's own">
<input type="text" name="reason" placeholder="reason" aria-label="reason for the batch size">
<button type="submit">Set batch size</button>
</form>
{{if .Ceiling}}<form method="post" action="lift">
<input type="text" name="reason" placeholder="reason" aria-label="reason for lifting the ceiling">
<button type="submit" id="lift">Lift ceiling</button>
</form>
{{end}}{{range .Moves}}<form method="post" action="move">
<input type="hidden" name="to" value="{{.To}}">
<input type="hidden" name="version" value="{{.Version}}">
<input type="text" name="reason" placeholder="reason" aria-label="reason for the move to {{.To}}">
<button type="submit" id="move-{{.To}}">{{.Label}}</button>
</form>
{{end}}</section>
{{end}}<section id="history">
<h2>Recent history</h2>
{{if .Events}}<table>
<thead><tr><th>when</th><th>actor</th><th>kind</th><th>phase</th><th>version</th><th>reason</th><th>detail</th></tr></thead>
<tbody>{{range .Events}}<tr>
<td><time datetime="{{.At}}" title="{{.At}}">{{.Ago}}</time></td>
<td>{{.Actor}}</td><td>{{.Kind}}</td><td>{{.Move}}</td><td>{{.Version}}</td><td>{{.Reason}}</td><td class="detail">{{.Detail}}</td>
</tr>{{end}}</tbody>
</table>
{{else}}<p>No event yet.</p>
{{end}}</section>
{{end}}{{end -}}
`))

// render answers with the page of v.
func render(w http.ResponseWriter, r *http.Request, status int, v pageView) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, v); err != nil { // only plain values: cannot happen
		http.Error(w, "statuspage: render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}
