//! Hashes, base64, compression and UUIDs. Hashes are lower-case hex; decoders and
//! decompressors return text when the bytes are UTF-8, binary data otherwise.

use std::io::{Read, Write};

use base64::Engine;
use flate2::Compression;
use md5::Digest;

use super::{bad, text, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function { name: "md5", min_args: 1, max_args: 1, call: |a| digest("md5", &a[0]) },
    Function { name: "sha", min_args: 1, max_args: 1, call: |a| digest("sha", &a[0]) },
    Function { name: "sha256", min_args: 1, max_args: 1, call: |a| digest("sha256", &a[0]) },
    Function { name: "hash", min_args: 2, max_args: 2, call: |a| digest(text("hash", &a[0])?, &a[1]) },
    Function { name: "base64_encode", min_args: 1, max_args: 3, call: base64_encode },
    Function { name: "base64_decode", min_args: 1, max_args: 3, call: base64_decode },
    Function { name: "zip", min_args: 1, max_args: 1, call: |a| compress("zip", &a[0]) },
    Function { name: "unzip", min_args: 1, max_args: 1, call: |a| decompress("unzip", &a[0]) },
    Function { name: "gzip", min_args: 1, max_args: 1, call: |a| compress("gzip", &a[0]) },
    Function { name: "gunzip", min_args: 1, max_args: 1, call: |a| decompress("gunzip", &a[0]) },
    Function { name: "zip_compress", min_args: 1, max_args: 1, call: |a| compress("zip_compress", &a[0]) },
    Function { name: "zip_uncompress", min_args: 1, max_args: 1, call: |a| decompress("zip_uncompress", &a[0]) },
    Function {
        name: "uuid_v4",
        min_args: 0,
        max_args: 0,
        call: |_| Ok(Value::Str(uuid::Uuid::new_v4().hyphenated().to_string())),
    },
    Function {
        name: "uuid_v4_no_hyphen",
        min_args: 0,
        max_args: 0,
        call: |_| Ok(Value::Str(uuid::Uuid::new_v4().simple().to_string())),
    },
];

fn bytes<'a>(name: &str, v: &'a Value) -> Result<&'a [u8], EvalError> {
    v.as_bytes().ok_or_else(|| bad(name, v))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `md5`, `sha` (SHA-1), `sha224`, `sha256`, `sha384`, `sha512`, as Erlang's `crypto:hash`.
fn digest(alg: &str, data: &Value) -> Result<Value, EvalError> {
    let d = bytes(alg, data)?;
    let out = match alg {
        "md5" => hex(&md5::Md5::digest(d)),
        "sha" => hex(&sha1::Sha1::digest(d)),
        "sha224" => hex(&sha2::Sha224::digest(d)),
        "sha256" => hex(&sha2::Sha256::digest(d)),
        "sha384" => hex(&sha2::Sha384::digest(d)),
        "sha512" => hex(&sha2::Sha512::digest(d)),
        other => return Err(EvalError::BadArgument(format!("unknown hash algorithm '{other}'"))),
    };
    Ok(Value::Str(out))
}

/// The base64 alphabet and padding chosen by the option arguments (`'urlsafe'`, `'no_padding'`).
fn engine(name: &str, opts: &[Value]) -> Result<base64::engine::GeneralPurpose, EvalError> {
    let (mut urlsafe, mut pad) = (false, true);
    for o in opts {
        match text(name, o)? {
            "urlsafe" => urlsafe = true,
            "no_padding" => pad = false,
            _ => return Err(bad(name, o)),
        }
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    Ok(match (urlsafe, pad) {
        (false, true) => STANDARD,
        (false, false) => STANDARD_NO_PAD,
        (true, true) => URL_SAFE,
        (true, false) => URL_SAFE_NO_PAD,
    })
}

fn base64_encode(a: &[Value]) -> Result<Value, EvalError> {
    let data = match &a[0] {
        v @ (Value::Str(_) | Value::Bin(_)) => bytes("base64_encode", v)?.to_vec(),
        other => other.to_text()?.into_bytes(),
    };
    Ok(Value::Str(engine("base64_encode", &a[1..])?.encode(data)))
}

fn base64_decode(a: &[Value]) -> Result<Value, EvalError> {
    let decoded = engine("base64_decode", &a[1..])?
        .decode(bytes("base64_decode", &a[0])?)
        .map_err(|_| bad("base64_decode", &a[0]))?;
    Ok(Value::from_bytes(&decoded))
}

/// Erlang's gzip header carries OS byte 0x13 (`1F8B0800000000000013`); matching it keeps
/// outputs byte-identical to EMQX's.
const ERLANG_GZIP_OS: u8 = 0x13;

fn compress(name: &str, v: &Value) -> Result<Value, EvalError> {
    let data = bytes(name, v)?;
    let io = |e: std::io::Error| EvalError::BadArgument(format!("{name}(): {e}"));
    let out = match name {
        "zip" => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)?
        }
        "gzip" => {
            let mut e =
                flate2::GzBuilder::new().operating_system(ERLANG_GZIP_OS).write(Vec::new(), Compression::default());
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)?
        }
        _ => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)?
        }
    };
    Ok(Value::from_bytes(&out))
}

