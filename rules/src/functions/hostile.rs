//! Hostile arguments for the function catalogue, made from raw bytes: the `functions` fuzz
//! target feeds it libFuzzer's bytes, the unit test below a fixed pseudo-random stream. Each call
//! must end (an error is fine) without a panic, and within the catalogue's bounds.

use std::collections::BTreeMap;

use super::Function;
use crate::value::Value;

/// Words the functions branch on, and text that has broken string code before.
const WORDS: &[&str] = &[
    "",
    "éa",
    "aé",
    "你好",
    "\u{0}",
    "\u{fffd}",
    "+1",
    "-",
    "0x",
    "ff",
    "9F4E58",
    "%Y-%m-%d %H:%M:%S",
    "%:z%::z%N",
    "both",
    "leading",
    "trailing",
    "notrim",
    "leading_notrim",
    "trailing_notrim",
    "nocrlf",
    "all",
    "second",
    "millisecond",
    "microsecond",
    "nanosecond",
    "integer",
    "float",
    "bits",
    "signed",
    "unsigned",
    "big",
    "little",
    "urlsafe",
    "no_padding",
    "md5",
    "sha",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "local",
    "Z",
    "+23:59",
    "-0130",
    "a.b.c",
    "...",
    "~s~p~w~d~f~e~c~n~~",
    "~.999999999f",
    "\\x110000",
    "\\q",
    "(a+)+$",
    "(?i)é+",
    "a{1000}{1000}",
    "[",
    "def f: f; f",
    "[range(1e9)]",
    ".[] | .a",
    "reduce range(1e6) as $i (0; [.])",
    "\"x\" * 1e3",
    r#"{"a":[1,2,{"b":null}]}"#,
    "[[[[[[[[[[[[1]]]]]]]]]]]]",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00+00:00",
];

/// Numbers at the edges.
const INTS: &[i64] =
    &[0, 1, -1, 2, 7, 8, 16, 63, 64, 65, 253, 254, 1 << 20, 1 << 31, i64::MAX, i64::MIN, i64::MIN + 1, -(1 << 40)];
const FLOATS: &[f64] =
    &[0.0, -0.0, 0.5, 1.5e-12, 1e308, -1e308, f64::MAX, f64::MIN_POSITIVE, 9.2e18, 39.90419989999999];

/// A reader of raw bytes that never runs out: past the end, it reads zeros.
pub struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data, at: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.byte()))
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.byte()) % from.len()]
    }

    /// Whether any bytes are left.
    pub fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// A function of the catalogue and its arguments, read from `bytes`.
pub fn call(bytes: &mut Bytes<'_>) -> (&'static Function, Vec<Value>) {
    let functions: Vec<&'static Function> = super::all().filter(|f| f.name != "panic_in_test").collect();
    let f = functions[usize::from(bytes.byte()) % functions.len()];
    let most = f.max_args.min(f.min_args + 2);
    let n = f.min_args + usize::from(bytes.byte()) % (most - f.min_args + 1);
    let mut args: Vec<Value> = (0..n).map(|_| value(bytes, 2)).collect();
    if f.name == "jq" {
        // A short timeout of its own: its budget is tested, and many calls still fit in a run.
        args.truncate(2);
        args.push(Value::Int(i64::from(bytes.byte() % 50)));
    }
    (f, args)
}

/// One value; lists and maps nest at most `depth` more levels.
pub fn value(bytes: &mut Bytes<'_>, depth: u8) -> Value {
    match bytes.byte() % 12 {
        0 => Value::Undefined,
        1 => Value::Null,
        2 => Value::Bool(bytes.byte().is_multiple_of(2)),
        3 => Value::Int(bytes.pick(INTS)),
        4 => Value::Int(bytes.u64() as i64),
        5 => Value::Float(bytes.pick(FLOATS)),
        6 => Value::Float(f64::from_bits(bytes.u64())),
        7 | 8 => Value::Str(bytes.pick(WORDS).to_string()),
        9 => text(bytes),
        10 if depth > 0 => Value::List((0..bytes.byte() % 4).map(|_| value(bytes, depth - 1)).collect()),
        11 if depth > 0 => Value::Map(
            (0..bytes.byte() % 3)
                .map(|_| (bytes.pick(WORDS).to_string(), value(bytes, depth - 1)))
                .collect::<BTreeMap<_, _>>(),
        ),
        _ => Value::Bin((0..bytes.byte() % 16).map(|_| bytes.byte()).collect()),
    }
}

/// Text built from pieces of [`WORDS`], sometimes repeated into something long.
fn text(bytes: &mut Bytes<'_>) -> Value {
    let mut s: String = (0..1 + bytes.byte() % 4).map(|_| bytes.pick(WORDS)).collect();
    if bytes.byte().is_multiple_of(8) {
        s = s.repeat(1 + usize::from(bytes.byte()) * 64);
    }
    Value::Str(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed pseudo-random stream (xorshift), so that a failure repeats.
    fn stream(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn no_function_panics_on_hostile_arguments() {
        let data = stream(0x5eed_f00d, 400_000);
        let mut bytes = Bytes::new(&data);
        let mut calls = 0;
        while !bytes.is_empty() {
            let (f, args) = call(&mut bytes);
            let shown = format!("{}({args:?})", f.name);
            let result = std::panic::catch_unwind(|| (f.call)(&args));
            assert!(result.is_ok(), "{} panicked", &shown[..shown.len().min(300)]);
            if let Ok(Ok(v)) = result {
                let size = v.as_bytes().map_or(0, <[u8]>::len);
                assert!(size <= super::super::MAX_OUTPUT, "{} made {size} bytes", f.name);
            }
            calls += 1;
        }
        assert!(calls > 10_000, "{calls} calls");
    }

    #[test]
    fn every_function_is_called_with_every_kind_of_value() {
        for f in super::super::all().filter(|f| f.name != "panic_in_test") {
            for seed in 0..64u64 {
                let data = stream(seed + 1, 256);
                let mut bytes = Bytes::new(&data);
                let n = f.min_args.max(1).min(f.max_args);
                let args: Vec<Value> = (0..n).map(|_| value(&mut bytes, 2)).collect();
                let result = std::panic::catch_unwind(|| (f.call)(&args));
                assert!(result.is_ok(), "{}({args:?}) panicked", f.name);
            }
        }
    }
}
