/**
 * Lets Node 20 run the project's TypeScript directly:
 *   node --import ./scripts/register-ts.mjs src/cli/demo.ts
 *
 * Node 20 cannot strip types itself, so this registers ESM loader hooks (ts-hooks.mjs, running on
 * Node's loader thread) that transpile each .ts file with esbuild's transformSync (no type check:
 * `npx tsc --noEmit` does that) and map the `./x.js` specifiers of TypeScript's NodeNext style to
 * `./x.ts` when no .js file exists.
 */
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
// Stack traces point into the TypeScript sources (esbuild emits inline source maps).
process.setSourceMapsEnabled(true);
