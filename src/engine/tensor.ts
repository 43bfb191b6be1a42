/**
 * Tensor: a shape, a dtype, a refcounted device storage, and (when it needs a gradient) a tape node.
 * Tensors are always contiguous and row-major; reshape shares storage, every other movement op
 * copies. Tensors never dispose themselves: scopes do (scope.ts), or `dispose()`.
 */
import { floatToHalfBits, halfBitsToFloat32 } from '../kernels/cast/half.js';
import type { HostArray } from '../kernels/kernel-spec.js';
import type { Device, DType, Storage } from './device/device.js';
import { DTYPE_BYTES } from './device/device.js';
import { track } from './scope.js';
import { formatShape, numel } from './shape.js';

/** What tensor.ts needs of a tape node (autograd.ts defines it). */
export interface GraphNode {
  readonly op: string;
  decRef(): void;
  incRef(): void;
}

let defaultDevice: Device | null = null;

/** Sets the device tensors are created on when none is given. */
export function setDefaultDevice(device: Device): void {
  defaultDevice = device;
}

export function getDefaultDevice(): Device {
  if (!defaultDevice) throw new Error('no default device: call setDefaultDevice(await createDevice()) first');
  return defaultDevice;
}

export interface TensorOptions {
  device?: Device;
  dtype?: DType;
  requiresGrad?: boolean;
  label?: string;
}

let nextTensorId = 1;

export class Tensor {
  readonly id = nextTensorId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf tensor (kept alive by the tensor; disposed with it). */
  grad: Tensor | null = null;
  /** The tape node that produced this tensor, when it was recorded for autograd. */
  node: GraphNode | null = null;
  private _storage: Storage | null;

  /** Wraps an existing storage and takes one reference to it. Prefer the static constructors. */
  constructor(storage: Storage, shape: readonly number[], dtype: DType, device: Device, requiresGrad = false) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape ${formatShape(shape)}`);
    }
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
    this.requiresGrad = requiresGrad;
    track(this);
  }

  /** Uninitialised tensor: the kernel that fills it must write every element. */
  static empty(shape: readonly number[], dtype: DType = 'f32', device = getDefaultDevice(), label?: string): Tensor {
    const storage = device.alloc(numel(shape) * DTYPE_BYTES[dtype], label);
    return new Tensor(storage, shape, dtype, device);
  }

  static fromArray(
    data: ArrayLike<number>,
    shape: readonly number[],
    options: TensorOptions = {},
  ): Tensor {
    const dtype = options.dtype ?? (data instanceof Int32Array ? 'i32' : 'f32');
    const n = numel(shape);
    if (data.length !== n) {
      throw new Error(`fromArray: ${data.length} values do not fill shape ${formatShape(shape)} (${n} elements)`);
    }
    if (dtype === 'f16' && options.requiresGrad) {
      throw new Error(`fromArray: an f16 tensor ${formatShape(shape)} cannot require a gradient (f16 is inference-only storage)`);
    }
    const host: HostArray = dtype === 'f32' ? Float32Array.from(data) : dtype === 'i32' ? Int32Array.from(data) : halfBits(data);
    const t = Tensor.empty(shape, dtype, options.device ?? getDefaultDevice(), options.label);
    t.device.write(t.storage, host);
    t.requiresGrad = options.requiresGrad ?? false;
    return t;
  }

  static full(shape: readonly number[], value: number, options: TensorOptions = {}): Tensor {
    const dtype = options.dtype ?? 'f32';
    const host = dtype === 'i32' ? new Int32Array(numel(shape)) : new Float32Array(numel(shape));
    host.fill(value);
    return Tensor.fromArray(host, shape, { ...options, dtype });
  }

  static zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return Tensor.full(shape, 0, options);
  }

  static ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return Tensor.full(shape, 1, options);
  }

  static scalar(value: number, options: TensorOptions = {}): Tensor {
    return Tensor.full([], value, options);
  }

  get size(): number {
    return numel(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this._storage === null;
  }

  get storage(): Storage {
    if (this._storage === null) {
      throw new Error(`tensor #${this.id} ${formatShape(this.shape)} was used after it was disposed`);
    }
    return this._storage;
  }

  /** A new tensor object over the same storage (reshape), not recorded on the tape. */
  view(shape: readonly number[]): Tensor {
    if (numel(shape) !== this.size) {
      throw new Error(`view: cannot view ${formatShape(this.shape)} as ${formatShape(shape)}`);
    }
    const storage = this.storage;
    storage.refs++;
    return new Tensor(storage, shape, this.dtype, this.device);
  }

  /** Same values, cut from the tape: no gradient flows through the result. */
  detach(): Tensor {
    return this.view(this.shape);
  }

  dispose(): void {
    const storage = this._storage;
    if (storage === null) return;
    this._storage = null;
    if (--storage.refs === 0) this.device.release(storage);
    this.grad?.dispose();
    this.grad = null;
    const node = this.node;
    this.node = null;
    node?.decRef();
  }

  /** Reads the values back (flushes pending GPU work); f16 tensors come back decoded as f32. */
  async read(): Promise<Float32Array | Int32Array> {
    const bytes = await this.device.read(this.storage, this.size * DTYPE_BYTES[this.dtype]);
    if (this.dtype === 'f16') return halfBitsToFloat32(new Uint16Array(bytes, 0, this.size));
    return this.dtype === 'f32' ? new Float32Array(bytes) : new Int32Array(bytes);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, expected 1`);
    return (await this.read())[0]!;
  }

  toString(): string {
    return `Tensor#${this.id}(${formatShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', grad' : ''})`;
  }
}

/**
 * f16 bit patterns of `data`, each value first rounded to f32 (so that fromArray(..., f16) equals
 * cast(fromArray(...), 'f16')), then to half, nearest-even. The array gets an even length: queue
 * writes must be a multiple of 4 bytes.
 */
function halfBits(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length + (data.length % 2));
  for (let i = 0; i < data.length; i++) out[i] = floatToHalfBits(Math.fround(data[i]!));
  return out;
}
