// Builds the web UI into dist/: index.html plus content-hashed JS and CSS
// under assets/ (no inline script, nothing from another origin), the
// service worker at sw.js (a fixed name: its URL is its identity) and the
// files of public/ (web app manifest, icon), for the gateway to embed.
// `--unit` and `--e2e` bundle the tests into dist-test/ for node's test
// runner instead.
import { build } from 'esbuild';
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const mode = process.argv.includes('--unit') ? 'unit' : process.argv.includes('--e2e') ? 'e2e' : 'app';

async function testFiles(dir) {
  const entries = await readdir(join(root, dir));
  return entries.filter((name) => name.endsWith('.test.ts')).map((name) => join(root, dir, name));
}

async function buildTests(kind) {
  const outdir = join(root, 'dist-test', kind);
  await rm(outdir, { recursive: true, force: true });
  await build({
    entryPoints: await testFiles(join('test', kind)),
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
}

async function buildApp() {
  const dist = join(root, 'dist');
  await rm(dist, { recursive: true, force: true });
  const result = await build({
    entryPoints: { app: join(root, 'src/main.ts') },
    outdir: join(dist, 'assets'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome109', 'firefox115', 'safari16'],
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => relative(dist, join(root, file)));
  const script = outputs.find((file) => file.endsWith('.js'));
  const style = outputs.find((file) => file.endsWith('.css'));
  if (!script || !style) throw new Error(`build produced no script or style: ${outputs.join(', ')}`);
  const template = await readFile(join(root, 'index.html'), 'utf8');
  const html = template
    .replace('<!-- styles -->', `<link rel="stylesheet" href="${style}" />`)
    .replace('<!-- scripts -->', `<script type="module" src="${script}"></script>`);
  await writeFile(join(dist, 'index.html'), html);
  await build({
    entryPoints: [join(root, 'src/worker/service-worker.ts')],
    outfile: join(dist, 'sw.js'),
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['chrome109', 'firefox115', 'safari16'],
    legalComments: 'none',
    logLevel: 'warning',
  });
  // Files served under their own names: the web app manifest and its icon.
  await cp(join(root, 'public'), dist, { recursive: true });
  const sizes = await Promise.all(
    outputs.map(async (file) => `${basename(file)} ${((await readFile(join(dist, file))).length / 1024).toFixed(1)} KiB`),
  );
  console.log(`web UI built into dist/: index.html, ${sizes.join(', ')}`);
}

await mkdir(join(root, 'dist-test'), { recursive: true });
if (mode === 'app') await buildApp();
else await buildTests(mode);
