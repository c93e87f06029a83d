// A checkout of another revision of this repository, to run beside the current code in the same
// bench run (e.g. the commit before a feature, to measure what the feature costs per message).
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './servers.mjs';

export function checkoutBaseline(rev) {
  const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: ROOT }).toString().trim();
  const dir = join(ROOT, 'bench/results', `baseline-${sha}`);
  if (!existsSync(dir)) execFileSync('git', ['worktree', 'add', '--detach', dir, sha], { cwd: ROOT, stdio: 'ignore' });
  // Same dependencies as the current checkout (the baseline's lockfile may differ; say so in the report).
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return { dir, sha };
}
