// Writes cli/summaries.ts and docs/cli.md from the built command registry (npm run gen:cli).
import { writeFile } from 'node:fs/promises';
const root = new URL('..', import.meta.url);
const { registry } = await import(new URL('dist/cli/registry.js', root).href);
const { renderSummaries, renderCliReference } = await import(new URL('dist/cli/reference.js', root).href);
const cmds = await registry();
await writeFile(new URL('cli/summaries.ts', root), renderSummaries(cmds));
await writeFile(new URL('docs/cli.md', root), renderCliReference(cmds));
process.stdout.write(`cli/summaries.ts, docs/cli.md: ${cmds.length} commands\n`);
