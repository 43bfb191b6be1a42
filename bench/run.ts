/**
 * npm run bench [-- --filter <text>] [--device webgpu|cpu]: prints one JSON line per measurement.
 * Without a WebGPU adapter it measures the CPU device and says so on stderr.
 */
import { CpuDevice, type Device } from '../src/engine/index.js';
import { INSTALL_DRIVER_HINT, requestNodeDevice } from '../src/engine/platform/node.js';
import { measure } from './harness.js';
import { KERNEL_CASES } from './kernels/model-shapes.bench.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function pickDevice(): Promise<Device> {
  if (flag('--device') === 'cpu') return new CpuDevice();
  const { device, reason } = await requestNodeDevice();
  if (device) return device;
  console.error(`bench: no WebGPU adapter (${reason}); measuring the CPU device. To bench WebGPU, ${INSTALL_DRIVER_HINT}`);
  return new CpuDevice();
}

const filter = flag('--filter');
const device = await pickDevice();
for (const c of KERNEL_CASES) {
  if (filter && !`${c.name} ${c.shape}`.includes(filter)) continue;
  console.log(JSON.stringify(await measure(device, c)));
}
