/** Tiny benchmark helpers: median wall time of repeated runs, and one report format. */

export interface Figure {
  name: string;
  value: number;
  unit: string;
}

/** Median seconds of `fn` over at least `minRuns` runs (and at least `minSeconds` total). */
export function timeIt(fn: () => unknown, { minRuns = 5, minSeconds = 0 } = {}): number {
  const times: number[] = [];
  const start = process.hrtime.bigint();
  while (times.length < minRuns || Number(process.hrtime.bigint() - start) / 1e9 < minSeconds) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(times);
}

export async function timeItAsync(fn: () => Promise<unknown>, { minRuns = 5, minSeconds = 0 } = {}): Promise<number> {
  const times: number[] = [];
  const start = process.hrtime.bigint();
  while (times.length < minRuns || Number(process.hrtime.bigint() - start) / 1e9 < minSeconds) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(times);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Prints figures as a table (or JSON lines with BENCH_JSON=1). Benchmarks are programs: they print. */
export function report(bench: string, figures: Figure[]): void {
  if (process.env.BENCH_JSON === '1') {
    for (const f of figures) process.stdout.write(JSON.stringify({ bench, ...f }) + '\n');
    return;
  }
  process.stdout.write(`\n== ${bench}\n`);
  for (const f of figures) {
    const v = f.value >= 100 ? f.value.toFixed(0) : f.value.toFixed(2);
    process.stdout.write(`  ${f.name.padEnd(48)} ${v.padStart(12)} ${f.unit}\n`);
  }
}
