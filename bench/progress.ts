import { rssMb } from './measure.js';

/** Progress of a long case on stderr (stdout carries the runner's table): a line at most every few seconds. */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #everyMs: number;
  readonly #start = performance.now();
  #last = performance.now();

  constructor(label: string, total: number, everyMs = 5_000) {
    this.#label = label;
    this.#total = total;
    this.#everyMs = everyMs;
  }

  /** `done` of `total` events; prints when the last line is older than everyMs. */
  tick(done: number): void {
    const now = performance.now();
    if (now - this.#last < this.#everyMs) return;
    this.#last = now;
    const rate = Math.round(done / ((now - this.#start) / 1000));
    note(
      `${this.#label}: ${done.toLocaleString('en-US')} of ${this.#total.toLocaleString('en-US')} events ` +
        `(${Math.floor((done / this.#total) * 100)}%), ${rate.toLocaleString('en-US')} events/s, ` +
        `RSS ${Math.round(rssMb())} MiB`,
    );
  }
}

/** One line of progress on stderr. */
export function note(message: string): void {
  process.stderr.write(`    ${message}\n`);
}
