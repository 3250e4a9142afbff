#!/usr/bin/env node
// This repository's own launcher of the CLI from its TypeScript sources, through tsx with this package's tsconfig
// (decorators), from any directory; the tests run it. The published package's command is dist/src/cli/bin.js,
// compiled, which needs no loader (package.json "bin"); this file is not published.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { runProcess } = await import("../src/cli/main.ts");
await runProcess(process.argv.slice(2));
