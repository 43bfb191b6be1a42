/**
 * npm run adapter: prints the WebGPU adapter Dawn finds (and the limits and features the engine
 * uses). Without an adapter it prints why and how to install the driver; with CI=true it exits 1.
 */
import { webgpuOrNull } from './gpu.js';

async function main(): Promise<number> {
  const device = await webgpuOrNull('Everything');
  if (!device) {
    console.log('webgpu adapter: none');
    return 0;
  }
  const { limits, features } = device.gpu;
  console.log(`webgpu adapter: ${device.description}`);
  const shown = [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupsPerDimension',
  ] as const;
  for (const name of shown) console.log(`  ${name.padEnd(34)} ${limits[name]}`);
  console.log(`  features: ${[...features].sort().join(', ') || '(none)'}`);
  device.destroy();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`adapter: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
