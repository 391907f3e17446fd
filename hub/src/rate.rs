//! Per-client rate limits, EMQX's `messages_rate` and `bytes_rate` on a listener: how they are
//! written in the config, and the token buckets that enforce them by pausing a client's reads.
//!
//! A rate is written as EMQX writes it: `"infinity"` (the default), or an amount per period,
//! `"1000/s"`, `"500/10s"`, `"1MB/s"`, `"64KB/100ms"` (byte units are powers of 1024, as in
//! EMQX). A client starts with one period's amount in hand; past it, what it sends is counted
//! against what the rate lets through, and its connection reads nothing more until it is back
//! in credit. Nothing it sent is dropped: TCP slows it down.

use std::time::{Duration, Instant};

/// An amount per period, from the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Messages or bytes allowed per `per`.
    pub amount: f64,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// Parses EMQX's notation; `None` for `"infinity"`.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("infinity") {
            return Ok(None);
        }
        let bad = || {
            format!("`{text}` is not a rate: write \"infinity\", or an amount per period such as \"1000/s\", \"1MB/s\" or \"500/10s\"")
        };
        let (amount, period) = text.split_once('/').ok_or_else(bad)?;
        let amount = amount.trim().to_ascii_uppercase();
        let (digits, scale) = match amount.trim_end_matches('B') {
            a if a.ends_with('K') => (&a[..a.len() - 1], 1024.0),
            a if a.ends_with('M') => (&a[..a.len() - 1], 1024.0 * 1024.0),
            a if a.ends_with('G') => (&a[..a.len() - 1], 1024.0 * 1024.0 * 1024.0),
            a => (a, 1.0),
        };
        let amount = digits.trim().parse::<f64>().map_err(|_| bad())? * scale;
        let period = period.trim();
        let unit_at = period.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
        let count = match &period[..unit_at] {
            "" => 1.0,
            n => n.parse::<f64>().map_err(|_| bad())?,
        };
        let unit = match &period[unit_at..] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        let per = Duration::try_from_secs_f64(count * unit).map_err(|_| bad())?;
        if !(amount.is_finite() && amount > 0.0) || per.is_zero() {
            return Err(bad());
        }
        Ok(Some(Rate { amount, per }))
    }

    fn per_second(&self) -> f64 {
        self.amount / self.per.as_secs_f64()
    }
}

/// Deserializes a rate written as EMQX writes it (see [`Rate::parse`]).
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Rate>, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    Rate::parse(&text).map_err(serde::de::Error::custom)
}

/// A listener's per-client limits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// PUBLISH packets a client may send.
    pub messages: Option<Rate>,
    /// Bytes a client may send, every packet counted.
    pub bytes: Option<Rate>,
}

/// One client's credit, by the rates of its listener.
#[derive(Debug)]
pub struct Limiter {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
    /// PUBLISH packets handled since the last read was counted.
    read_messages: u64,
    /// Whether the client was told off in the log already: once per connection.
    logged: bool,
}

impl Limiter {
    /// A limiter for `rates`, or `None` when there is nothing to limit.
    pub fn new(rates: Rates) -> Option<Box<Limiter>> {
        let now = Instant::now();
        let (messages, bytes) = (rates.messages.map(|r| Bucket::new(r, now)), rates.bytes.map(|r| Bucket::new(r, now)));
        (messages.is_some() || bytes.is_some())
            .then(|| Box::new(Limiter { messages, bytes, read_messages: 0, logged: false }))
    }

    /// Counts one PUBLISH packet of the read being handled.
    pub fn message(&mut self) {
        self.read_messages += 1;
    }

    /// Counts what one read brought: its `bytes`, and the PUBLISH packets counted meanwhile.
    pub fn spend(&mut self, bytes: u64) {
        let now = Instant::now();
        let messages = std::mem::take(&mut self.read_messages);
        if let Some(b) = &mut self.messages {
            b.spend(messages as f64, now);
        }
        if let Some(b) = &mut self.bytes {
            b.spend(bytes as f64, now);
        }
    }

    /// Whether this is the first pause of the connection, to be logged.
    pub fn first_pause(&mut self) -> bool {
        !std::mem::replace(&mut self.logged, true)
    }

    /// How long reads must pause for the client to be back in credit, if they must.
    pub fn pause(&self) -> Option<Duration> {
        let now = Instant::now();
        [&self.messages, &self.bytes].into_iter().flatten().filter_map(|b| b.pause(now)).max()
    }
}

/// A token bucket holding at most one period's amount.
#[derive(Debug)]
struct Bucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Bucket {
        Bucket { per_second: rate.per_second(), capacity: rate.amount, tokens: rate.amount, at: now }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + earned).min(self.capacity);
        self.at = now;
    }

    fn spend(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.tokens -= n;
    }

    fn pause(&self, now: Instant) -> Option<Duration> {
        let tokens = self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * self.per_second;
        (tokens < 0.0).then(|| Duration::from_secs_f64(-tokens / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_emqx_writes_them() {
        let rate = |t| Rate::parse(t).unwrap().unwrap();
        assert_eq!(Rate::parse("infinity").unwrap(), None);
        assert_eq!(rate("1000/s"), Rate { amount: 1000.0, per: Duration::from_secs(1) });
        assert_eq!(rate("500/10s"), Rate { amount: 500.0, per: Duration::from_secs(10) });
        assert_eq!(rate("1MB/s").amount, 1024.0 * 1024.0);
        assert_eq!(rate("64KB/100ms"), Rate { amount: 65536.0, per: Duration::from_millis(100) });
        assert_eq!(rate("10/m").per, Duration::from_secs(60));
        for bad in ["", "1000", "/s", "x/s", "10/", "10/fortnight", "0/s", "-5/s", "10/0s"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_lets_one_period_through_then_paces() {
        let now = Instant::now();
        let mut b = Bucket::new(Rate { amount: 100.0, per: Duration::from_secs(1) }, now);
        b.spend(100.0, now);
        assert_eq!(b.pause(now), None);
        b.spend(50.0, now);
        let pause = b.pause(now).unwrap();
        assert!((pause.as_secs_f64() - 0.5).abs() < 1e-9, "{pause:?}");
        assert_eq!(b.pause(now + Duration::from_millis(500)), None);
    }
}
