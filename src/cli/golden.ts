/**
 * npm run golden -- <folder> [--device cpu|webgpu|all] [--filter <substring>] [--verbose]
 *
 * Runs every golden op case found under <folder> (recursively: `<case>.json` next to its
 * .safetensors) and every model case (a CLIPSeg folder with config.json, weights.safetensors,
 * tensors.safetensors and manifest.json, or a CRIS folder with manifest.json, tensors.safetensors
 * and weights.safetensors or weights.pth; golden/model-cases.ts) on the WebGPU device and on the
 * CPU device, and every tokenizer case (each entry of a `cases.json` beside `tokenized_77.safetensors`;
 * golden/tokenizer-cases.ts) once, on the host, printing one line per case and device
 * (case, device, max abs err, max rel err, PASS/FAIL, with the reasons under a failure) and a final
 * line `N passed, N failed`. Exits 1 on any failure, on a missing or empty folder, and on an
 * unknown op. Without a WebGPU adapter it runs on the CPU only, loudly; with CI=true that is an error.
 */
import { CpuDevice, type Device } from '../engine/index.js';
import { discoverCases } from '../golden/manifest.js';
import { belongsToModelCase, discoverModelCases, runModelCase } from '../golden/model-cases.js';
import { type CaseResult, failureLines, runCase } from '../golden/runner.js';
import { belongsToTokenizerCase, discoverTokenizerCases, runTokenizerCases, tokenizerCaseName } from '../golden/tokenizer-cases.js';
import { isCi, webgpuOrNull } from './gpu.js';

const USAGE = 'usage: npm run golden -- <folder> [--device cpu|webgpu|all] [--filter <substring>] [--verbose]';

interface Args {
  folder: string;
  device: 'cpu' | 'webgpu' | 'all';
  filter: string;
  /** Print every compared tensor of model cases. */
  verbose: boolean;
}

function parseArgs(argv: string[]): Args {
  let folder: string | undefined;
  let device: Args['device'] = 'all';
  let filter = '';
  let verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a.startsWith('--device')) {
      const v = value();
      if (v !== 'cpu' && v !== 'webgpu' && v !== 'all') throw new Error(`--device must be cpu, webgpu or all\n${USAGE}`);
      device = v;
    } else if (a.startsWith('--filter')) {
      filter = value();
    } else if (a === '--verbose' || a === '-v') {
      verbose = true;
    } else if (a.startsWith('-')) {
      throw new Error(`unknown option ${a}\n${USAGE}`);
    } else if (folder === undefined) {
      folder = a;
    } else {
      throw new Error(`only one folder may be given\n${USAGE}`);
    }
  }
  if (folder === undefined) throw new Error(`no folder given\n${USAGE}`);
  return { folder, device, filter, verbose };
}

async function devicesFor(which: Args['device']): Promise<Device[]> {
  const devices: Device[] = [];
  if (which !== 'cpu') {
    const gpu = await webgpuOrNull('The golden check');
    if (gpu) {
      console.log(`webgpu adapter: ${gpu.description}`);
      devices.push(gpu);
    } else if (which === 'webgpu') {
      throw new Error('--device webgpu was asked for, but there is no WebGPU adapter');
    }
  }
  if (which !== 'webgpu') devices.push(new CpuDevice());
  return devices;
}

function formatResult(r: CaseResult, width: number): string {
  const ran = r.comparisons.length > 0;
  const err = (v: number) => (!ran ? '-' : Number.isFinite(v) ? v.toExponential(2) : String(v)).padStart(9);
  const status = r.ok ? 'PASS' : 'FAIL';
  return `${r.case.padEnd(width)}  ${r.device.padEnd(6)}  max abs ${err(r.maxAbs)}  max rel ${err(r.maxRel)}  ${status}  (${r.ms.toFixed(0)} ms)`;
}

function formatComparison(x: CaseResult['comparisons'][number]): string {
  const worst = Number.isFinite(x.worst) ? x.worst.toFixed(3) : String(x.worst);
  return `${x.ok ? 'ok  ' : 'FAIL'} ${x.name}  max abs ${x.maxAbs.toExponential(2)}  max rel ${x.maxRel.toExponential(2)}  ${worst}x tol`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const { cases: all, skipped } = await discoverCases(args.folder);
  const allModels = await discoverModelCases(args.folder);
  const tokenizerFolders = await discoverTokenizerCases(args.folder);
  for (const s of skipped) {
    if (!belongsToModelCase(s.path, allModels) && !belongsToTokenizerCase(s.path, tokenizerFolders)) console.log(`skipping ${s.path}: ${s.reason}`);
  }
  const cases = all.filter((c) => c.name.includes(args.filter));
  const models = allModels.filter((c) => c.name.includes(args.filter));
  const tokenizerNames = tokenizerFolders.flatMap((f) => f.cases.map((c) => tokenizerCaseName(f, c))).filter((n) => n.includes(args.filter));
  if (cases.length === 0 && models.length === 0 && tokenizerNames.length === 0) {
    const what = args.filter ? ` matching '${args.filter}'` : '';
    throw new Error(`golden: no case manifests${what} found under '${args.folder}'`);
  }
  // Tokenizer cases run on the host: no device is opened for them alone.
  const devices = cases.length + models.length > 0 ? await devicesFor(args.device) : [];
  const width = Math.max(...cases.map((c) => c.name.length), ...models.map((c) => c.name.length), ...tokenizerNames.map((n) => n.length));
  let passed = 0;
  let failed = 0;
  for (const c of cases) {
    for (const device of devices) {
      const r = await runCase(c, device);
      console.log(formatResult(r, width));
      for (const line of failureLines(r)) console.log(`    ${line}`);
      if (r.ok) passed++;
      else failed++;
    }
  }
  for (const c of models) {
    for (const device of devices) {
      const r = await runModelCase(c, device);
      console.log(formatResult(r, width));
      for (const line of failureLines(r)) console.log(`    ${line}`);
      if (args.verbose) for (const x of r.comparisons) console.log(`    ${formatComparison(x)}`);
      if (r.ok) passed++;
      else failed++;
    }
  }
  for (const f of tokenizerFolders) {
    for (const r of await runTokenizerCases(f)) {
      if (!r.case.includes(args.filter)) continue;
      console.log(formatResult(r, width));
      for (const line of failureLines(r)) console.log(`    ${line}`);
      if (r.ok) passed++;
      else failed++;
    }
  }
  if (devices.length === 1 && args.device === 'all' && !isCi()) {
    console.log('NOTE: WebGPU was not available; only the CPU device was checked (see the notice above).');
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    console.error(message.startsWith('golden') ? message : `golden: ${message}`);
    process.exit(1);
  },
);
