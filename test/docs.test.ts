import { expect } from 'chai';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

/**
 * The documentation's code that says it runs: every ```js block after a `<!-- runnable -->` line in README.md and
 * docs/*.md is run as an ES module (importing 'matrix-storage' from this checkout's source), and where an
 * `<!-- output -->` block follows, what it prints must be that.
 */

const ROOT = path.resolve(import.meta.dirname, '..');
const SOURCE = pathToFileURL(path.join(ROOT, 'src/index.ts')).href;
/** The TypeScript loader, by its location here: the examples run in a scratch directory. */
const TSX = import.meta.resolve('tsx');

interface Block { file: string; line: number; code: string; output?: string }

function runnableBlocks(file: string): Block[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const fenced = (from: number): { text: string; end: number } | undefined => {
    let i = from;
    while (i < lines.length && lines[i]!.trim() === '') i++;
    if (!lines[i]?.startsWith('```')) return undefined;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end]!.startsWith('```')) end++;
    return { text: lines.slice(start, end).join('\n'), end: end + 1 };
  };
  const blocks: Block[] = [];
  lines.forEach((l, i) => {
    if (l.trim() !== '<!-- runnable -->') return;
    const code = fenced(i + 1);
    if (!code) throw new Error(`${file}:${i + 1}: <!-- runnable --> is not followed by a code block`);
    let j = code.end;
    while (j < lines.length && lines[j]!.trim() === '') j++;
    const output = lines[j]?.trim() === '<!-- output -->' ? fenced(j + 1)?.text : undefined;
    blocks.push({ file: path.relative(ROOT, file), line: i + 1, code: code.text, ...(output !== undefined ? { output } : {}) });
  });
  return blocks;
}

const files = [path.join(ROOT, 'README.md'), ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join(ROOT, 'docs', f))];
const blocks = files.flatMap(runnableBlocks);

describe('the documentation\'s runnable examples', function () {
  this.timeout(60_000);
  it('README.md has at least two', () => {
    expect(blocks.filter((b) => b.file === 'README.md').length).to.be.at.least(2);
  });
  for (const b of blocks) {
    it(`${b.file}:${b.line} runs${b.output !== undefined ? ' and prints what the docs show' : ''}`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-docs-'));
      try {
        const file = path.join(dir, 'example.mjs');
        fs.writeFileSync(file, b.code.replaceAll("'matrix-storage'", `'${SOURCE}'`));
        const { stdout } = await promisify(execFile)(process.execPath, ['--import', TSX, file], { cwd: dir, env: { ...process.env, TSX_TSCONFIG_PATH: path.join(ROOT, 'tsconfig.json') } });
        if (b.output !== undefined) expect(stdout.trimEnd()).to.equal(b.output.trimEnd());
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
