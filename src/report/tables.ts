/** Tables of the report: configuration, adapter and data, timings per command. */
import { type Html, html } from './html.js';
import type { RunFolder } from './run-folder.js';
import { duration, fmt, median, STAGES, stageSeconds, stagesOf } from './sections.js';

/** Nested objects as dotted keys; arrays of plain values stay one JSON cell. */
export function flatten(value: unknown, prefix = '', out: [string, unknown][] = []): [string, unknown][] {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0 && prefix) out.push([prefix, {}]);
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(value) && value.some((v) => typeof v === 'object' && v !== null)) {
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else out.push([prefix, value]);
  return out;
}

function cell(v: unknown): Html {
  if (typeof v === 'string') return html`${v}`;
  if (typeof v === 'number') return html`<span class="mono">${String(v)}</span>`;
  return html`<span class="mono">${JSON.stringify(v) ?? String(v)}</span>`;
}

export function keyValueTable(obj: Record<string, unknown>, highlight: readonly string[] = []): Html {
  const rows = flatten(obj);
  return html`<table class="kv"><tbody>${rows.map(
    ([k, v]) => html`<tr${highlight.includes(k) ? html` class="key"` : ''}><th class="mono">${k}</th><td>${cell(v)}</td></tr>`,
  )}</tbody></table>`;
}

export function configSection(run: RunFolder): Html {
  if (!run.config) return html`<p class="missing-text">No config.json in this run folder.</p>`;
  return html`<div class="card">${keyValueTable(run.config, ['fingerprint', 'preset'])}
<details><summary>config.json as written</summary><pre>${JSON.stringify(run.config, null, 2)}</pre></details></div>`;
}

export function setupSection(run: RunFolder): Html {
  const adapter = run.adapter
    ? html`${run.adapter.software === true ? html`<p class="meta">A software adapter (CPU): timings are not those of a GPU.</p>` : ''}${keyValueTable(run.adapter)}`
    : html`<p class="missing-text">Not recorded (run.json has no "adapter").</p>`;
  let data: Html = html`<p class="missing-text">Not recorded (run.json has no "data").</p>`;
  if (run.data) {
    const { skipped, classes, ...rest } = run.data;
    const skippedList = Array.isArray(skipped) ? skipped : undefined;
    data = html`${keyValueTable({ ...rest, skipped: skippedList ? skippedList.length : (skipped ?? 0), ...(Array.isArray(classes) ? { classes: classes.length } : {}) })}
${Array.isArray(classes) && classes.length ? html`<details><summary>class names</summary><p>${classes.map((c, i) => html`${i ? ', ' : ''}<span class="mono">${i}</span> ${String(c)}`)}</p></details>` : ''}
${
  skippedList?.length
    ? html`<details><summary>skipped files (${skippedList.length})</summary><table><tbody>${skippedList.slice(0, 50).map((s) => {
        const r: Record<string, unknown> = typeof s === 'object' && s !== null ? (s as Record<string, unknown>) : { file: s };
        return html`<tr><td class="mono">${String(r.file ?? '?')}</td><td>${String(r.reason ?? '')}</td></tr>`;
      })}</tbody></table>${skippedList.length > 50 ? html`<p class="meta">… and ${skippedList.length - 50} more.</p>` : ''}</details>`
    : ''
}`;
  }
  const other = Object.keys(run.otherInfo).length
    ? html`<div class="card"><h3>Also recorded</h3>${keyValueTable(run.otherInfo)}</div>`
    : '';
  return html`<div class="two"><div class="card"><h3>Adapter</h3>${adapter}</div><div class="card"><h3>Data</h3>${data}</div></div>${other}`;
}

export function timingsSection(run: RunFolder): Html {
  const perStage = stagesOf(run.metrics).map((stage) => {
    const rows = run.metrics.filter((m) => m.stage === stage);
    const ips = median(rows.map((r) => r.imagesPerSecond).filter((v): v is number => v !== undefined));
    const cmd = run.commands.filter((c) => c.command === STAGES[stage]?.command);
    return html`<tr><td>${STAGES[stage]?.title ?? stage}</td><td class="num">${fmt(ips, 3)}</td><td class="num">${fmt(cmd[cmd.length - 1]?.imagesPerSecond, 3)}</td><td class="num">${duration(stageSeconds(rows).seconds)}</td></tr>`;
  });
  const stageTable = perStage.length
    ? html`<h3>Images per second by stage</h3><table><thead><tr><th>stage</th><th>median over logged steps</th><th>last command's average</th><th>training time</th></tr></thead><tbody>${perStage}</tbody></table>`
    : '';
  const hasExit = run.commands.some((c) => c.exit !== undefined || c.endedAt === undefined);
  const commands = run.commands.length
    ? html`<h3>Commands</h3><table><thead><tr><th>command</th><th>started</th><th>duration</th><th>steps</th><th>images/s</th>${hasExit ? html`<th>ended</th>` : ''}<th>arguments</th></tr></thead><tbody>${run.commands.map(
        (c) =>
          html`<tr><td class="mono">${c.command}</td><td class="num">${c.startedAt ? c.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—'}</td><td class="num">${duration(c.seconds)}</td><td class="num">${fmt(c.steps, 8)}</td><td class="num">${fmt(c.imagesPerSecond, 3)}</td>${hasExit ? html`<td>${c.exit ?? (c.endedAt ? 'normally' : 'no end recorded')}</td>` : ''}<td class="mono">${c.argv?.join(' ') ?? ''}</td></tr>`,
      )}</tbody></table>`
    : html`<p class="missing-text">No commands recorded (run.json has no "commands").</p>`;
  return html`<div class="card">${stageTable}${commands}</div>`;
}
