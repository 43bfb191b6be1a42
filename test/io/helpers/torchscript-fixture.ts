/**
 * A tiny synthetic TorchScript archive shaped like OpenAI's CLIP `.pt` files (architectures.md §5.4):
 * `__torch__` module objects built with GLOBAL + EMPTY_TUPLE + NEWOBJ + BUILD, fp16 weights with
 * some fp32 tensors, int64 scalar attributes (input_resolution, context_length, vocab_size),
 * torch.jit._pickle helpers, constants.pkl with its own storage, and code/ files that are never read
 * (one is deliberately not valid deflate data).
 */
import { PickleWriter, type TensorSpec } from './pickle-writer.js';
import { type ZipInput, writeZip } from './zip-writer.js';

const u16 = (xs: number[]): Uint8Array => new Uint8Array(Uint16Array.from(xs).buffer);
const f32 = (xs: number[]): Uint8Array => new Uint8Array(Float32Array.from(xs).buffer);
const i64 = (xs: bigint[]): Uint8Array => new Uint8Array(BigInt64Array.from(xs).buffer);

type Attr = [string, (w: PickleWriter) => void];

function object(w: PickleWriter, qualname: string, attrs: Attr[]): void {
  const dot = qualname.lastIndexOf('.');
  w.global(qualname.slice(0, dot), qualname.slice(dot + 1)).emptyTuple().newobj();
  w.emptyDict().mark();
  for (const [name, value] of attrs) {
    w.str(name);
    value(w);
  }
  w.setitems().build();
}

const tensor = (spec: TensorSpec) => (w: PickleWriter) => void w.tensor(spec);
const module = (qualname: string, attrs: Attr[]) => (w: PickleWriter) => object(w, qualname, attrs);
const training: Attr = ['training', (w) => void w.bool(false)];

/** Expected state-dict entries of the synthetic archive: name -> [dtype, shape, f32 values]. */
export const TORCHSCRIPT_EXPECTED: Record<string, [string, number[], number[]]> = {
  'visual.conv1.weight': ['f16', [2, 1, 1, 2], [1, -2, 0.5, 65504]],
  'visual.class_embedding': ['f32', [2], [0.25, -0.75]],
  'visual.transformer.resblocks.0.attn.in_proj_weight': ['f16', [3, 2], [1, 2, 3, 4, 5, 6].map((x) => x / 4)],
  'visual.transformer.resblocks.0.attn.in_proj_bias': ['f16', [3], [0, 0.5, -0.5]],
  'visual.transformer.resblocks.0.attn.out_proj.weight': ['f16', [2, 2], [1, 0, 0, 1]],
  'visual.transformer.resblocks.0.attn.out_proj.bias': ['f32', [2], [0.125, 0.375]],
  'visual.transformer.resblocks.0.ln_1.weight': ['f32', [2], [1.5, 2.5]],
  'visual.proj': ['f16', [2, 2], [1, 0.5, 0.25, 0.125]],
  // The same LayerNorm module object also used as ln_final.
  'ln_final.weight': ['f32', [2], [1.5, 2.5]],
  // A transposed view of the in_proj storage (shares the storage).
  'text_projection': ['f16', [2, 3], [1, 3, 5, 2, 4, 6].map((x) => x / 4)],
  'logit_scale': ['f32', [], [4.605]],
  'input_resolution': ['i64', [], [224]],
  'context_length': ['i64', [], [77]],
  'vocab_size': ['i64', [], [49408]],
};

