//! The systematic pass over EMQX's SQL functions: every function that EMQX 5.x exports from
//! `apps/emqx_rule_engine/src/emqx_rule_funcs.erl`, at every arity it exports, is either
//! implemented (a rule can call it with that many arguments: whatever it answers, it is not
//! "not supported" nor a wrong count of arguments), or listed in [`NOT_SUPPORTED`] with the reason,
//! which the README repeats.

use std::collections::BTreeMap;

use weir_rules::eval::evaluate;
use weir_rules::value::Value;

/// `name/arity`, as the module's `-export` lists them (the IoT, arithmetic, math, bit, binary,
/// conversion, validation, string, map, array, hash, compression, encoding, date, random and
/// state groups); operators (`'+'/2` and the others) are the SQL's own and are left out.
const EXPORTED: &[&str] = &[
    "msgid/0",
    "qos/0",
    "flags/0",
    "flag/1",
    "topic/0",
    "topic/1",
    "clientid/0",
    "clientip/0",
    "peerhost/0",
    "username/0",
    "payload/0",
    "payload/1",
    "contains_topic/2",
    "contains_topic/3",
    "contains_topic_match/2",
    "contains_topic_match/3",
    "null/0",
    "div/2",
    "mod/2",
    "eq/2",
    "abs/1",
    "acos/1",
    "acosh/1",
    "asin/1",
    "asinh/1",
    "atan/1",
    "atanh/1",
    "ceil/1",
    "cos/1",
    "cosh/1",
    "exp/1",
    "floor/1",
    "fmod/2",
    "log/1",
    "log10/1",
    "log2/1",
    "power/2",
    "round/1",
    "sin/1",
    "sinh/1",
    "sqrt/1",
    "tan/1",
    "tanh/1",
    "bitnot/1",
    "bitand/2",
    "bitor/2",
    "bitxor/2",
    "bitsl/2",
    "bitsr/2",
    "bitsize/1",
    "bytesize/1",
    "subbits/2",
    "subbits/3",
    "subbits/4",
    "subbits/5",
    "subbits/6",
    "str/1",
    "str_utf8/1",
    "bool/1",
    "int/1",
    "float/1",
    "float/2",
    "float2str/2",
    "map/1",
    "bin2hexstr/1",
    "hexstr2bin/1",
    "is_null/1",
    "is_null_var/1",
    "is_not_null/1",
    "is_not_null_var/1",
    "is_str/1",
    "is_bool/1",
    "is_int/1",
    "is_float/1",
    "is_num/1",
    "is_map/1",
    "is_array/1",
    "lower/1",
    "ltrim/1",
    "reverse/1",
    "rtrim/1",
    "strlen/1",
    "substr/2",
    "substr/3",
    "trim/1",
    "upper/1",
    "split/2",
    "split/3",
    "concat/1",
    "concat/2",
    "tokens/2",
    "tokens/3",
    "sprintf_s/2",
    "pad/2",
    "pad/3",
    "pad/4",
    "replace/3",
    "replace/4",
    "regex_match/2",
    "regex_replace/3",
    "regex_extract/2",
    "ascii/1",
    "find/2",
    "find/3",
    "join_to_string/1",
    "join_to_string/2",
    "map_to_redis_hset_args/1",
    "join_to_sql_values_string/1",
    "jq/2",
    "jq/3",
    "unescape/1",
    "map_new/0",
    "map_get/2",
    "map_get/3",
    "map_put/3",
    "map_keys/1",
    "map_values/1",
    "map_to_entries/1",
    "mget/2",
    "mget/3",
    "mput/3",
    "nth/2",
    "length/1",
    "sublist/2",
    "sublist/3",
    "first/1",
    "last/1",
    "contains/2",
    "md5/1",
    "sha/1",
    "sha256/1",
    "hash/2",
    "zip/1",
    "unzip/1",
    "gzip/1",
    "gunzip/1",
    "zip_compress/1",
    "zip_uncompress/1",
    "base64_encode/1",
    "base64_decode/1",
    "json_decode/1",
    "json_encode/1",
    "term_decode/1",
    "term_encode/1",
    "now_rfc3339/0",
    "now_rfc3339/1",
    "unix_ts_to_rfc3339/1",
    "unix_ts_to_rfc3339/2",
    "rfc3339_to_unix_ts/1",
    "rfc3339_to_unix_ts/2",
    "now_timestamp/0",
    "now_timestamp/1",
    "format_date/3",
    "format_date/4",
    "date_to_unix_ts/3",
    "date_to_unix_ts/4",
    "timezone_to_second/1",
    "timezone_to_offset_seconds/1",
    "mongo_date/0",
    "mongo_date/1",
    "mongo_date/2",
    "random/0",
    "uuid_v4/0",
    "uuid_v4_no_hyphen/0",
    "proc_dict_get/1",
    "proc_dict_put/2",
    "proc_dict_del/1",
    "kv_store_get/1",
    "kv_store_get/2",
    "kv_store_put/2",
    "kv_store_del/1",
];

/// EMQX functions Weir does not have, and why (the README lists them too).
const NOT_SUPPORTED: &[(&str, &str)] = &[
    ("term_decode", "Erlang's external term format: nothing outside an Erlang node writes or reads it"),
    ("term_encode", "Erlang's external term format: nothing outside an Erlang node writes or reads it"),
    ("mongo_date", "makes a date tuple only EMQX's MongoDB action understands; Weir has no MongoDB sink"),
    ("proc_dict_get", "the Erlang process dictionary of the connection; Weir's rules keep no state per process"),
    ("proc_dict_put", "the Erlang process dictionary of the connection; Weir's rules keep no state per process"),
    ("proc_dict_del", "the Erlang process dictionary of the connection; Weir's rules keep no state per process"),
    ("kv_store_get", "a node-wide key-value store that rules write into; rules in Weir have no side effects"),
    ("kv_store_put", "a node-wide key-value store that rules write into; rules in Weir have no side effects"),
    ("kv_store_del", "a node-wide key-value store that rules write into; rules in Weir have no side effects"),
];

#[test]
fn every_emqx_function_is_implemented_or_listed_with_its_reason() {
    let columns: BTreeMap<String, Value> = BTreeMap::from([
        ("payload".to_string(), Value::Str("{}".into())),
        ("topic".to_string(), Value::Str("t/a".into())),
    ]);
    let mut missing = Vec::new();
    let mut listed_but_present = Vec::new();
    for export in EXPORTED {
        let (name, arity) = export.split_once('/').expect("name/arity");
        let arity: usize = arity.parse().expect("arity");
        let args = vec!["'1'"; arity].join(", ");
        let sql = format!("SELECT {name}({args}) AS r FROM \"t/#\"");
        let rule = weir_rules::parse_rule(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let answer = evaluate(&rule, &columns).err().map(|e| e.to_string()).unwrap_or_default();
        let absent = answer.contains("is not supported") || answer.contains("takes");
        let listed = NOT_SUPPORTED.iter().any(|(n, _)| *n == name);
        match (absent, listed) {
            (true, false) => missing.push(format!("{export}: {answer}")),
            (false, true) => listed_but_present.push(export.to_string()),
            _ => {}
        }
    }
    assert!(missing.is_empty(), "neither implemented nor listed:\n{}", missing.join("\n"));
    assert!(listed_but_present.is_empty(), "listed as not supported but implemented: {listed_but_present:?}");
}

#[test]
fn the_readme_lists_every_function_that_is_not_supported() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README");
    for (name, _) in NOT_SUPPORTED {
        assert!(readme.contains(&format!("`{name}`")), "the README does not list `{name}`");
    }
}
