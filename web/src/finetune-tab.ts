/**
 * The Finetune tab: load a dataset (zip, folder, or the synthetic one generated in the page),
 * finetune the loaded segmenter checkpoint with live loss and validation-Dice plots and a stop
 * button, and download the result as a safetensors segmenter checkpoint (which the Node side
 * loads with decodeSegmenterCheckpoint). The Segment tab then uses the finetuned weights.
 */
import type { FreezePolicy } from '../../src/train/segmenter.js';
import type { MedVlsmDataset } from '../../src/train/data/index.js';
import { datasetFromFiles, splitSizes, syntheticDataset } from './datasets.js';
import { type PickedFile, downloadBytes, onInputFiles, setupDropZone } from './files.js';
import { LinePlot } from './plots.js';
import { type AppContext, byId, errorText, published, showError } from './state.js';
import { encodeSegmenterCheckpoint } from '../../src/train/checkpoint.js';
import { type TrainSettings, finetune, validationSplit } from './trainer.js';

export class FinetuneTab {
  private dataset: MedVlsmDataset | null = null;
  private running = false;
  private stopRequested = false;
  /** Steps trained on `stepsModel` in this page (the download's name says it). */
  private stepsDone = 0;
  private stepsModel: unknown = null;
  private readonly lossPlot = new LinePlot(byId<HTMLCanvasElement>('loss-plot'), { xLabel: 'step', yLabel: 'loss' });
  private readonly dicePlot = new LinePlot(byId<HTMLCanvasElement>('dice-plot'), { xLabel: 'step', yLabel: 'Dice', yRange: [0, 1] });

  constructor(private readonly ctx: AppContext) {
    const datasetError = byId('dataset-error');
    const onError = (err: unknown) => {
      console.error(err);
      showError(datasetError, errorText(err));
      byId('dataset-status').textContent = this.dataset ? this.describeDataset(this.dataset) : 'No dataset loaded.';
    };
    const onFiles = (files: PickedFile[]) => this.setDataset(() => datasetFromFiles(files));
    onInputFiles(byId<HTMLInputElement>('dataset-zip-input'), onFiles, onError);
    onInputFiles(byId<HTMLInputElement>('dataset-folder-input'), onFiles, onError);
    setupDropZone(byId('dataset-drop'), onFiles, onError);
    byId('generate-synthetic').addEventListener('click', () => {
      const images = Number(byId<HTMLInputElement>('synthetic-images').value);
      const size = Number(byId<HTMLInputElement>('synthetic-size').value);
      this.setDataset(() => syntheticDataset(images, size)).catch(onError);
    });
    byId('train-start').addEventListener('click', () => {
      this.train().catch((err) => this.trainFailed(err));
    });
    byId('train-stop').addEventListener('click', () => {
      this.stopRequested = true;
      byId('train-status').textContent = 'Stopping after the current step...';
    });
    byId('download-checkpoint').addEventListener('click', () => {
      this.download().catch((err) => showError(byId('train-error'), errorText(err)));
    });
    ctx.onChange(() => this.refresh());
    this.refresh();
  }

  private async setDataset(load: () => Promise<MedVlsmDataset>): Promise<void> {
    showError(byId('dataset-error'), null);
    byId('dataset-status').textContent = 'Reading the dataset...';
    const dataset = await load();
    this.dataset = dataset;
    published.finetune.dataset = { name: dataset.name, splits: splitSizes(dataset) };
    byId('dataset-status').textContent = this.describeDataset(dataset);
    byId('dataset-status').className = 'status ok';
    this.refresh();
  }

  private describeDataset(d: MedVlsmDataset): string {
    const splits = Object.entries(splitSizes(d)).map(([s, n]) => `${s} ${n}`).join(', ');
    const val = validationSplit(d);
    return `${d.name}: ${splits} samples${val ? `; validation Dice on ${val}` : '; no val/test split: no validation Dice'}`;
  }

