#!/usr/bin/env node
// The installed `matrix-storage` command: loads the TypeScript CLI through tsx's loader, with this package's
// tsconfig (decorators) whatever directory it is run from.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { runProcess } = await import("../src/cli/main.ts");
await runProcess(process.argv.slice(2));
