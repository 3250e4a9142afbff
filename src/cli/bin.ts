#!/usr/bin/env node
// The installed `matrix-storage` command (package.json "bin"): the compiled CLI, no TypeScript loader needed.
import { runProcess } from './main.js';

await runProcess(process.argv.slice(2));
