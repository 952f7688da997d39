/**
 * The live node table of `sextant mini up` on a terminal: redrawn in place (cursor up, clear
 * line) on each change and once a second for the elapsed times. Where the stream is not a
 * terminal, one line per change instead.
 */
import type { NodeView } from '../mini/node-view.js';
import { changeLine, renderTable } from '../mini/table.js';

export interface LiveStream {
  write(s: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export class LiveTable {
  private readonly views = new Map<string, { view: NodeView; at: number }>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: LiveStream,
    private readonly now: () => number = Date.now,
  ) {
    if (out.isTTY) {
      this.timer = setInterval(() => this.draw(), 1000);
      this.timer.unref();
    }
  }

  update(view: NodeView): void {
    this.views.set(view.name, { view, at: this.now() });
    if (this.out.isTTY) this.draw();
    else this.out.write(changeLine(view) + '\n');
  }

  /** A line above the table (a rollout step): on a terminal the table is drawn again below it. */
  note(line: string): void {
    if (!this.out.isTTY) {
      this.out.write(line + '\n');
      return;
    }
    let s = this.drawn > 0 ? `\x1b[${this.drawn}A\r\x1b[J` : '';
    s += `${line}\n`;
    this.out.write(s);
    this.drawn = 0;
    if (this.views.size > 0) this.draw();
  }

  /** Forgets a node (a replaced one leaves the table). */
  remove(name: string): void {
    this.views.delete(name);
  }

  /** The views with the elapsed time of running nodes moved on to now. */
  current(): NodeView[] {
    const t = this.now();
    return [...this.views.values()].map(({ view, at }) => (view.state === 'running' ? { ...view, elapsedSeconds: view.elapsedSeconds + (t - at) / 1000 } : view));
  }

  private draw(): void {
    const lines = renderTable(this.current(), Math.max(40, (this.out.columns ?? 160) - 1));
    let s = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const l of lines) s += `\r\x1b[2K${l}\n`;
    this.out.write(s);
    this.drawn = lines.length;
  }

  /** Last redraw; the table stays on screen. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.out.isTTY && this.views.size > 0) this.draw();
  }
}
