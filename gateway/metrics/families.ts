// Metric families with cells: per-request series resolved once per label set and updated with a
// plain `+=` (prom-client's labelled children re-hash their labels on every call), exposed through
// prom-client's metric interface so its registry still formats the exposition.
import { errorCounts } from '../../core/errors.js';

export interface Cell {
  value: number;
}

type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

abstract class Family<C> {
  readonly aggregator = 'sum';
  protected readonly cells = new Map<string, { labels: Labels; cell: C }>();
  abstract readonly type: 'counter' | 'histogram';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The cell for these label values (in labelNames order): created once, then reused. */
  cell(...values: string[]): C {
    const key = values.length === 1 ? values[0]! : values.join('\u0000');
    let entry = this.cells.get(key);
    if (!entry) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      entry = { labels, cell: this.create() };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  reset(): void {
    this.cells.clear();
  }

  protected abstract create(): C;
  protected abstract values(): MetricValue[];

  get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator });
  }
}

export class CounterFamily extends Family<Cell> {
  readonly type = 'counter';
  protected create(): Cell {
    return { value: 0 };
  }
  protected values(): MetricValue[] {
    return [...this.cells.values()].map(({ labels, cell }) => ({ labels, value: cell.value }));
  }
}

export class HistogramCell {
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

export class HistogramFamily extends Family<HistogramCell> {
  readonly type = 'histogram';
  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
  }
  protected create(): HistogramCell {
    return new HistogramCell(this.buckets);
  }
  protected values(): MetricValue[] {
    const out: MetricValue[] = [];
    for (const { labels, cell } of this.cells.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += cell.counts[i]!;
        out.push({ metricName: `${this.name}_bucket`, labels: { le: String(le), ...labels }, value: acc });
      });
      acc += cell.counts[this.buckets.length]!;
      out.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: acc });
      out.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
      out.push({ metricName: `${this.name}_count`, labels, value: cell.count });
    }
    return out;
  }
}

/** Errors sent to clients, by code and phase: read from the error module's own tally at scrape time. */
export class ErrorCounts extends CounterFamily {
  constructor() {
    super('portico_errors_total', 'Errors sent to clients, by error code and phase (response: as the HTTP response; stream: as the last event of a started stream).', ['code', 'phase']);
  }
  protected override values(): MetricValue[] {
    return Object.entries(errorCounts()).map(([key, value]) => {
      const [phase = '', code = ''] = key.split(':');
      return { labels: { code, phase }, value };
    });
  }
}
