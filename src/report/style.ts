/** The report's stylesheet, inlined (no external fonts or files); system fonts, light theme. */
export const STYLE = `
:root { --fg:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f5f7fa; --card:#fff; --accent:#2563eb; --warn:#b45309; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg); font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 8px; }
h4 { font-size: 13px; margin: 0 0 4px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
.sub { color: var(--muted); margin: 0 0 14px; overflow-wrap: anywhere; }
nav { display:flex; flex-wrap:wrap; gap: 6px 16px; margin: 10px 0 0; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; }
.status { display:flex; flex-wrap:wrap; gap:10px; list-style:none; padding:0; margin: 0; }
.status li { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:8px 12px; min-width: 180px; }
.status li b { display:block; font-size: 12px; color: var(--muted); font-weight: 600; }
.status li.missing { border-style: dashed; color: var(--muted); }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 18px; margin: 0 0 16px; }
.notice { border-left: 4px solid var(--warn); }
.notice li { margin: 2px 0; }
.meta { color: var(--muted); margin: -2px 0 12px; font-size: 14px; }
.charts { display:grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 18px; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; overflow-wrap: anywhere; }
svg.chart { width: 100%; height: auto; display: block; font-size: 11px; }
svg.chart .plot-area { fill: #fbfcfe; stroke: var(--line); }
svg.chart .grid { stroke: #e4e9f0; stroke-width: 1; fill: none; }
svg.chart .tick { fill: var(--muted); }
svg.chart .axis-label { fill: var(--fg); font-size: 12px; }
svg.chart .series { fill: none; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .series.line { stroke-width: 2; }
svg.chart .series.dots { stroke-width: 3.2; stroke-opacity: .28; }
svg.chart .series.markers { stroke-width: 6; }
svg.chart .legend text { fill: var(--fg); font-size: 11px; }
svg.chart .empty-note { fill: var(--muted); font-size: 13px; }
.scale-toggle { position: relative; }
.scale-toggle > input { position:absolute; opacity:0; pointer-events:none; }
.scale-toggle .view { display:none; }
.scale-toggle > input.lin:checked ~ .view.lin, .scale-toggle > input.log:checked ~ .view.log { display:block; }
.switch { position:absolute; right:0; top:-25px; font-size: 12px; }
.switch label { cursor:pointer; padding: 1px 8px; border:1px solid var(--line); color: var(--muted); }
.switch label:first-child { border-radius: 10px 0 0 10px; }
.switch label:last-child { border-radius: 0 10px 10px 0; margin-left:-1px; }
.scale-toggle > input.lin:checked ~ .switch label.lin, .scale-toggle > input.log:checked ~ .switch label.log { background: var(--accent); border-color: var(--accent); color:#fff; }
.scale-toggle > input:focus-visible ~ .switch { outline: 2px solid var(--accent); outline-offset: 2px; }
img { max-width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 4px; }
img.pixelated { image-rendering: pixelated; }
.gallery { display:flex; flex-wrap:wrap; gap: 16px; align-items:flex-end; }
.classes { display:grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 14px 24px; margin-top: 14px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 5px 10px 5px 0; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.key td { font-weight: 600; }
table.kv th { width: 1%; white-space: nowrap; padding-right: 24px; }
.card h3 + table, .card table + h3 { margin-top: 14px; }
.two { display:grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
details summary { cursor: pointer; color: var(--accent); margin-top: 10px; }
pre { background: #f0f3f7; padding: 10px 12px; border-radius: 6px; overflow:auto; max-height: 420px; }
.missing-text { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 13px; padding-top: 20px; padding-bottom: 30px; }
`;
