// Compresses the built web UI once, at build time: beside every text file of
// gateway/web/dist (HTML, JS, CSS, SVG, JSON, manifests, licences) it writes
// `<file>.br` (Brotli, quality 11) and `<file>.gz` (gzip, level 9), each only
// when smaller than the file. dispatch-gateway embeds them and serves the one
// the browser's Accept-Encoding prefers.
import { readdir, readFile, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const COMPRESSIBLE = /\.(html|js|mjs|css|svg|json|webmanifest|txt|map|wasm)$/;

async function* files(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile()) yield path;
  }
}

const dist = process.argv[2];
if (!dist) throw new Error('usage: node compress-web.mjs <dist>');
let raw = 0;
let brotli = 0;
for await (const path of files(dist)) {
  if (!COMPRESSIBLE.test(path)) continue;
  const bytes = await readFile(path);
  const variants = {
    br: brotliCompressSync(bytes, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }),
    gz: gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }),
  };
  raw += bytes.length;
  brotli += Math.min(bytes.length, variants.br.length);
  for (const [suffix, packed] of Object.entries(variants)) {
    if (packed.length < bytes.length) await writeFile(`${path}.${suffix}`, packed);
  }
}
await stat(dist);
console.log(`web UI compressed: ${(raw / 1024).toFixed(1)} KiB of text, ${(brotli / 1024).toFixed(1)} KiB as Brotli`);
