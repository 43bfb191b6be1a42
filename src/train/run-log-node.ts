/**
 * A run's logs: log.jsonl (every record, one JSON object per line), steps.csv and epochs.csv (the
 * same records as tables), and a progress line on stderr (redrawn in place on a terminal, one line
 * per 10% of an epoch otherwise). On --resume the files are cut back to the resumed step, so
 * every step appears once; a line half-written by a killed process is dropped.
 */
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeBytesAtomic } from './checkpoint-node.js';

export interface StepRecord {
  type: 'step';
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  ms: number;
}

export interface EpochRecord {
  type: 'epoch';
  epoch: number;
  step: number;
  train_loss: number;
  val_dice: number | null;
  val_iou: number | null;
  lr: number;
  best: boolean;
  seconds: number;
}

export type LogRecord = StepRecord | EpochRecord;

const STEP_COLUMNS = ['step', 'epoch', 'loss', 'lr', 'grad_norm', 'ms'] as const;
const EPOCH_COLUMNS = ['epoch', 'step', 'train_loss', 'val_dice', 'val_iou', 'lr', 'best', 'seconds'] as const;

function csvLine(values: readonly unknown[]): string {
  return `${values.map((v) => (v === null || v === undefined ? '' : String(v))).join(',')}\n`;
}

export class RunLog {
  readonly records: LogRecord[] = [];

  private constructor(readonly dir: string) {}

  /** Opens the logs of `dir`: fresh (files replaced) or resumed at `step` / `epoch`. */
  static async open(dir: string, resumeAt: { step: number; epoch: number } | null): Promise<RunLog> {
    const log = new RunLog(dir);
    if (resumeAt) {
      let text = '';
      try {
        text = await readFile(join(dir, 'log.jsonl'), 'utf8');
      } catch {
        // no log yet
      }
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        let r: LogRecord;
        try {
          r = JSON.parse(line) as LogRecord;
        } catch {
          continue; // a line cut by a kill
        }
        const keep = r.type === 'step' ? r.step <= resumeAt.step : r.epoch < resumeAt.epoch;
        if (keep) log.records.push(r);
      }
    }
    await log.rewrite();
    return log;
  }

  async append(record: LogRecord): Promise<void> {
    this.records.push(record);
    await appendFile(join(this.dir, 'log.jsonl'), `${JSON.stringify(record)}\n`);
    if (record.type === 'step') await appendFile(join(this.dir, 'steps.csv'), csvLine(STEP_COLUMNS.map((c) => record[c])));
    else await appendFile(join(this.dir, 'epochs.csv'), csvLine(EPOCH_COLUMNS.map((c) => record[c])));
  }

  private async rewrite(): Promise<void> {
    const steps = this.records.filter((r): r is StepRecord => r.type === 'step');
    const epochs = this.records.filter((r): r is EpochRecord => r.type === 'epoch');
    const enc = (s: string) => new TextEncoder().encode(s);
    await writeBytesAtomic(join(this.dir, 'log.jsonl'), enc(this.records.map((r) => `${JSON.stringify(r)}\n`).join('')));
    await writeBytesAtomic(join(this.dir, 'steps.csv'), enc(csvLine(STEP_COLUMNS) + steps.map((r) => csvLine(STEP_COLUMNS.map((c) => r[c]))).join('')));
    await writeBytesAtomic(join(this.dir, 'epochs.csv'), enc(csvLine(EPOCH_COLUMNS) + epochs.map((r) => csvLine(EPOCH_COLUMNS.map((c) => r[c]))).join('')));
  }

  static async removeAll(dir: string): Promise<void> {
    for (const f of ['log.jsonl', 'steps.csv', 'epochs.csv']) await rm(join(dir, f), { force: true });
  }
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** The progress line: epoch, bar, step within epoch, loss, lr, speed, ETA. */
export class ProgressLine {
  private lastDecile = -1;
  constructor(private readonly write: (text: string) => void, private readonly tty: boolean) {}

  update(p: { epoch: number; epochs: number; batch: number; batches: number; loss: number; lr: number; secPerStep: number; remainingSteps: number }): void {
    const frac = p.batches > 0 ? p.batch / p.batches : 1;
    const width = 20;
    const filled = Math.round(frac * width);
    const line = `epoch ${p.epoch + 1}/${p.epochs} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.batch}/${p.batches} ` +
      `loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} ${p.secPerStep.toFixed(2)} s/step ETA ${duration(p.secPerStep * p.remainingSteps)}`;
    if (this.tty) {
      this.write(`\r${line}\x1b[K`);
      return;
    }
    const decile = Math.floor(frac * 10);
    if (decile !== this.lastDecile || p.batch === p.batches) {
      this.lastDecile = decile;
      this.write(`${line}\n`);
    }
  }

  message(text: string): void {
    this.lastDecile = -1;
    this.write(`${this.tty ? '\r\x1b[K' : ''}${text}\n`);
  }
}
