/**
 * npm run bench [-- options]: prints one JSON line per measurement.
 *   --peers            also run tfjs-backend-webgpu and onnxruntime-node's WebGPU EP on every kernel
 *                      case that describes its op, interleaved with ours in this process
 *   --md [path]        write the table to bench/RESULTS.md (or path), replacing this adapter's section
 *   --filter <text>    only cases whose "name shape" contains text
 *   --only kernels|models|all   (default: all, or kernels with --peers)
 *   --device webgpu|cpu
 *   --warmup <n> --reps <n>   (defaults 1 and 5; a case may set its own)
 *   --case-budget-s <s>  fewer repetitions (down to 3) for a case whose rounds would take longer
 *                      (default 30; 0 = no limit): keeps the --peers run near 10 minutes here
 *   --no-timestamps    wall time only
 *   --note <text>      a line for the RESULTS.md section (repeatable)
 * Without a WebGPU adapter it measures the CPU device and says so on stderr.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type AutotuneResult, describeTuning } from '../src/engine/device/tuning.js';
import { nodeAutotune } from '../src/engine/device/tuning-node.js';
import { CpuDevice, type Device } from '../src/engine/index.js';
import { INSTALL_DRIVER_HINT } from '../src/engine/platform/node.js';
import { type BenchCase, type Measurement, type Runner, measureInterleaved, measurements, oursRunner } from './harness.js';
import { KERNEL_CASES } from './kernels/model-shapes.bench.js';
import { benchDevice, benchGpu } from './peers/gpu.js';
import { relativeError } from './peers/ops.js';
import { ortRunner } from './peers/ort.js';
import { REFERENCE_DESIGN, referenceDesignRunner } from './peers/reference.js';
import { type TfjsPeer, loadTfjs, tfjsRunner } from './peers/tfjs.js';
import { writeResults } from './report.js';

const args = process.argv.slice(2);

function flag(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function flags(name: string): string[] {
  return args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
}

const has = (name: string): boolean => args.includes(name);

/** Every bench/models/*.bench.ts exports MODEL_CASES (the full-size CLIPSeg and CRIS models). */
async function modelCases(): Promise<BenchCase[]> {
  const cases: BenchCase[] = [];
  for (const name of ['clipseg', 'cris']) {
    const url = new URL(`./models/${name}.bench.ts`, import.meta.url);
    if (!existsSync(fileURLToPath(url))) continue;
    const mod = (await import(`./models/${name}.bench.js`)) as { MODEL_CASES?: BenchCase[] };
    cases.push(...(mod.MODEL_CASES ?? []));
  }
  return cases;
}

