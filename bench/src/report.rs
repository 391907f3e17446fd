//! Progress while a load runs (a line a second on stderr), and its rate at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How a count moved while the load ran.
pub struct Outcome {
    /// Seconds from the first counted message to the last.
    pub secs: f64,
    /// Messages per second over those seconds.
    pub rate: f64,
}

/// Prints the counter's progress every second until `duration` passes, `limit` is reached, or
/// (with a limit) nothing moved for 5 s. The rate is measured from the first counted message to
/// the last one.
pub async fn report_loop(counter: &AtomicU64, what: &str, duration: u64, limit: u64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(duration);
    let mut first: Option<(Instant, u64)> = None;
    let mut last_change = (Instant::now(), 0u64);
    let (mut prev, mut last_print) = (0u64, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (now, count) = (Instant::now(), counter.load(Ordering::Relaxed));
        if first.is_none() && count > 0 {
            first = Some((now, count));
        }
        if count != last_change.1 {
            last_change = (now, count);
        }
        if now.duration_since(last_print) >= Duration::from_secs(1) {
            eprintln!("{what} {count} ({}/s)", count - prev);
            (prev, last_print) = (count, now);
        }
        let stalled = first.is_some() && now.duration_since(last_change.0) > Duration::from_secs(5);
        if now >= deadline || (limit > 0 && (count >= limit || stalled)) {
            break;
        }
    }
    match first {
        Some((t0, c0)) if last_change.1 > c0 => {
            let secs = last_change.0.duration_since(t0).as_secs_f64();
            Outcome { secs, rate: (last_change.1 - c0) as f64 / secs.max(1e-9) }
        }
        _ => Outcome { secs: 0.0, rate: 0.0 },
    }
}
