/**
 * A simulated network link for the replication benchmark: a pair of streams, one per direction, that count the
 * bytes going through, delay every chunk by a fixed one-way latency, in order, without limiting throughput (a chunk
 * is held for `delayMs` from the moment it enters, however many are in flight: a long cable, not a stop-and-wait
 * link), and measure the one-way flights on the session's critical path. One flavour for Web Streams (this
 * library), one for Node streams (hyperlog 4).
 *
 * Flights: every chunk leaving a side is one flight later than the latest chunk that side had received (the first
 * chunks are flight 1), so the session's last flight counts the one-way trips that had to happen one after
 * another, as the exchange actually ran. Two flights make a round trip. With no latency the chunks interleave
 * arbitrarily and the count means little. With latency, processing time does not count (unlike in a figure derived
 * from wall time) as long as a side has sent a flight before the peer's next one reaches it; a chunk sent after
 * that counts one flight later, whether or not it answers it.
 *
 * @module
 */
import { Transform } from "node:stream";

/** The two ends of a link. */
export type End = 0 | 1;

/** A FIFO of chunks, each released `delayMs` after it entered; `release` is called in entry order. */
class DelayLine<C> {
  readonly #delayMs: number;
  readonly #release: (chunk: C, flight: number) => void;
  #queue: { due: number; chunk: C; flight: number }[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #drained: (() => void) | undefined;

  constructor(delayMs: number, release: (chunk: C, flight: number) => void) {
    this.#delayMs = delayMs;
    this.#release = release;
  }

  /** Holds `chunk` for the delay, or releases it at once when the delay is 0. */
  push(chunk: C, flight: number): void {
    if (this.#delayMs <= 0) return this.#release(chunk, flight);
    this.#queue.push({ due: performance.now() + this.#delayMs, chunk, flight });
    this.#timer ??= setTimeout(this.#pump, this.#delayMs);
  }

  /** Resolves once every chunk held has been released. */
  drained(): Promise<void> {
    if (this.#head === this.#queue.length) return Promise.resolve();
    return new Promise((resolve) => (this.#drained = resolve));
  }

  #pump = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#head < this.#queue.length && this.#queue[this.#head]!.due <= now) {
      const { chunk, flight } = this.#queue[this.#head++]!;
      this.#release(chunk, flight);
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
      this.#drained?.();
      this.#drained = undefined;
      return;
    }
    this.#timer = setTimeout(this.#pump, Math.max(0, this.#queue[this.#head]!.due - now));
  };
}

/**
 * A two-way link between end 0 and end 1 with a one-way latency of `delayMs` (0: none).
 *
 * @example
 * ```ts
 * import { Link } from "./_latency.ts";
 * const link = new Link(50);
 * const wire = link.web(0); // from end 0 to end 1
 * void wire.writable.getWriter().write(new Uint8Array(3));
 * const { value } = await wire.readable.getReader().read(); // about 50 ms later
 * console.assert(value?.length === 3 && link.bytes === 3 && link.flights === 1);
 * ```
 */
export class Link {
  readonly #delayMs: number;
  /** The latest flight each end has received. */
  readonly #received: [number, number] = [0, 0];
  /** Bytes sent both ways. */
  bytes = 0;
  /** The latest flight so far (see the module doc). */
  flights = 0;

  /** Creates a link with this one-way latency in ms. */
  constructor(delayMs: number) {
    this.#delayMs = delayMs;
  }

  /** Counts a chunk leaving `from`; returns its flight. */
  #depart(from: End, length: number): number {
    this.bytes += length;
    const flight = this.#received[from] + 1;
    if (flight > this.flights) this.flights = flight;
    return flight;
  }

  /** Records that a chunk of this flight reached end `to`. */
  #arrive(to: End, flight: number): void {
    if (flight > this.#received[to]) this.#received[to] = flight;
  }

  /** The direction from end `from` to the other, as a Web `TransformStream` of bytes. */
  web(from: End): TransformStream<Uint8Array, Uint8Array> {
    const to: End = from === 0 ? 1 : 0;
    let line!: DelayLine<Uint8Array>;
    return new TransformStream<Uint8Array, Uint8Array>({
      start: (controller) => {
        line = new DelayLine(this.#delayMs, (chunk, flight) => {
          this.#arrive(to, flight);
          controller.enqueue(chunk);
        });
      },
      transform: (chunk) => line.push(chunk, this.#depart(from, chunk.length)),
      flush: () => line.drained(),
    });
  }

  /** The direction from end `from` to the other, as a Node `Transform` of bytes. */
  node(from: End): Transform {
    const to: End = from === 0 ? 1 : 0;
    const depart = (length: number): number => this.#depart(from, length);
    const wire = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        line.push(chunk, depart(chunk.length));
        callback();
      },
      flush(callback) {
        line.drained().then(() => callback(), callback);
      },
    });
    const line = new DelayLine<Buffer>(this.#delayMs, (chunk, flight) => {
      this.#arrive(to, flight);
      wire.push(chunk);
    });
    return wire;
  }
}
