/**
 * The devices every parity test runs on: the CPU reference device always, and the WebGPU device
 * when an adapter exists. With CI=true a missing adapter fails the run instead of skipping.
 */
import { CpuDevice, type Device, WebGpuDevice } from '../../src/engine/index.js';
import { INSTALL_DRIVER_HINT, requestNodeDevice } from '../../src/engine/platform/node.js';

let gpu: Promise<WebGpuDevice | null> | null = null;
let warned = false;

export async function webgpuDevice(): Promise<WebGpuDevice | null> {
  gpu ??= requestNodeDevice().then(({ device, reason }) => {
    if (device) {
      // Printed once per test file, so the log shows which adapter the WebGPU tests ran on.
      console.log(`WebGPU tests run on: ${device.description}`);
      return device;
    }
    if (process.env.CI === 'true') {
      throw new Error(`CI=true but no WebGPU adapter is available: ${reason}. ${INSTALL_DRIVER_HINT}`);
    }
    if (!warned) {
      warned = true;
      console.warn(`\n*** WebGPU tests SKIPPED: ${reason}. To run them, ${INSTALL_DRIVER_HINT} ***\n`);
    }
    return null;
  });
  return gpu;
}

export const cpuDevice = new CpuDevice();

/** [name, device] pairs for describe.each; the WebGPU entry is absent (loudly) without an adapter. */
export async function testDevices(): Promise<[string, Device][]> {
  const list: [string, Device][] = [['cpu', cpuDevice]];
  const g = await webgpuDevice();
  if (g) list.push(['webgpu', g]);
  return list;
}