  /** Which buttons apply now, and what the model line says. */
  private refresh(): void {
    const model = this.ctx.model;
    if (model !== this.stepsModel) {
      this.stepsModel = model;
      this.stepsDone = 0;
    }
    const seg = model?.segmenter ?? null;
    const line = byId('finetune-model');
    if (!model) line.textContent = 'Model: load a webvlsm checkpoint (or the demo) in the Segment tab.';
    else if (!seg) line.textContent = `Model: ${model.name} (${model.kind}) cannot be finetuned here: load a webvlsm segmenter checkpoint (or the demo) in the Segment tab.`;
    else line.textContent = `Model: ${model.name}${this.stepsDone > 0 ? `, finetuned ${this.stepsDone} steps` : ''}`;
    byId<HTMLButtonElement>('train-start').disabled = this.running || !seg || !this.dataset;
    byId<HTMLButtonElement>('train-stop').disabled = !this.running;
    byId<HTMLButtonElement>('download-checkpoint').disabled = this.running || !seg;
  }

  private settings(): TrainSettings {
    const num = (id: string) => Number(byId<HTMLInputElement>(id).value);
    return {
      steps: num('train-steps'),
      batchSize: num('train-batch'),
      lr: num('train-lr'),
      valEvery: num('train-val-every'),
      valSamples: 8,
      freeze: byId<HTMLSelectElement>('train-freeze').value as FreezePolicy,
      loss: byId<HTMLSelectElement>('train-loss').value as TrainSettings['loss'],
    };
  }

  private async train(): Promise<void> {
    const model = this.ctx.model;
    const seg = model?.segmenter;
    if (!model || !seg || !this.dataset) throw new Error('Load a segmenter checkpoint (Segment tab) and a dataset first.');
    showError(byId('train-error'), null);
    const settings = this.settings();
    const losses: Array<[number, number]> = [];
    const dice: Array<[number, number]> = [];
    const state = published.finetune;
    Object.assign(state, { status: 'running', losses: [], valDice: [], message: '' });
    this.running = true;
    this.stopRequested = false;
    this.ctx.setTraining(true);
    this.lossPlot.set([]);
    this.dicePlot.set([]);
    const status = byId('train-status');
    status.textContent = 'Starting (the first step compiles the training pipelines)...';
    const t0 = performance.now();
    const result = await finetune(seg, this.dataset, settings, {
      onStep: (step, loss, gradNorm) => {
        losses.push([step, loss]);
        state.losses.push(loss);
        this.lossPlot.set([{ label: 'training loss', color: '#2563eb', points: losses }]);
        const perStep = (performance.now() - t0) / step;
        status.textContent = `step ${step}/${settings.steps}: loss ${loss.toFixed(4)}, gradient norm ${gradNorm.toFixed(3)} (${(perStep / 1000).toFixed(2)} s/step)`;
      },
      onValidation: (step, meanDice) => {
        dice.push([step, meanDice]);
        state.valDice.push([step, meanDice]);
        this.dicePlot.set([{ label: 'validation Dice', color: '#15803d', points: dice }]);
      },
      shouldStop: () => this.stopRequested,
    });
    this.running = false;
    this.ctx.setTraining(false);
    this.stepsDone += result.steps;
    state.status = result.stopped ? 'stopped' : 'done';
    const first = state.losses[0];
    const last = state.losses[state.losses.length - 1];
    state.message =
      `${result.stopped ? 'Stopped after' : 'Finished'} ${result.steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      (first !== undefined && last !== undefined ? `: loss ${first.toFixed(4)} -> ${last.toFixed(4)}` : '') +
      (dice.length > 0 ? `, validation Dice ${dice[0]![1].toFixed(3)} -> ${dice[dice.length - 1]![1].toFixed(3)}` : '');
    status.textContent = state.message;
    if (result.steps > 0 && !model.name.includes('finetuned')) model.name = `${model.name} (finetuned)`;
    this.ctx.modelUpdated();
  }

  private trainFailed(err: unknown): void {
    console.error(err);
    this.running = false;
    this.ctx.setTraining(false);
    published.finetune.status = 'error';
    published.finetune.message = errorText(err);
    byId('train-status').textContent = '';
    showError(byId('train-error'), `Training failed: ${errorText(err)}`);
    // Some steps may have changed the weights: results shown before are stale.
    this.ctx.modelUpdated();
  }

  private async download(): Promise<void> {
    const seg = this.ctx.model?.segmenter;
    if (!seg) throw new Error('There is no segmenter checkpoint to save: load one in the Segment tab.');
    const bytes = await encodeSegmenterCheckpoint(seg);
    const name = this.stepsDone > 0 ? `webvlsm-finetuned-${this.stepsDone}steps.safetensors` : 'webvlsm-checkpoint.safetensors';
    downloadBytes(bytes, name);
  }
}
