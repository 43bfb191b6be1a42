#!/usr/bin/env node
/**
 * Builds the browser app into web/dist/ (git-ignored):
 *
 *   node scripts/build-web.mjs [--dev]      (npm run build:web)
 *
 * - web/src/main.ts bundled by esbuild for browsers: ESM, ES2022, minified unless --dev, with a
 *   source map;
 * - web/index.html and web/style.css copied as they are;
 * - the assets the page fetches: the CLIP vocabulary at weights/vocab/ (the page fetches it from
 *   there; the models' own fallback would too, resolved against the bundle's URL), and the demo
 *   checkpoint, demo image and the image's prompts (demo-image.json) at demo/ when weights/demo/
 *   has them (a notice says when not; the page then says the demo is not part of this build).
 *   WEBVLSM_DEMO_DIR=<folder> takes the demo files from another folder (to try a new checkpoint);
 * - build.json: what the page can offer (the demo's files and prompts).
 *
 * Node-only modules. The engine's browser path never runs Node code, but two lazy imports reach
 * it: clipseg/pretrained-files.ts imports pretrained-files-node.ts (node:fs, node:path, node:url)
 * and cris/pretrained-load.ts imports node:fs/promises, both only when given a folder path in
 * Node. Every `node:` specifier is therefore replaced by a stub module that throws when it is
 * evaluated, and the build lists which files asked for one: a new entry in that list means some
 * import chain started to pull Node code into the page (the end-to-end tests would then fail at
 * page load, as the stub throws).
 */
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WEB = join(ROOT, 'web');
const OUT = join(WEB, 'dist');

const DEMO = process.env.WEBVLSM_DEMO_DIR ? resolve(process.env.WEBVLSM_DEMO_DIR) : join(ROOT, 'weights/demo');

/** Files that are copied next to the bundle: [source, destination under dist, required]. */
const ASSETS = [
  [join(ROOT, 'web/index.html'), 'index.html', true],
  [join(ROOT, 'web/style.css'), 'style.css', true],
  [join(ROOT, 'weights/vocab/bpe_simple_vocab_16e6.txt.gz'), 'weights/vocab/bpe_simple_vocab_16e6.txt.gz', true],
  [join(DEMO, 'clipseg-tiny-synthetic.safetensors'), 'demo/clipseg-tiny-synthetic.safetensors', false],
  [join(DEMO, 'demo-image.png'), 'demo/demo-image.png', false],
  [join(DEMO, 'demo-image.json'), 'demo/demo-image.json', false],
];

const exists = async (path) => {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
};

function nodeBuiltinsStub(importers) {
  return {
    name: 'node-builtins-stub',
    setup(build) {
      build.onResolve({ filter: /^node:/ }, (args) => {
        const list = importers.get(args.path) ?? new Set();
        list.add(relative(ROOT, args.importer));
        importers.set(args.path, list);
        return { path: args.path, namespace: 'node-stub' };
      });
      // CommonJS (module.exports): esbuild then accepts any named import of the stub.
      build.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => ({
        contents: `module.exports = {};\nthrow new Error(${JSON.stringify(`webvlsm: ${args.path} is a Node module and is not available in the browser`)});`,
        loader: 'js',
      }));
    },
  };
}

/** The prompts listed in demo-image.json (the demo image's objects), or [] without the file. */
async function demoPrompts(path) {
  if (!(await exists(path))) return [];
  const json = JSON.parse(await readFile(path, 'utf8'));
  if (!Array.isArray(json.prompts) || !json.prompts.every((p) => typeof p === 'string')) {
    throw new Error(`build-web: ${path}: "prompts" must be a list of strings`);
  }
  return json.prompts;
}

export async function buildWeb({ dev = false } = {}) {
  const t0 = performance.now();
  await rm(OUT, { recursive: true, force: true });
  await mkdir(OUT, { recursive: true });
  const importers = new Map();
  const result = await esbuild.build({
    entryPoints: [join(WEB, 'src/main.ts')],
    outfile: join(OUT, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: !dev,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    plugins: [nodeBuiltinsStub(importers)],
  });
  const notes = [];
  for (const [from, dest, required] of ASSETS) {
    if (!(await exists(from))) {
      if (required) throw new Error(`build-web: ${relative(ROOT, from)} is missing`);
      notes.push(`notice: ${relative(ROOT, from)} not found: the page will say the demo is not part of this build`);
      continue;
    }
    await mkdir(dirname(join(OUT, dest)), { recursive: true });
    await copyFile(from, join(OUT, dest));
  }
  // What the page can offer, read at start-up (the demo buttons are disabled without it).
  const demo = {
    checkpoint: (await exists(join(OUT, 'demo/clipseg-tiny-synthetic.safetensors'))) ? 'demo/clipseg-tiny-synthetic.safetensors' : null,
    image: (await exists(join(OUT, 'demo/demo-image.png'))) ? 'demo/demo-image.png' : null,
    prompts: await demoPrompts(join(OUT, 'demo/demo-image.json')),
  };
  await writeFile(join(OUT, 'build.json'), `${JSON.stringify({ builtAt: new Date().toISOString(), demo }, null, 1)}\n`);
  for (const [spec, files] of importers) notes.push(`stubbed ${spec} (Node-only) imported lazily by ${[...files].join(', ')}`);
  const bytes = (await readFile(join(OUT, 'main.js'))).byteLength;
  return { ms: performance.now() - t0, bytes, notes, warnings: result.warnings.length };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--dev');
  if (unknown.length > 0) {
    console.error(`build-web: unknown argument(s) ${unknown.join(' ')} (only --dev)`);
    process.exit(2);
  }
  try {
    const r = await buildWeb({ dev: args.includes('--dev') });
    for (const note of r.notes) console.log(`build-web: ${note}`);
    console.log(`build-web: web/dist/main.js ${(r.bytes / 1024).toFixed(0)} KiB in ${r.ms.toFixed(0)} ms`);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
