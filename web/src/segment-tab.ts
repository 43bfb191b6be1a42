/**
 * The Segment tab: load a model and an image, type prompts, see each prompt's probability map and
 * thresholded overlay (the threshold slider re-draws without running the model again), download
 * masks as PNG. Timings: weight loading, pipeline compilation (the warm-up forward) and inference.
 */
import { type Image, type ProbabilityMap, applyOrientation, decodeImage, encodePng, labelMap, maskPng } from '../../src/models/image/index.js';
import { type PickedFile, downloadBytes, fetchAsset, formatMs, onInputFiles, setupDropZone } from './files.js';
import { type LoadedModel, loadModelFiles, loadSegmenterBytes, warmUp } from './models.js';
import { coverage, drawImage, heatmapImage, overlayImage, promptColor } from './render.js';
import { type AppContext, byId, errorText, published, showError } from './state.js';

interface Result {
  prompts: string[];
  maps: ProbabilityMap[];
}

/** Larger maps are not copied into window.__webvlsm (the tests use small images). */
const MAX_PUBLISHED_PIXELS = 512 * 512;

export class SegmentTab {
  private image: { image: Image; name: string } | null = null;
  private result: Result | null = null;
  private busy = false;
  private seenRevision = -1;
  private seenModel: LoadedModel | null = null;
  private readonly threshold = byId<HTMLInputElement>('threshold');

  constructor(private readonly ctx: AppContext) {
    const modelError = byId('model-error');
    const onModelError = (err: unknown) => this.fail(modelError, err);
    const onModelFiles = (files: PickedFile[]) => this.loadModel(() => loadModelFiles(files, this.loadOptions()));
    onInputFiles(byId<HTMLInputElement>('model-folder-input'), onModelFiles, onModelError);
    onInputFiles(byId<HTMLInputElement>('model-files-input'), onModelFiles, onModelError);
    setupDropZone(byId('model-drop'), onModelFiles, onModelError);
    byId('load-demo-model').addEventListener('click', () => {
      const path = published.build.demoCheckpoint;
      if (!path) return this.fail(modelError, new Error('The demo checkpoint is not part of this build (weights/demo/ had none when the app was built).'));
      this.loadModel(async () => loadSegmenterBytes(await fetchAsset(path), 'demo checkpoint', this.device())).catch(onModelError);
    });

    const imageError = byId('image-error');
    const onImageError = (err: unknown) => this.fail(imageError, err);
    const onImageFiles = async (files: PickedFile[]) => {
      if (files.length !== 1) throw new Error(`Pick one image (got ${files.length} files).`);
      this.setImage(new Uint8Array(await files[0]!.file.arrayBuffer()), files[0]!.path);
    };
    onInputFiles(byId<HTMLInputElement>('image-input'), onImageFiles, onImageError);
    setupDropZone(byId('image-drop'), onImageFiles, onImageError);
    byId('load-demo-image').addEventListener('click', () => {
      const path = published.build.demoImage;
      if (!path) return this.fail(imageError, new Error('The demo image is not part of this build (weights/demo/ had none when the app was built).'));
      fetchAsset(path)
        .then((bytes) => {
          this.setImage(bytes, 'demo image');
          // The demo image comes with prompts for its objects (weights/demo/demo-image.json).
          if (published.build.demoPrompts.length > 0) byId<HTMLTextAreaElement>('prompts').value = published.build.demoPrompts.join('\n');
        })
        .catch(onImageError);
    });

    byId('segment-button').addEventListener('click', () => {
      this.segment().catch((err) => this.fail(byId('segment-error'), err));
    });
    this.threshold.addEventListener('input', () => this.render());
    ctx.onChange(() => this.contextChanged());
  }

  private device() {
    if (!this.ctx.device) throw new Error('There is no device to run models on: see the WebGPU message above.');
    return this.ctx.device;
  }

  private loadOptions() {
    return {
      device: this.device(),
      crisConfig: byId<HTMLSelectElement>('cris-config').value,
      crisWordLen: Number(byId<HTMLInputElement>('cris-word-len').value),
    };
  }

  private fail(el: HTMLElement, err: unknown): void {
    console.error(err);
    showError(el, errorText(err));
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    byId<HTMLButtonElement>('segment-button').disabled = busy || this.ctx.training || !this.ctx.model || !this.image;
  }

  private async loadModel(load: () => Promise<LoadedModel>): Promise<void> {
    if (this.ctx.training) throw new Error('The model is being finetuned: stop the training before loading another model.');
    if (this.busy) throw new Error('Wait until the current model load or segmentation has finished.');
    const status = byId('model-status');
    showError(byId('model-error'), null);
    this.setBusy(true);
    status.className = 'status';
    status.textContent = 'Loading the model...';
    this.ctx.setModel(null);
    Object.assign(published.timings, { loadMs: null, compileMs: null, pipelines: null, inferMs: null });
    this.showTimings();
    const t0 = performance.now();
    let model: LoadedModel | null = null;
    let warm: { ms: number; pipelines: number };
    try {
      model = await load();
      published.timings.loadMs = performance.now() - t0;
      this.showTimings();
      status.textContent = `Compiling pipelines (first forward of ${model.name})...`;
      warm = await warmUp(model, this.device());
    } catch (err) {
      model?.dispose();
      status.textContent = 'No model loaded.';
      this.setBusy(false);
      throw err;
    }
    published.timings.compileMs = warm.ms;
    published.timings.pipelines = warm.pipelines;
    this.ctx.setModel(model);
    this.setBusy(false);
  }

