/**
 * scripts/count-results.mjs, the closing line CI reads: always "N passed, M failed, K skipped",
 * tests skipped at run time (ctx.skip, e.g. no shader-f16) counted as skipped, suites that failed
 * to load counted as failures, and a missing report a failure.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const script = path.resolve(import.meta.dirname, '../../scripts/count-results.mjs');
const dir = mkdtempSync(path.join(tmpdir(), 'count-results-'));

function count(report: object | null): { line: string; status: number | null } {
  const file = path.join(dir, `r${Math.random().toString(36).slice(2)}.json`);
  if (report) writeFileSync(file, JSON.stringify(report));
  const r = spawnSync(process.execPath, [script, file], { encoding: 'utf8' });
  const lines = r.stdout.trim().split('\n');
  return { line: lines[lines.length - 1], status: r.status };
}

describe('count-results', () => {
  it('prints all three counts, zero skipped included', () => {
    expect(count({ numPassedTests: 5, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, testResults: [] })).toEqual({
      line: '5 passed, 0 failed, 0 skipped',
      status: 0,
    });
    expect(count({ numPassedTests: 5, numFailedTests: 0, numPendingTests: 2, numTodoTests: 1, testResults: [] })).toEqual({
      line: '5 passed, 0 failed, 3 skipped',
      status: 0,
    });
  });

  it('counts failed tests and suites that failed to load, and fails the run', () => {
    const report = {
      numPassedTests: 4,
      numFailedTests: 1,
      numPendingTests: 1,
      testResults: [
        { status: 'failed', assertionResults: [] },
        { status: 'failed', assertionResults: [{}] },
      ],
    };
    expect(count(report)).toEqual({ line: '4 passed, 2 failed, 1 skipped', status: 1 });
  });

  it('a missing report or a run with no passed test fails', () => {
    expect(count(null)).toEqual({ line: '0 passed, 1 failed, 0 skipped', status: 1 });
    expect(count({ numPassedTests: 0, numFailedTests: 0, numPendingTests: 3, testResults: [] })).toEqual({
      line: '0 passed, 0 failed, 3 skipped',
      status: 1,
    });
  });
});
