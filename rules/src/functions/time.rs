//! Time: now in a unit, RFC 3339 both ways, time zone offsets, and `format_date` with EMQX's
//! placeholders (`%Y %m %d %H %M %S %N %3N %6N %z %:z %::z`).

use chrono::{DateTime, FixedOffset, Local, Offset, SecondsFormat, TimeZone, Utc};

use super::{bad, integer, text, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "now_timestamp",
        min_args: 0,
        max_args: 1,
        call: |a| in_unit(&Utc::now(), unit(a.first())?).map(Value::Int),
    },
    Function {
        name: "now_rfc3339",
        min_args: 0,
        max_args: 1,
        call: |a| Ok(Value::Str(rfc3339(&Utc::now().with_timezone(&local_offset()), unit(a.first())?))),
    },
    Function { name: "unix_ts_to_rfc3339", min_args: 1, max_args: 2, call: unix_ts_to_rfc3339 },
    Function { name: "rfc3339_to_unix_ts", min_args: 1, max_args: 2, call: rfc3339_to_unix_ts },
    Function {
        name: "timezone_to_offset_seconds",
        min_args: 1,
        max_args: 1,
        call: |a| offset_seconds(&a[0]).map(|s| Value::Int(i64::from(s))),
    },
    Function {
        name: "timezone_to_second",
        min_args: 1,
        max_args: 1,
        call: |a| offset_seconds(&a[0]).map(|s| Value::Int(i64::from(s))),
    },
    Function { name: "format_date", min_args: 3, max_args: 4, call: format_date },
    Function { name: "date_to_unix_ts", min_args: 3, max_args: 4, call: date_to_unix_ts },
];

/// Units per second of EMQX's time units.
#[derive(Clone, Copy)]
struct Unit(i64);

fn unit(v: Option<&Value>) -> Result<Unit, EvalError> {
    Ok(Unit(match v.map(|v| text("time unit", v)).transpose()? {
        None | Some("second") => 1,
        Some("millisecond") => 1_000,
        Some("microsecond") => 1_000_000,
        Some("nanosecond") => 1_000_000_000,
        Some(other) => return Err(EvalError::BadArgument(format!("unknown time unit '{other}'"))),
    }))
}

/// `t` in unit `u` since 1970; a time that does not fit (year 2263 in nanoseconds) overflows.
fn in_unit<Tz: TimeZone>(t: &DateTime<Tz>, u: Unit) -> Result<i64, EvalError> {
    let nanos = i64::from(t.timestamp_subsec_nanos());
    t.timestamp()
        .checked_mul(u.0)
        .and_then(|whole| whole.checked_add(nanos / (1_000_000_000 / u.0)))
        .ok_or(EvalError::Overflow)
}

fn from_unit(ts: i64, u: Unit) -> Result<DateTime<Utc>, EvalError> {
    let (secs, rest) = (ts.div_euclid(u.0), ts.rem_euclid(u.0));
    let nanos = (rest * (1_000_000_000 / u.0)) as u32;
    Utc.timestamp_opt(secs, nanos)
        .single()
        .ok_or_else(|| EvalError::BadArgument(format!("timestamp {ts} is out of range")))
}

fn rfc3339(t: &DateTime<FixedOffset>, u: Unit) -> String {
    let precision = match u.0 {
        1 => SecondsFormat::Secs,
        1_000 => SecondsFormat::Millis,
        1_000_000 => SecondsFormat::Micros,
        _ => SecondsFormat::Nanos,
    };
    t.to_rfc3339_opts(precision, false)
}

fn local_offset() -> FixedOffset {
    Local::now().offset().fix()
}

fn unix_ts_to_rfc3339(a: &[Value]) -> Result<Value, EvalError> {
    let u = unit(a.get(1))?;
    let t = from_unit(integer("unix_ts_to_rfc3339", &a[0])?, u)?;
    Ok(Value::Str(rfc3339(&t.with_timezone(&local_offset()), u)))
}

