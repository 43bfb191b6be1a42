/**
 * bench/RESULTS.md: one section per adapter and suite (a new run replaces its own section and
 * keeps the others), each a Markdown table with ours and every peer side by side.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Measurement } from './harness.js';

export interface RunInfo {
  date: string;
  adapter: string;
  /** What ran, e.g. 'kernels vs peers': a section per adapter and suite. */
  suite: string;
  command: string;
  /** Free text under the section heading (machine, load, caveats). */
  notes: string[];
}

const HEADER = `# Benchmark results

Written by \`npm run bench -- --md\` (bench/run.ts). One section per adapter and suite; a run
replaces its own section. All systems run in ONE process, interleaved (ours, tfjs, ORT, ours, ...),
on the same shapes and the same input data; figures are medians.

- **ratio** = peer time / our time: above 1, ours is faster. It compares like with like: GPU
  timestamps for ours and tfjs-webgpu (each brackets its own queue with timestamp-writing empty
  passes), wall time (launch until the work has finished) for onnxruntime-node, whose native device
  JS cannot reach; its wall time includes copying the activations in and the output back.
- **err** = max |peer - ours| / max |ours| on one output: the peers compute the same math.
- **tfjs-webgpu** (its own GPUDevice on the same Dawn adapter): matMul; attention as
  matMul -> mul -> softmax -> matMul (tfjs has no fused attention); fused.conv2d with bias in NHWC;
  layer norm as moments + batchNorm; softmax.
- **ort-webgpu**: onnxruntime-node's native WebGPU EP, single-op ONNX graphs (weights as
  initializers; default options: its NHWC conv layout measured 2x faster here than NCHW); attention
  as Transpose -> MatMul -> Mul -> Softmax -> MatMul. **ort-webgpu:mha** is its fused
  com.microsoft MultiHeadAttention op, whose output differs from the others (see err) on lavapipe.
- **issue-ref-t8** (matmul only): not a peer but the issue's reference design, our plain
  \`matmul.ts\` kernel with 8x8 scalar outputs per thread and no workgroup memory, run on our device
  in the same rounds. The issue's facts measured it at 10.0 GFLOP/s at 1024^3 on this machine, so
  its column tells how fast the machine was while the table was measured.
`;

const fmt = (x: number | undefined, digits = 2): string => (x === undefined || !Number.isFinite(x) ? '' : x.toFixed(digits));

function rateCell(m: Measurement): string {
  if (m.ours_gflops !== undefined) return `${fmt(m.ours_gflops)} GFLOP/s`;
  if (m.ours_gbps !== undefined) return `${fmt(m.ours_gbps)} GB/s`;
  return '';
}

/** The Markdown table of one run: a row per case, a column group per peer. */
export function resultsTable(lines: Measurement[]): string {
  const peers = [...new Set(lines.filter((m) => m.peer).map((m) => m.peer!))];
  const cases = lines.filter((m) => !m.peer);
  const head = ['case', 'shape', 'ours ms', 'ours wall ms', 'ours rate'];
  for (const p of peers) head.push(`${p} ms`, `${p} / ours`, `${p} err`);
  const rows = [head, head.map(() => '---')];
  for (const c of cases) {
    const row = [c.name, c.shape, `${fmt(c.ours_ms, 1)} (${c.timing})`, fmt(c.ours_wall_ms ?? c.ours_ms, 1), rateCell(c)];
    for (const p of peers) {
      const m = lines.find((l) => l.peer === p && l.name === c.name && l.shape === c.shape);
      if (!m) {
        row.push('', '', '');
        continue;
      }
      row.push(`${fmt(m.peer_ms, 1)} (${m.timing})`, `**${fmt(m.ratio)}x**`, m.peer_rel_err === undefined ? '' : m.peer_rel_err.toExponential(1));
    }
    rows.push(row);
  }
  return rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
}

const sectionId = (info: RunInfo): string => `${info.adapter} | ${info.suite}`;

function section(info: RunInfo, lines: Measurement[]): string {
  const body = [
    `<!-- bench:section ${sectionId(info)} -->`,
    `## ${info.adapter}: ${info.suite}`,
    '',
    `- date: ${info.date}`,
    `- command: \`${info.command}\``,
    ...info.notes.map((n) => `- ${n}`),
    '',
    resultsTable(lines),
    '',
    '<details><summary>JSON lines</summary>',
    '',
    '```',
    ...lines.map((l) => JSON.stringify(l)),
    '```',
    '',
    '</details>',
    `<!-- bench:end -->`,
  ];
  return body.join('\n');
}

/** Writes (or updates) `path` with this run's section. */
export function writeResults(path: string, info: RunInfo, lines: Measurement[]): void {
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const sections: string[] = [];
  const re = /<!-- bench:section (.*?) -->[\s\S]*?<!-- bench:end -->/g;
  for (const match of old.matchAll(re)) if (match[1] !== sectionId(info)) sections.push(match[0]);
  sections.unshift(section(info, lines));
  writeFileSync(path, `${HEADER}\n${sections.join('\n\n')}\n`);
}
