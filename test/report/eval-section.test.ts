/**
 * The report's quality-metrics section (src/report/eval-section.ts) from DIR/eval.json: the
 * figures and counts shown, null figures shown as "—" (never as a number), gFID "not computed"
 * when the run had no DiT, names from the file escaped, and a damaged or missing file named
 * with the command that fixes it instead of failing the report.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalSection } from '../../src/report/eval-section.js';

const tmp = () => fs.mkdtempSync(path.join(tmpdir(), 'rae-eval-section-'));

const comparison = (fid: number, precision: number | null) => ({
  fid,
  kid: 0.0123,
  kidStd: 0.0045,
  precision,
  recall: precision === null ? null : 0.25,
  counts: { a: 8, b: 8 },
});

describe('report: quality metrics section', () => {
  it('shows rFID, gFID, KID ± std, precision/recall, PSNR/SSIM, counts and the caveat', () => {
    const dir = tmp();
    fs.writeFileSync(
      path.join(dir, 'eval.json'),
      JSON.stringify({
        rfid: 12.5,
        gfid: 80.25,
        psnr: 21.456,
        ssim: 0.6789,
        counts: { reconstructions: 8, samples: 16, reference: 32 },
        reconstruction: comparison(12.5, null),
        generation: comparison(80.25, 0.5),
        featureNetwork: 'nsfwjs <net>',
        note: 'consistent within this project but not comparable to published values.',
        samplesTag: 'eval-16',
        warnings: ['rFID: precision/recall skipped'],
      }),
    );
    const text = evalSection(dir).text;
    expect(text).toContain('Reconstruction (rFID)');
    expect(text).toMatch(/<td class="mono">12\.5<\/td><td class="mono">0\.0123 ± 0\.0045<\/td><td class="mono">— \/ —<\/td>/);
    expect(text).toMatch(
      /<td class="mono">80\.25<\/td>.*<td class="mono">0\.5 \/ 0\.25<\/td><td>32 training images vs 16 samples \(“eval-16”\)/,
    );
    expect(text).toContain('PSNR 21.46 dB · SSIM 0.679');
    expect(text).toContain('8 held-out originals vs their reconstructions');
    expect(text).toContain('not comparable to published values');
    expect(text).toContain('nsfwjs &lt;net&gt;');
    expect(text).toContain('1 warning(s)');
  });

  it('gFID not computed, a damaged file and a missing one', () => {
    const dir = tmp();
    expect(evalSection(dir).text).toMatch(/Not evaluated yet: <code>rae eval --run .*<\/code>/);
    fs.writeFileSync(path.join(dir, 'eval.json'), JSON.stringify({ rfid: 3, reconstruction: comparison(3, 0.75), generation: null }));
    expect(evalSection(dir).text).toMatch(/Generation \(gFID\)<\/th><td colspan="5" class="missing-text">not computed \(no DiT checkpoint/);
    fs.writeFileSync(path.join(dir, 'eval.json'), '{"rfid": 3,');
    expect(evalSection(dir).text).toMatch(/eval\.json could not be read \(.*\); run <code>rae eval --run/);
  });
});
