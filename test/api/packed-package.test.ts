/**
 * The package as a TypeScript user gets it: the build (`npm run build`'s tsup configuration,
 * written to a staging folder so the checkout's dist/ is left alone), `npm pack` of the package
 * manifest with that build, the tarball unpacked
 * into a scratch project's node_modules (npm's own layout: the tarball's `package/` folder), its
 * dependencies linked from this repository's node_modules (so the test runs offline), then an
 * example that uses tensor methods, `F`, `nn` and `models` is type-checked with `tsc --strict`
 * (library checking on: the bundled d.ts itself must be valid) and run on the adapter.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let work = '';
let app = '';

const EXAMPLE = `import { F, init, models, nn, randn, scope, shutdown, tensor, type Tensor } from 'rae-webgpu';

await init();
const x = randn([4, 8]);
const total: Tensor = x.sum();
const chained = x.exp().mul(2).relu().mean([1], { keepdim: true }).sub(x.sigmoid().sum(1, { keepdim: true }));
const activated = F.silu(x).add(F.gelu(x, { approximate: 'tanh' }));
const layer = new nn.Linear(8, 3);
const y = scope(() => layer.forward(x).tanh());
const dit: models.DiT = new models.DiT({ input_size: 4, patch_size: 2, in_channels: 3, hidden_size: 16, depth: 1, num_heads: 2, num_classes: 4 });
const params: number = dit.parameters().length;
const t = tensor([1, 2, 3, 4], [2, 2]);
const tt = t.T.matmul(t);
console.log(JSON.stringify({
  total: (await total.toArray()).length,
  chained: chained.shape,
  activated: activated.shape,
  y: y.shape,
  params: params > 0,
  tt: Array.from(await tt.toArray()),
}));
shutdown();
`;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'rae-pack-'));
  const stage = path.join(work, 'stage');
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsup'), ['--out-dir', path.join(stage, 'dist')], { cwd: ROOT, stdio: 'pipe' });
  for (const f of ['package.json', 'README.md', 'wgsl']) cpSync(path.join(ROOT, f), path.join(stage, f), { recursive: true });
  const packed = JSON.parse(execFileSync(NPM, ['pack', '--json', '--pack-destination', work], { cwd: stage, encoding: 'utf8' })) as {
    filename: string;
  }[];
  const tarball = path.join(work, packed[0].filename.replace(/^@[^/]+\//, '').replace('/', '-'));
  app = path.join(work, 'app');
  const pkgDir = path.join(app, 'node_modules', 'rae-webgpu');
  mkdirSync(pkgDir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1']);
  // The tarball's dependencies, and the compiler, from this repository's node_modules.
  const manifest = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of [...Object.keys(manifest.dependencies ?? {}), 'typescript', '@types/node']) {
    const target = path.join(app, 'node_modules', dep);
    mkdirSync(path.dirname(target), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules', dep), target, 'junction');
  }
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        types: ['node'],
        skipLibCheck: false,
        outDir: 'out',
      },
      files: ['example.ts'],
    }),
  );
  writeFileSync(path.join(app, 'example.ts'), EXAMPLE);
}, 240_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships only what its manifest names, with types at the paths it declares', () => {
    const pkg = JSON.parse(readFileSync(path.join(app, 'node_modules', 'rae-webgpu', 'package.json'), 'utf8')) as {
      types: string;
      exports: Record<string, { types: string }>;
    };
    const dts = readFileSync(path.join(app, 'node_modules', 'rae-webgpu', pkg.exports['.'].types), 'utf8');
    expect(pkg.types).toBe(pkg.exports['.'].types);
    // Module augmentation of a source path would point outside dist (the bug this guards against).
    expect(dts).not.toMatch(/declare module ['"]\.\.?\//);
  });

  it('type-checks an example using tensor methods, F, nn and models with tsc --strict', () => {
    const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc');
    let out = '';
    try {
      out = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
    } catch (e) {
      out = `${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`;
    }
    expect(out.trim()).toBe('');
  }, 120_000);

  it('runs the compiled example on the adapter', () => {
    const stdout = execFileSync(process.execPath, [path.join(app, 'out', 'example.js')], {
      cwd: app,
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
    });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(r).toEqual({ total: 1, chained: [4, 1], activated: [4, 8], y: [4, 3], params: true, tt: [10, 14, 14, 20] });
  }, 120_000);
});