fn rfc3339_to_unix_ts(a: &[Value]) -> Result<Value, EvalError> {
    let t = DateTime::parse_from_rfc3339(text("rfc3339_to_unix_ts", &a[0])?)
        .map_err(|_| bad("rfc3339_to_unix_ts", &a[0]))?;
    in_unit(&t, unit(a.get(1))?).map(Value::Int)
}

/// `'Z'`, `'±hh:mm[:ss]'`, `'±hhmm'`, `'local'`, or seconds as an integer.
fn offset_seconds(v: &Value) -> Result<i32, EvalError> {
    let s = match v {
        Value::Int(i) => return i32::try_from(*i).map_err(|_| bad("timezone_to_offset_seconds", v)),
        other => text("timezone_to_offset_seconds", other)?,
    };
    if s.eq_ignore_ascii_case("z") {
        return Ok(0);
    }
    if s == "local" {
        return Ok(local_offset().local_minus_utc());
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad("timezone_to_offset_seconds", v)),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let field = |r: std::ops::Range<usize>| digits.get(r).and_then(|d| d.parse::<i32>().ok());
    let (h, m, sec) = match digits.len() {
        4 => (field(0..2), field(2..4), Some(0)),
        6 => (field(0..2), field(2..4), field(4..6)),
        _ => (None, None, None),
    };
    match (h, m, sec) {
        (Some(h), Some(m), Some(sec)) if h < 24 && m < 60 && sec < 60 => Ok(sign * (h * 3600 + m * 60 + sec)),
        _ => Err(bad("timezone_to_offset_seconds", v)),
    }
}

/// `format_date(unit, offset, format, timestamp)`.
fn format_date(a: &[Value]) -> Result<Value, EvalError> {
    let u = unit(Some(&a[0]))?;
    let offset = FixedOffset::east_opt(offset_seconds(&a[1])?).ok_or_else(|| bad("format_date", &a[1]))?;
    let fmt = text("format_date", &a[2])?;
    // Without a time, EMQX formats the present.
    let t = match a.get(3) {
        Some(ts) => from_unit(integer("format_date", ts)?, u)?,
        None => Utc::now(),
    }
    .with_timezone(&offset);
    let secs = offset.local_minus_utc();
    let (sign, abs) = (if secs < 0 { '-' } else { '+' }, secs.abs());
    let (oh, om, os) = (abs / 3600, abs % 3600 / 60, abs % 60);
    let nanos = t.timestamp_subsec_nanos();
    let mut out = String::new();
    let mut rest = fmt;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let (piece, used) = match rest.as_bytes() {
            [b'Y', ..] => (format!("{:04}", t.format("%Y")), 1),
            [b'm', ..] => (t.format("%m").to_string(), 1),
            [b'd', ..] => (t.format("%d").to_string(), 1),
            [b'H', ..] => (t.format("%H").to_string(), 1),
            [b'M', ..] => (t.format("%M").to_string(), 1),
            [b'S', ..] => (t.format("%S").to_string(), 1),
            [b'N', ..] => (format!("{nanos:09}"), 1),
            [b'3', b'N', ..] => (format!("{:03}", nanos / 1_000_000), 2),
            [b'6', b'N', ..] => (format!("{:06}", nanos / 1_000), 2),
            [b'z', ..] => (format!("{sign}{oh:02}{om:02}"), 1),
            [b':', b'z', ..] => (format!("{sign}{oh:02}:{om:02}"), 2),
            [b':', b':', b'z', ..] => (format!("{sign}{oh:02}:{om:02}:{os:02}"), 3),
            _ => ("%".to_string(), 0),
        };
        out.push_str(&piece);
        rest = &rest[used..];
    }
    out.push_str(rest);
    Ok(Value::Str(out))
}