function peerVersions(): string {
  const version = (pkg: string): string => {
    try {
      const url = new URL(`../node_modules/${pkg}/package.json`, import.meta.url);
      return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  const names = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu', 'onnxruntime-node', 'webgpu'];
  return names.map((n) => `${n} ${version(n)}`).join(', ');
}

async function pickDevice(): Promise<{ device: Device; adapter: string; tuning?: AutotuneResult | null }> {
  if (flag('--device') === 'cpu') return { device: new CpuDevice(), adapter: 'cpu' };
  const { device, adapter, reason } = await benchDevice();
  if (device) {
    const tuning = await nodeAutotune(device);
    for (const line of tuning ? describeTuning(tuning.table) : []) console.error(`bench: tuned ${line}`);
    return { device, adapter, tuning };
  }
  console.error(`bench: no WebGPU adapter (${reason}); measuring the CPU device. To bench WebGPU, ${INSTALL_DRIVER_HINT}`);
  return { device: new CpuDevice(), adapter: 'cpu' };
}

/** The RESULTS.md note on kernel tuning: the choices this run used, or why there were none. */
function tuningNote(tuning: AutotuneResult | null | undefined): string {
  if (tuning === undefined) return 'kernel tuning: none on the CPU device';
  if (tuning === null) return 'kernel tuning: failed (see stderr); ops used their defaults';
  if (tuning.mode === 'off') return 'kernel tuning: off (WEBVLSM_TUNING=off); ops used their defaults';
  const lines = describeTuning(tuning.table);
  if (lines.length === 0) return 'kernel tuning: no tunable applies to this adapter';
  const how = tuning.measured.length > 0 ? `measured in this run (${tuning.seconds.toFixed(1)} s)` : `cached in ${tuning.where}`;
  return `kernel tuning (${how}): ${lines.join('; ')}`;
}

/** The peer runners for one case; a peer that fails to set up is reported and left out. */
async function peerRunners(c: BenchCase, device: Device, tfjs: TfjsPeer, timestamps: boolean): Promise<Runner[]> {
  const op = c.op!;
  const makers: [string, () => Promise<Runner>][] = [
    ['tfjs-webgpu', () => tfjsRunner(tfjs, op, { timestamps })],
    ['ort-webgpu', () => ortRunner(op)],
  ];
  if (op.kind === 'attention') makers.push(['ort-webgpu:mha', () => ortRunner(op, { attention: 'mha' })]);
  if (op.kind === 'matmul') makers.push([REFERENCE_DESIGN, () => referenceDesignRunner(device, op, timestamps)]);
  const runners: Runner[] = [];
  for (const [name, make] of makers) {
    try {
      runners.push(await make());
    } catch (err) {
      console.error(`bench: ${name} cannot run ${c.name} ${c.shape}: ${(err as Error).message}`);
    }
  }
  return runners;
}

async function main(): Promise<void> {
  const peers = has('--peers');
  // The model cases have no peers and take minutes: a --peers run leaves them out unless asked.
  const only = flag('--only') ?? (peers ? 'kernels' : 'all');
  const filter = flag('--filter');
  const warmup = Number(flag('--warmup') ?? 1);
  const reps = Number(flag('--reps') ?? 5);
  const budgetS = Number(flag('--case-budget-s') ?? 30);
  const budgetMs = budgetS > 0 ? budgetS * 1000 : Infinity;
  const timestamps = !has('--no-timestamps');
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;

  const { device, adapter, tuning } = await pickDevice();
  let tfjs: TfjsPeer | null = null;
  if (peers) {
    if (device.kind === 'webgpu') tfjs = await loadTfjs(await benchGpu());
    else console.error('bench: --peers needs a WebGPU adapter; measuring ours only');
  }

  const cases = [...(only === 'models' ? [] : KERNEL_CASES), ...(only === 'kernels' ? [] : await modelCases())];
  const all: Measurement[] = [];
  for (const c of cases) {
    if (filter && !`${c.name} ${c.shape}`.includes(filter)) continue;
    const runners = [await oursRunner(device, c, { timestamps })];
    const errors = new Map<string, number>();
    let caseWarmup = c.warmup ?? warmup;
    if (tfjs && c.op) {
      runners.push(...(await peerRunners(c, device, tfjs, timestamps)));
      // The cross-check runs every system once on the same data; it also compiles their
      // pipelines, so it stands in for one warm-up round.
      const ours = await runners[0]!.output?.();
      for (const r of runners.slice(1)) if (ours && r.output) errors.set(r.system, relativeError(await r.output(), ours));
      if (ours) caseWarmup = Math.max(0, caseWarmup - 1);
    }
    try {
      const summaries = await measureInterleaved(runners, caseWarmup, c.reps ?? reps, budgetMs);
      const lines = measurements(c, device.description, summaries, errors);
      Object.assign(lines[0]!, runners[0]!.metrics?.());
      for (const m of lines) {
        console.log(JSON.stringify(m));
        all.push(m);
      }
    } finally {
      for (const r of runners) await r.dispose();
    }
  }

  const md = has('--md') ? (flag('--md')?.startsWith('--') === false ? flag('--md')! : 'bench/RESULTS.md') : null;
  if (md) {
    const minutes = ((Date.now() - started) / 60000).toFixed(1);
    const load = `${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end, on ${availableParallelism()} CPUs`;
    const notes = [
      `Node ${process.version}; ` +
        (only === 'models'
          ? "each model case runs its own warm-up and repetitions (the JSON lines' warmup and reps), medians"
          : `${warmup} warm-up round (with --peers the cross-check run stands in for it) + up to ${reps} ` +
            "interleaved rounds per case, medians (the JSON lines' reps says how many)") +
        `; the run took ${minutes} min`,
      `1-minute load average: ${load}`,
      ...(tfjs ? [`peers: ${peerVersions()}`] : []),
      tuningNote(tuning),
      ...flags('--note'),
    ];
    const shown = args.filter((a, i) => a !== '--note' && args[i - 1] !== '--note');
    const command = `npm run bench${shown.length ? ` -- ${shown.join(' ')}` : ''}`;
    const suite = `${only === 'all' ? 'kernels and models' : only}${tfjs ? ' vs peers' : ''}`;
    writeResults(md, { date: new Date().toISOString(), adapter, suite, command, notes }, all);
    console.error(`bench: wrote ${md}`);
  }
}

await main();
// Dawn and ONNX Runtime keep native handles that would hold the process open.
process.exit(0);
