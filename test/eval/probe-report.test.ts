/**
 * The report's linear-probe section (src/report/probe-section.ts): both result files as rows,
 * names from the files escaped, an unreadable file named instead of failing the report, and no
 * section when the run holds no probe result.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasProbe, probeHeadline, probeSection } from '../../src/report/probe-section.js';

const dir = () => fs.mkdtempSync(path.join(tmpdir(), 'rae-probe-report-'));

describe('probe report section', () => {
  it('shows the run encoder and the random baseline, escaping names', () => {
    const d = dir();
    const r = { accuracy: 0.4567, trainAccuracy: 0.5, chance: 0.1, classes: 10, trainImages: 2000, testImages: 1000, split: 'test' };
    fs.writeFileSync(path.join(d, 'probe.json'), JSON.stringify({ ...r, encoder: 'MAE <b>x</b>' }));
    fs.writeFileSync(path.join(d, 'probe-random.json'), JSON.stringify({ ...r, accuracy: 0.25, encoder: 'random' }));
    expect(hasProbe(d)).toBe(true);
    expect(probeHeadline(d)).toBe(0.4567);
    const h = probeSection(d).text;
    expect(h).toContain('<b>45.7%</b>');
    expect(h).toContain('<b>25.0%</b>');
    expect(h).toContain('MAE &lt;b&gt;x&lt;/b&gt;');
    expect(h).toContain('2000 / 1000 (test split)');
  });

  it('an unreadable file is named; no files, no section', () => {
    const d = dir();
    expect(hasProbe(d)).toBe(false);
    expect(probeHeadline(d)).toBeUndefined();
    fs.writeFileSync(path.join(d, 'probe.json'), '{ not json');
    expect(probeSection(d).text).toMatch(/probe\.json could not be read as JSON/);
    expect(probeHeadline(d)).toBeUndefined();
  });
});
