// Log-bucketed latency histogram (~1% resolution), so s3's millions of deliveries cost a fixed
// ~2,000 counters instead of an ever-growing array of samples.
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 2200; // 1.01^2200 µs ≈ 3.3e9 µs: far beyond any run's length

export class Histogram {
  constructor() {
    this.counts = new Float64Array(BUCKETS);
    this.n = 0;
    this.max = 0;
  }

  record(ms) {
    const us = Math.max(0, ms * 1000);
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(us + 1) / LOG_GROWTH));
    this.counts[i]++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }

  // Upper edge of the bucket holding the q-quantile, in ms.
  quantile(q) {
    if (this.n === 0) return null;
    const target = Math.ceil(q * this.n);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= target) return Math.min(this.max, (GROWTH ** (i + 1) - 1) / 1000);
    }
    return this.max;
  }

  summary() {
    const r = (v) => (v === null ? null : Math.round(v * 100) / 100);
    return { n: this.n, p50: r(this.quantile(0.5)), p95: r(this.quantile(0.95)), p99: r(this.quantile(0.99)), max: r(this.n ? this.max : null) };
  }
}
