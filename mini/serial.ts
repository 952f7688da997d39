/** A node's serial console as the host sees it: a file QEMU appends to, read as it grows. */
import { open } from 'node:fs/promises';

/** A console line and when the host saw it (seconds since the boot started). */
export interface ConsoleLine {
  t: number;
  text: string;
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Tails a file QEMU appends to, splitting it into lines stamped with the host time. */
export class SerialTail {
  private offset = 0;
  private partial = '';
  readonly lines: ConsoleLine[] = [];

  /** `t0`: process.hrtime.bigint() when the boot started; `skew`: seconds to add (a boot that started before this tail). */
  constructor(
    private readonly file: string,
    private readonly t0: bigint,
    private readonly skew = 0,
  ) {}

  async poll(): Promise<ConsoleLine[]> {
    const fh = await open(this.file, 'r').catch(() => undefined);
    if (!fh) return [];
    try {
      const fresh: ConsoleLine[] = [];
      for (;;) {
        const buf = Buffer.alloc(65536);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.partial += buf.subarray(0, bytesRead).toString('latin1');
      }
      const t = Number(process.hrtime.bigint() - this.t0) / 1e9 + this.skew;
      const parts = this.partial.split(/\r?\n/);
      this.partial = parts.pop() ?? '';
      for (const p of parts) {
        const text = p.replace(ANSI, '').replace(/\r/g, '');
        if (text.trim() === '') continue;
        const l = { t, text };
        this.lines.push(l);
        fresh.push(l);
      }
      return fresh;
    } finally {
      await fh.close();
    }
  }
}

/** systemd's "A start job is running" spinner lines: noise in a console tail. */
export const SPINNER_LINE = /Job .* running \(/;

/** The last `n` meaningful console lines, stamped. */
export function consoleTail(lines: readonly ConsoleLine[], n = 60): string {
  return lines
    .filter((l) => !SPINNER_LINE.test(l.text))
    .slice(-n)
    .map((l) => `${l.t.toFixed(1).padStart(7)} | ${l.text}`)
    .join('\n');
}