/// Output beyond this is refused: a small compressed payload must not expand without bound.
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

fn decompress(name: &str, v: &Value) -> Result<Value, EvalError> {
    let data = bytes(name, v)?;
    let mut out = Vec::new();
    let read = match name {
        "unzip" => flate2::read::DeflateDecoder::new(data).take(MAX_INFLATED + 1).read_to_end(&mut out),
        "gunzip" => flate2::read::GzDecoder::new(data).take(MAX_INFLATED + 1).read_to_end(&mut out),
        _ => flate2::read::ZlibDecoder::new(data).take(MAX_INFLATED + 1).read_to_end(&mut out),
    };
    match read {
        Ok(n) if n as u64 <= MAX_INFLATED => Ok(Value::from_bytes(&out)),
        Ok(_) => Err(EvalError::BadArgument(format!("{name}(): output larger than 64 MiB"))),
        Err(_) => Err(bad(name, v)),
    }
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn hashes() {
        assert_eq!(call("md5", &[s("hello")]).unwrap(), s("5d41402abc4b2a76b9719d911017c592"));
        assert_eq!(call("sha", &[s("hello")]).unwrap(), s("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"));
        assert_eq!(
            call("sha256", &[s("hello")]).unwrap(),
            s("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert_eq!(call("hash", &[s("sha256"), s("hello")]).unwrap(), call("sha256", &[s("hello")]).unwrap());
        assert!(call("hash", &[s("crc99"), s("x")]).is_err());
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(call("base64_encode", &[s("hello?")]).unwrap(), s("aGVsbG8/"));
        assert_eq!(call("base64_encode", &[s("hello?"), s("urlsafe")]).unwrap(), s("aGVsbG8_"));
        assert_eq!(call("base64_encode", &[s("a"), s("no_padding")]).unwrap(), s("YQ"));
        assert_eq!(call("base64_decode", &[s("aGVsbG8/")]).unwrap(), s("hello?"));
        assert!(call("base64_decode", &[s("!!")]).is_err());
    }

    #[test]
    fn compression_matches_erlang() {
        let hexed = |v: Value| call("bin2hexstr", &[v]).unwrap();
        assert_eq!(hexed(call("zip", &[s("hello")]).unwrap()), s("CB48CDC9C90700"));
        let Value::Str(gz) = hexed(call("gzip", &[s("hello")]).unwrap()) else { panic!() };
        assert!(gz.starts_with("1F8B0800000000000013"), "{gz}");
        for (c, d) in [("zip", "unzip"), ("gzip", "gunzip"), ("zip_compress", "zip_uncompress")] {
            let packed = call(c, &[s("some text, some text")]).unwrap();
            assert_eq!(call(d, &[packed]).unwrap(), s("some text, some text"), "{c}/{d}");
        }
        assert!(call("gunzip", &[s("not gzip")]).is_err());
    }

    #[test]
    fn uuids() {
        let Value::Str(u) = call("uuid_v4", &[]).unwrap() else { panic!() };
        assert_eq!((u.len(), u.matches('-').count()), (36, 4));
        let Value::Str(n) = call("uuid_v4_no_hyphen", &[]).unwrap() else { panic!() };
        assert_eq!(n.len(), 32);
    }
}