export function torchscriptArchive(prefix = 'ViT-B-16'): Uint8Array {
  const half = (key: string, numel: number, shape: number[], stride?: number[]): TensorSpec =>
    stride ? { storageType: 'HalfStorage', key, numel, shape, stride } : { storageType: 'HalfStorage', key, numel, shape };
  const float = (key: string, numel: number, shape: number[], offset = 0): TensorSpec =>
    ({ storageType: 'FloatStorage', key, numel, shape, offset, stride: shape.length ? [1] : [] });
  const long = (key: string): TensorSpec => ({ storageType: 'LongStorage', key, numel: 1, shape: [], stride: [] });

  const w = new PickleWriter(2);
  const layerNorm = (w2: PickleWriter): void => {
    object(w2, '__torch__.torch.nn.modules.normalization.LayerNorm', [training, ['weight', tensor(float('6', 2, [2]))], ['bias', (x) => void x.none()]]);
    w2.binput(200);
  };
  object(w, '__torch__.multimodal.model.CLIP', [
    training,
    ['visual', module('__torch__.multimodal.model.VisionTransformer', [
      training,
      ['input_resolution', (x) => void x.int(224)],
      ['conv1', module('__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d', [training, ['weight', tensor(half('0', 4, [2, 1, 1, 2]))], ['bias', (x) => void x.none()]])],
      ['class_embedding', tensor(float('1', 4, [2], 2))],
      ['transformer', module('__torch__.multimodal.model.Transformer', [
        training,
        ['resblocks', module('__torch__.torch.nn.modules.container.Sequential', [
          training,
          ['0', module('__torch__.multimodal.model.ResidualAttentionBlock', [
            training,
            ['attn', module('__torch__.torch.nn.modules.activation.MultiheadAttention', [
              training,
              ['in_proj_weight', tensor(half('2', 6, [3, 2]))],
              ['in_proj_bias', tensor(half('3', 3, [3]))],
              ['out_proj', module('__torch__.torch.nn.modules.linear.NonDynamicallyQuantizableLinear', [
                training,
                ['weight', tensor(half('4', 4, [2, 2]))],
                ['bias', tensor(float('5', 2, [2]))],
              ])],
              ['_qkv_same_embed_dim', (x) => void x.bool(true)],
            ])],
            ['ln_1', layerNorm],
            ['attn_mask', (x) => void x.none()],
          ])],
        ])],
        ['widths', (x) => void x.global('torch.jit._pickle', 'build_intlist').mark().emptyList().mark().int(1).int(2).appends().tuple().reduce()],
      ])],
      ['proj', tensor(half('7', 4, [2, 2]))],
    ])],
    ['ln_final', (x) => void x.binget(200)],
    ['text_projection', tensor(half('2', 6, [2, 3], [1, 2]))],
    ['logit_scale', tensor(float('8', 1, []))],
    ['input_resolution', tensor(long('9'))],
    ['context_length', tensor(long('10'))],
    ['vocab_size', tensor(long('11'))],
    ['dtype_info', (x) => void x.global('torch.jit._pickle', 'restore_type_tag').emptyDict().mark().str('a').int(1).setitems().str('Dict[str, int]').tuple(2).reduce()],
    ['device', (x) => void x.global('torch', 'device').str('cuda:0').tuple(1).reduce()],
  ]);
  const data = w.done();
  const constants = new PickleWriter(2).mark().tensor({ storageType: 'FloatStorage', key: '0', numel: 2, shape: [2] }).tuple().done();
  const entries: ZipInput[] = [
    { name: `${prefix}/data.pkl`, data },
    { name: `${prefix}/code/__torch__/multimodal/model.py`, data: new TextEncoder().encode('import os\nos.system("id")\n'.repeat(20)), method: 8 },
    { name: `${prefix}/code/__torch__/multimodal/model.py.debug_pkl`, data: new Uint8Array(300), method: 8, compressed: Uint8Array.from([0xff, 0xff, 0xff, 0xff]) },
    { name: `${prefix}/constants.pkl`, data: constants },
    { name: `${prefix}/constants/0`, data: f32([3, 4]) },
    { name: `${prefix}/data/0`, data: u16([0x3c00, 0xc000, 0x3800, 0x7bff]) },
    { name: `${prefix}/data/1`, data: f32([9, 9, 0.25, -0.75]) },
    { name: `${prefix}/data/2`, data: u16([0x3400, 0x3800, 0x3a00, 0x3c00, 0x3d00, 0x3e00]) },
    { name: `${prefix}/data/3`, data: u16([0x0000, 0x3800, 0xb800]) },
    { name: `${prefix}/data/4`, data: u16([0x3c00, 0x0000, 0x0000, 0x3c00]) },
    { name: `${prefix}/data/5`, data: f32([0.125, 0.375]) },
    { name: `${prefix}/data/6`, data: f32([1.5, 2.5]) },
    { name: `${prefix}/data/7`, data: u16([0x3c00, 0x3800, 0x3400, 0x3000]) },
    { name: `${prefix}/data/8`, data: f32([4.605]) },
    { name: `${prefix}/data/9`, data: i64([224n]) },
    { name: `${prefix}/data/10`, data: i64([77n]) },
    { name: `${prefix}/data/11`, data: i64([49408n]) },
    { name: `${prefix}/version`, data: new TextEncoder().encode('3\n') },
    { name: `${prefix}/extra/note.txt`, data: new TextEncoder().encode('never read') },
  ];
  return writeZip(entries);
}
