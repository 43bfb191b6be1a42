/**
 * Learning-rate schedules, per optimizer step:
 *   constant  base lr after a linear warm-up;
 *   cosine    linear warm-up over `warmup` of all steps, then half a cosine down to min_lr
 *             (the recipe the issue measured to work from scratch);
 *   plateau   torch's ReduceLROnPlateau(mode='max') on validation Dice, once per epoch: after
 *             `patience` epochs without improvement the lr is multiplied by `factor` (not below min_lr).
 * The state (plateau scale, best, bad epochs) is saved in resume checkpoints.
 */
import type { ScheduleConfig } from './config.js';

export interface ScheduleState {
  scale: number;
  best: number | null;
  badEpochs: number;
}

export class LrSchedule {
  private state: ScheduleState = { scale: 1, best: null, badEpochs: 0 };

  constructor(readonly config: ScheduleConfig, readonly baseLr: number, readonly totalSteps: number) {}

  /** The lr of optimizer step `step` (0-based). */
  lrAt(step: number): number {
    const { kind, warmup, minLr } = this.config;
    const warm = Math.round(warmup * this.totalSteps);
    if (warm > 0 && step < warm) return this.baseLr * (step + 1) / warm;
    if (kind === 'cosine') {
      const span = Math.max(1, this.totalSteps - warm);
      const t = Math.min(1, (step - warm) / span);
      return minLr + (this.baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * t));
    }
    return Math.max(minLr, this.baseLr * this.state.scale);
  }

  /** Plateau bookkeeping after an epoch's validation (higher is better); true when the lr was reduced. */
  afterValidation(metric: number): boolean {
    if (this.config.kind !== 'plateau' || !Number.isFinite(metric)) return false;
    const s = this.state;
    // torch's default threshold: 1e-4 relative improvement
    if (s.best === null || metric > s.best * (1 + 1e-4)) {
      s.best = metric;
      s.badEpochs = 0;
      return false;
    }
    s.badEpochs++;
    if (s.badEpochs <= this.config.patience) return false;
    const before = this.baseLr * s.scale;
    s.scale *= this.config.factor;
    s.badEpochs = 0;
    return Math.max(this.config.minLr, this.baseLr * s.scale) < before;
  }

  saveState(): ScheduleState {
    return { ...this.state };
  }

  loadState(state: ScheduleState): void {
    if (!(state.scale > 0) || !Number.isInteger(state.badEpochs)) throw new Error(`LrSchedule: invalid saved state ${JSON.stringify(state)}`);
    this.state = { ...state };
  }
}