  /** A new or finetuned model makes the shown results stale; a training run blocks segmenting. */
  private contextChanged(): void {
    const model = this.ctx.model;
    if (this.ctx.revision !== this.seenRevision) {
      this.seenRevision = this.ctx.revision;
      this.result = null;
      this.render();
      if (model && model !== this.seenModel) this.threshold.value = String(model.defaultThreshold);
      this.seenModel = model;
    }
    const status = byId('model-status');
    if (model) {
      status.className = 'status ok';
      status.textContent = `${model.name} (${model.kind}) on ${this.device().description}\n${model.notes.join('\n')}`;
    } else {
      status.className = 'status';
      status.textContent = 'No model loaded.';
    }
    this.showTimings();
    this.setBusy(this.busy);
  }

  private setImage(bytes: Uint8Array, name: string): void {
    showError(byId('image-error'), null);
    let image: Image;
    try {
      const decoded = decodeImage(bytes, name);
      image = applyOrientation(decoded, decoded.orientation);
    } catch (err) {
      throw new Error(`${name} is not an image this app can read (PNG or JPEG): ${errorText(err)}`);
    }
    this.image = { image, name };
    this.result = null;
    published.image = { name, width: image.width, height: image.height };
    byId('image-status').textContent = `${name}: ${image.width} x ${image.height}, ${image.channels} channel${image.channels > 1 ? 's' : ''}`;
    this.render();
    this.setBusy(this.busy);
  }

  private async segment(): Promise<void> {
    const model = this.ctx.model;
    const image = this.image;
    if (!model || !image) throw new Error('Load a model and an image first.');
    const prompts = byId<HTMLTextAreaElement>('prompts')
      .value.split('\n')
      .map((p) => p.trim())
      .filter((p) => p.length > 0);
    if (prompts.length === 0) throw new Error('Type at least one prompt (one per line).');
    showError(byId('segment-error'), null);
    this.setBusy(true);
    const t0 = performance.now();
    let maps: ProbabilityMap[];
    try {
      maps = await model.predict(image.image, prompts);
    } finally {
      this.setBusy(false);
    }
    published.timings.inferMs = performance.now() - t0;
    // Another image was loaded meanwhile: these maps belong to the old one.
    if (this.image !== image) return;
    this.result = { prompts, maps };
    this.render();
    this.showTimings();
    const runs = (published.segmentation?.runs ?? 0) + 1;
    const small = image.image.width * image.image.height <= MAX_PUBLISHED_PIXELS;
    published.segmentation = {
      runs,
      prompts,
      width: image.image.width,
      height: image.image.height,
      threshold: Number(this.threshold.value),
      probabilities: small ? maps.map((m) => Array.from(m.data, (p) => Math.round(p * 1e6) / 1e6)) : [],
    };
  }

  private showTimings(): void {
    const t = published.timings;
    byId('time-load').textContent = formatMs(t.loadMs);
    byId('time-compile').textContent = t.compileMs === null ? '-' : `${formatMs(t.compileMs)} (${t.pipelines} pipelines)`;
    byId('time-infer').textContent = formatMs(t.inferMs);
  }

  /** Re-draws the image, and each prompt's probability map and overlay at the current threshold. */
  private render(): void {
    const threshold = Number(this.threshold.value);
    byId('threshold-value').textContent = threshold.toFixed(2);
    if (published.segmentation) published.segmentation.threshold = threshold;
    const root = byId('results');
    root.replaceChildren();
    if (!this.image) {
      root.innerHTML = '<p class="placeholder">Load a model and an image, type prompts and press <b>Segment</b>.</p>';
      return;
    }
    const image = this.image.image;
    const head = row(root, null);
    head.append(figure(image, `input: ${this.image.name} (${image.width} x ${image.height})`, 'view-input'));
    const result = this.result;
    if (!result) return;
    if (result.maps.length > 1) {
      head.append(figure(overlayImage(image, result.maps, threshold), 'all prompts', 'view-overlay-all'));
      head.append(button('Download label map (PNG)', 'download-labels', () => downloadBytes(encodePng(labelMap(result.maps, threshold)), 'labels.png', 'image/png')));
    }
    result.maps.forEach((map, k) => {
      const r = row(root, { text: result.prompts[k]!, color: promptColor(k) });
      r.append(figure(heatmapImage(map), 'probability (0 dark, 1 yellow)', `view-prob-${k}`));
      r.append(figure(overlayImage(image, [map], threshold), `mask: p > ${threshold.toFixed(2)}`, `view-overlay-${k}`));
      const actions = document.createElement('div');
      actions.className = 'result-actions';
      actions.append(`${(coverage(map, threshold) * 100).toFixed(1)}% of the image above the threshold`);
      actions.append(button('Download mask (PNG)', `download-mask-${k}`, () => downloadBytes(maskPng(map, threshold), `mask-${k + 1}-${slug(result.prompts[k]!)}.png`, 'image/png')));
      r.append(actions);
    });
  }
}

function row(root: HTMLElement, title: { text: string; color: readonly number[] } | null): HTMLElement {
  const r = document.createElement('div');
  r.className = 'result-row';
  if (title) {
    const h = document.createElement('h3');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${title.color.join(',')})`;
    h.append(swatch, `"${title.text}"`);
    r.append(h);
  }
  root.append(r);
  return r;
}

function figure(image: Image, caption: string, id: string): HTMLElement {
  const fig = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.className = 'view';
  canvas.id = id;
  drawImage(canvas, image);
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  fig.append(canvas, cap);
  return fig;
}

function button(label: string, id: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.id = id;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'prompt';
}
