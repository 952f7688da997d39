/**
 * One fuzz campaign: `runs` hostile bodies (test/helpers/hostile-bodies.ts) into one endpoint
 * through `send`, each answer judged; the first bad answer fails the campaign with the body
 * that caused it (no shrinking: a 500 KB body would take minutes to shrink). Returns the
 * count, the time and how often each refusal code came back.
 */
import fc from 'fast-check';
import { hostileBody, judge } from './hostile-bodies.js';

export interface FuzzTarget {
  route: string;
  sample: () => Record<string, unknown>;
  send(body: string | Buffer): Promise<{ status: number; body: unknown }>;
  /** True when the route may legitimately answer 200 to this body (the nonce route and `{}`). */
  mayAccept(body: string | Buffer): boolean;
  /** Checked after every answer (e.g. the audit bytes that request cost); returns what is wrong. */
  after?(): Promise<string | undefined>;
}

export interface CampaignResult {
  route: string;
  runs: number;
  ms: number;
  codes: Record<string, number>;
}

function preview(body: string | Buffer): string {
  const s = typeof body === 'string' ? body : body.toString('latin1');
  return `${s.length} bytes: ${JSON.stringify(s.slice(0, 160))}`;
}

export async function campaign(target: FuzzTarget, runs: number, o: { maxString?: number; seed?: number } = {}): Promise<CampaignResult> {
  const codes: Record<string, number> = {};
  const start = process.hrtime.bigint();
  const details = await fc.check(
    fc.asyncProperty(hostileBody(target.sample, o.maxString), async (body) => {
      const a = await target.send(body);
      const bad = judge(a.status, a.body, target.mayAccept(body));
      if (bad) throw new Error(`${target.route}: ${bad} for ${preview(body)}`);
      const code = a.status === 200 ? '200' : String((a.body as { code: string }).code);
      codes[code] = (codes[code] ?? 0) + 1;
      const after = await target.after?.();
      if (after) throw new Error(`${target.route}: ${after} for ${preview(body)}`);
    }),
    { numRuns: runs, seed: o.seed, endOnFailure: true },
  );
  // fast-check's own report prints the whole counterexample (up to 600 KB): ours names it in 160 characters.
  if (details.failed) {
    const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${why} (after ${details.numRuns} bodies; replay with seed ${details.seed}, path ${details.counterexamplePath})`);
  }
  return { route: target.route, runs, ms: Number(process.hrtime.bigint() - start) / 1e6, codes };
}

export function summary(r: CampaignResult): string {
  const top = Object.entries(r.codes).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
  return `${r.route}: ${r.runs} bodies in ${(r.ms / 1000).toFixed(1)} s (${Math.round((r.runs / r.ms) * 1000)}/s): ${top}`;
}