/// `date_to_unix_ts(unit, [offset,] format, text)`. Reading is positional, as in EMQX: a
/// placeholder takes its fixed number of characters, any other format character skips one input
/// character without comparing it, and reading stops where the input ends. Year, month, day,
/// hour, minute and second are required; the offset comes from `%z`-style placeholders, else the
/// argument, else UTC.
fn date_to_unix_ts(a: &[Value]) -> Result<Value, EvalError> {
    let u = unit(Some(&a[0]))?;
    let (offset_arg, fmt, input) = match a {
        [_, f, t] => (None, f, t),
        [_, o, f, t] => (Some(o), f, t),
        _ => return Err(bad("date_to_unix_ts", &a[0])),
    };
    let fmt = text("date_to_unix_ts", fmt)?;
    let input = text("date_to_unix_ts", input)?;
    let fail = || bad("date_to_unix_ts", &Value::Str(input.to_string()));
    let read = read_date(fmt, input)?;
    let [Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)] = read.fields else { return Err(fail()) };
    let offset = match (read.offset, offset_arg) {
        (Some(o), _) => o,
        (None, Some(arg)) => offset_seconds(arg)?,
        (None, None) => 0,
    };
    let date = chrono::NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32).ok_or_else(fail)?;
    let time = date.and_hms_nano_opt(h as u32, mi as u32, sec as u32, read.nanos as u32).ok_or_else(fail)?;
    let utc = time.and_utc().checked_sub_signed(chrono::Duration::seconds(i64::from(offset))).ok_or_else(fail)?;
    in_unit(&utc, u).map(Value::Int)
}

/// What [`read_date`] found in a date's text.
struct ReadDate {
    /// Year, month, day, hour, minute, second.
    fields: [Option<i64>; 6],
    /// The fraction of the second, in nanoseconds.
    nanos: i64,
    /// The offset from UTC, in seconds, if the text has one.
    offset: Option<i32>,
}

