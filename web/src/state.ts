/**
 * What the two tabs share (the device, the loaded model) and the state the page publishes for
 * tests and for anyone curious: `window.__webvlsm` (plain JSON values only, so Playwright can read
 * it with page.evaluate).
 */
import type { Device } from '../../src/engine/index.js';
import type { LoadedModel } from './models.js';

/** The app's published state (see the end-to-end tests in test/browser/). */
export interface PublishedState {
  /** True once start-up finished (with or without a GPU). */
  ready: boolean;
  gpu: { ok: boolean; kind: 'webgpu' | 'cpu' | null; adapter: string; message: string; limits: Record<string, number> };
  build: { demoCheckpoint: string | null; demoImage: string | null; demoPrompts: string[] };
  model: { kind: string; name: string; threshold: number; notes: string[] } | null;
  /** Timings in milliseconds of the last load / warm-up / segmentation. */
  timings: { loadMs: number | null; compileMs: number | null; pipelines: number | null; inferMs: number | null };
  image: { name: string; width: number; height: number } | null;
  /** The last segmentation (probabilities rounded to 1e-6, row-major, one array per prompt). */
  segmentation: {
    runs: number;
    prompts: string[];
    width: number;
    height: number;
    threshold: number;
    probabilities: number[][];
  } | null;
  finetune: {
    status: 'idle' | 'running' | 'done' | 'stopped' | 'error';
    dataset: { name: string; splits: Record<string, number> } | null;
    losses: number[];
    valDice: Array<[number, number]>;
    message: string;
  };
  /** Every error message the page showed, in order. */
  errors: string[];
}

export const published: PublishedState = {
  ready: false,
  gpu: { ok: false, kind: null, adapter: '', message: '', limits: {} },
  build: { demoCheckpoint: null, demoImage: null, demoPrompts: [] },
  model: null,
  timings: { loadMs: null, compileMs: null, pipelines: null, inferMs: null },
  image: null,
  segmentation: null,
  finetune: { status: 'idle', dataset: null, losses: [], valDice: [], message: '' },
  errors: [],
};

(globalThis as { __webvlsm?: PublishedState }).__webvlsm = published;

type Listener = () => void;

/** The device and model the tabs share; listeners hear about model changes and training runs. */
export class AppContext {
  device: Device | null = null;
  /** True while the Finetune tab trains the model: nothing else may use or replace it then. */
  training = false;
  /** Bumped whenever the model or its weights change: results computed before are stale. */
  revision = 0;
  private current: LoadedModel | null = null;
  private readonly listeners: Listener[] = [];

  get model(): LoadedModel | null {
    return this.current;
  }

  /** Replaces the model (the old one is disposed) and tells the tabs. */
  setModel(model: LoadedModel | null): void {
    if (this.training) throw new Error('The model is being finetuned: stop the training first (Finetune tab).');
    if (this.current && this.current !== model) this.current.dispose();
    this.current = model;
    this.modelUpdated();
  }

  /** The model's weights changed in place (finetuned), or it was replaced. */
  modelUpdated(): void {
    this.revision++;
    const model = this.current;
    published.model = model ? { kind: model.kind, name: model.name, threshold: model.defaultThreshold, notes: model.notes } : null;
    this.notify();
  }

  setTraining(training: boolean): void {
    this.training = training;
    this.notify();
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

/** Shows `message` in the element (or hides it when null) and records it in `published.errors`. */
export function showError(el: HTMLElement, message: string | null): void {
  if (message === null) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  el.hidden = false;
  el.textContent = message;
  published.errors.push(message);
}

/** The message of anything thrown. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** getElementById that fails loudly when the page and the code disagree. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`webvlsm app: the page has no element #${id}`);
  return el as T;
}
