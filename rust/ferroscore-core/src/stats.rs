//! What an endpoint scored, counted as it scores: rows, a histogram of the score and the
//! thresholds' decisions. Relaxed atomic increments on the request path, read whole by a
//! metrics scrape without stopping it; the service adds the counts of its processes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the score histogram's buckets (most models score a probability); a last
/// bucket takes everything above.
pub const SCORE_BOUNDS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99,
];

pub struct ScoreStats {
    /// Rows scored, whatever their number of outputs.
    rows: AtomicU64,
    /// Single-output rows by bucket of their score (not cumulative), the last above all bounds.
    buckets: [AtomicU64; SCORE_BOUNDS.len() + 1],
    /// The sum of those scores, as f64 bits.
    sum: AtomicU64,
    /// Rows by the thresholds' rule that decided them.
    decisions: Box<[AtomicU64]>,
}

/// A reading of the counters.
pub struct StatsReading {
    pub rows: u64,
    pub buckets: Vec<u64>,
    pub sum: f64,
    pub decisions: Vec<u64>,
}

impl ScoreStats {
    /// Counters for an endpoint whose thresholds have `rules` rules.
    pub fn new(rules: usize) -> Self {
        ScoreStats {
            rows: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0f64.to_bits()),
            decisions: (0..rules).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one scored row: its single `score` (None for several outputs) and the index of
    /// the rule that decided it.
    pub fn record(&self, score: Option<f64>, decision: Option<usize>) {
        self.rows.fetch_add(1, Relaxed);
        if let Some(x) = score.filter(|x| !x.is_nan()) {
            let bucket = SCORE_BOUNDS.partition_point(|&bound| bound < x);
            self.buckets[bucket].fetch_add(1, Relaxed);
            // Another thread may add between the load and the store: retry until none did.
            let _ = self.sum.fetch_update(Relaxed, Relaxed, |bits| {
                Some((f64::from_bits(bits) + x).to_bits())
            });
        }
        if let Some(counter) = decision.and_then(|i| self.decisions.get(i)) {
            counter.fetch_add(1, Relaxed);
        }
    }

    pub fn read(&self) -> StatsReading {
        StatsReading {
            rows: self.rows.load(Relaxed),
            buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            sum: f64::from_bits(self.sum.load(Relaxed)),
            decisions: self.decisions.iter().map(|d| d.load(Relaxed)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rows_buckets_sums_and_decisions() {
        let stats = ScoreStats::new(2);
        stats.record(Some(0.005), Some(1));
        stats.record(Some(0.5), Some(0));
        stats.record(Some(0.995), Some(0));
        stats.record(None, None);
        stats.record(Some(f64::NAN), None);
        let read = stats.read();
        assert_eq!(read.rows, 5);
        assert_eq!(read.buckets.iter().sum::<u64>(), 3);
        assert_eq!(
            (read.buckets[0], read.buckets[6], read.buckets[12]),
            (1, 1, 1)
        );
        assert!((read.sum - 1.5).abs() < 1e-12);
        assert_eq!(read.decisions, vec![2, 1]);
    }
}
