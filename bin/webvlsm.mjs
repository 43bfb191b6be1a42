#!/usr/bin/env node
/**
 * The `webvlsm` command (package.json "bin"): `npx webvlsm --help` from the repository after
 * `npm ci`, or `node bin/webvlsm.mjs --help`. Registers the project's TypeScript loader
 * (scripts/register-ts.mjs, esbuild) and runs src/cli/webvlsm.ts.
 */
import '../scripts/register-ts.mjs';

// `webvlsm inspect x | head` closes stdout early: stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const { main } = await import('../src/cli/webvlsm.ts');
process.exitCode = await main(process.argv.slice(2));
