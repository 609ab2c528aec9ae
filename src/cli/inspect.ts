/** `inspect` output: a JSON array of documents, or a Go template per document (-f). */
import { isEngineError } from '../errors/index.js';
import { ExitError, type Ctx } from './ctx.js';
import { renderTemplate } from './format.js';

export async function printInspect(ctx: Ctx, names: string[], format: string | undefined, get: (n: string) => Promise<object>): Promise<void> {
  const results: object[] = [];
  let failed = 0;
  for (const n of names) {
    try {
      results.push(await get(n));
    } catch (e) {
      if (!isEngineError(e)) throw e;
      failed++;
      process.stderr.write(`Error: ${e.describe()}\n`);
    }
  }
  if (format) {
    for (const r of results) ctx.out.write(format === 'json' ? JSON.stringify(r) + '\n' : renderTemplate(format, r as Record<string, unknown>) + '\n');
  } else {
    ctx.out.write(JSON.stringify(results, null, 4) + '\n');
  }
  if (failed) throw new ExitError(1);
}