/// Reads `input` as `fmt` says, positionally (see [`date_to_unix_ts`]).
fn read_date(fmt: &str, input: &str) -> Result<ReadDate, EvalError> {
    let fail = || bad("date_to_unix_ts", &Value::Str(input.to_string()));
    let mut read = ReadDate { fields: [None; 6], nanos: 0, offset: None };
    let (mut f, mut pos) = (fmt, 0usize);
    while !f.is_empty() && pos < input.len() {
        let Some(spec) = f.strip_prefix('%') else {
            let c = f.chars().next().map_or(1, char::len_utf8);
            f = &f[c..];
            pos += input[pos..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let (width, field, used) = match spec.as_bytes() {
            [b'Y', ..] => (4, Some(0), 1),
            [b'm', ..] => (2, Some(1), 1),
            [b'd', ..] => (2, Some(2), 1),
            [b'H', ..] => (2, Some(3), 1),
            [b'M', ..] => (2, Some(4), 1),
            [b'S', ..] => (2, Some(5), 1),
            [b'N', ..] => (9, None, 1),
            [b'3', b'N', ..] => (3, None, 2),
            [b'6', b'N', ..] => (6, None, 2),
            [b'z', ..] => (5, None, 1),
            [b':', b'z', ..] => (6, None, 2),
            [b':', b':', b'z', ..] => (9, None, 3),
            _ => return Err(EvalError::BadArgument(format!("date_to_unix_ts(): unknown placeholder in '{fmt}'"))),
        };
        let piece = input.get(pos..pos + width).ok_or_else(fail)?;
        pos += width;
        match (field, spec.as_bytes()[used - 1]) {
            (Some(i), _) => read.fields[i] = Some(piece.parse().map_err(|_| fail())?),
            (None, b'N') => {
                let digits: i64 = piece.parse().map_err(|_| fail())?;
                read.nanos = digits * 10i64.pow(9 - width as u32);
            }
            (None, _) => read.offset = Some(offset_seconds(&Value::Str(piece.to_string()))?),
        }
        f = &spec[used..];
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn times_past_the_range_overflow() {
        let far = s("9999-12-31T23:59:59Z");
        assert!(call("rfc3339_to_unix_ts", &[far.clone(), s("nanosecond")]).is_err(), "past i64 nanoseconds");
        assert_eq!(call("rfc3339_to_unix_ts", &[far]).unwrap(), Value::Int(253_402_300_799));
        let args = [s("nanosecond"), s("+23:59"), s("%Y-%m-%d %H:%M:%S"), s("9999-12-31 23:59:59")];
        assert!(call("date_to_unix_ts", &args).is_err());
        assert!(call("unix_ts_to_rfc3339", &[Value::Int(i64::MAX)]).is_err());
        assert!(call("format_date", &[s("second"), s("+23:59"), s("%Y"), Value::Int(i64::MIN)]).is_err());
        let year = call("format_date", &[s("second"), s("Z"), s("%Y")]).unwrap();
        assert_eq!(year, s(&chrono::Utc::now().format("%Y").to_string()), "without a time, the present");
    }

    #[test]
    fn offsets() {
        assert_eq!(call("timezone_to_offset_seconds", &[s("+08:00")]).unwrap(), Value::Int(28800));
        assert_eq!(call("timezone_to_offset_seconds", &[s("-0130")]).unwrap(), Value::Int(-5400));
        assert_eq!(call("timezone_to_offset_seconds", &[s("+08:00:30")]).unwrap(), Value::Int(28830));
        assert_eq!(call("timezone_to_second", &[s("Z")]).unwrap(), Value::Int(0));
        assert!(call("timezone_to_offset_seconds", &[s("8")]).is_err());
    }

    #[test]
    fn rfc3339_both_ways() {
        assert_eq!(call("rfc3339_to_unix_ts", &[s("2024-02-23T15:00:00+08:00")]).unwrap(), Value::Int(1708671600));
        assert_eq!(
            call("rfc3339_to_unix_ts", &[s("2024-02-23T07:00:00.123Z"), s("millisecond")]).unwrap(),
            Value::Int(1708671600123)
        );
        let Value::Str(back) = call("unix_ts_to_rfc3339", &[Value::Int(1708671600)]).unwrap() else { panic!() };
        assert_eq!(call("rfc3339_to_unix_ts", &[s(&back)]).unwrap(), Value::Int(1708671600));
        let Value::Int(now) = call("now_timestamp", &[s("millisecond")]).unwrap() else { panic!() };
        assert!(now > 1_700_000_000_000);
    }

    #[test]
    fn date_to_unix_ts_reads_by_position() {
        assert_eq!(
            call("date_to_unix_ts", &[s("second"), s("%Y-%m-%d %H:%M:%S%:z"), s("2024-02-23 15:00:00+08:00")]).unwrap(),
            Value::Int(1708671600)
        );
        // Literal characters are skipped, not compared.
        assert_eq!(
            call("date_to_unix_ts", &[s("second"), s("Z"), s("%Y-%m-%d %H-%M-%S"), s("2024-02-23 07:00:00")]).unwrap(),
            Value::Int(1708671600)
        );
        assert_eq!(
            call("date_to_unix_ts", &[s("millisecond"), s("+01:00"), s("%Y%m%d %H%M%S.%3N"), s("20240223 080000.250")])
                .unwrap(),
            Value::Int(1708671600250)
        );
        assert!(call("date_to_unix_ts", &[s("second"), s("%Y-%m-%d"), s("2024-02-23")]).is_err(), "hours missing");
        assert!(call("date_to_unix_ts", &[s("second"), s("%Y-%m-%d %H:%M:%S"), s("2024-02-30 00:00:00")]).is_err());
    }

    #[test]
    fn format_date_placeholders() {
        assert_eq!(
            call(
                "format_date",
                &[s("millisecond"), s("+08:00"), s("%Y-%m-%d %H:%M:%S.%3N%:z"), Value::Int(1708671600123)]
            )
            .unwrap(),
            s("2024-02-23 15:00:00.123+08:00")
        );
        assert_eq!(
            call("format_date", &[s("second"), Value::Int(0), s("%Y%m%dT%H%M%S%z"), Value::Int(0)]).unwrap(),
            s("19700101T000000+0000")
        );
        assert_eq!(
            call("format_date", &[s("microsecond"), s("-01:30"), s("%6N %::z"), Value::Int(1_500_000)]).unwrap(),
            s("500000 -01:30:00")
        );
    }
}
