-- The function catalogue (emqx-5.md 2.5): every function at least once, with the values of the
-- spec's examples where it gives them. tests/golden.rs checks that no function is left out.

-- case: math
select abs(-3) as abs, ceil(1.2) as ceil, floor(1.8) as floor, round(4.5) as round, power(2, 3) as power,
       sqrt(4) as sqrt, exp(0) as exp, log(1) as log, log10(100) as log10, log2(8) as log2,
       fmod(6.5, 2.5) as fmod, div(7, 2) as idiv, mod(7, 2) as imod, eq(1, 1) as eq, is_float(random()) as random
from "t/#"
-- expect: {"abs": 3, "ceil": 2, "floor": 1, "round": 5, "power": 8.0, "sqrt": 2.0, "exp": 1.0, "log": 0.0, "log10": 2.0, "log2": 3.0, "fmod": 1.5, "idiv": 3, "imod": 1, "eq": true, "random": true}

-- case: trigonometry
select sin(0) as sin, cos(0) as cos, tan(0) as tan, asin(0) as asin, acos(1) as acos, atan(0) as atan,
       sinh(0) as sinh, cosh(0) as cosh, tanh(0) as tanh, asinh(0) as asinh, acosh(1) as acosh, atanh(0) as atanh
from "t/#"
-- expect: {"sin": 0.0, "cos": 1.0, "tan": 0.0, "asin": 0.0, "acos": 0.0, "atan": 0.0, "sinh": 0.0, "cosh": 1.0, "tanh": 0.0, "asinh": 0.0, "acosh": 0.0, "atanh": 0.0}

-- case: null handling and type tests
-- payload: {"n": null, "s": "x"}
select is_null(payload.nope) as a, is_not_null(payload.s) as b, is_null_var(payload.n) as c,
       is_not_null_var(payload.n) as d, is_null(payload.n) as e, is_str('a') as f, is_bool(true) as g,
       is_int(1) as h, is_float(1.5) as i, is_num(1) as j, is_map(json_decode('{}')) as k,
       is_array([1]) as l, is_empty('') as m, is_null(null()) as n, coalesce(payload.nope, 1) as o,
       coalesce_ne('', 'x') as p
from "t/#"
-- expect: {"a": true, "b": true, "c": true, "d": false, "e": false, "f": true, "g": true, "h": true, "i": true, "j": true, "k": true, "l": true, "m": true, "n": true, "o": 1, "p": "x"}

-- case: conversions
select str(3.14159265359) as str, str_utf8(1) as str_utf8, bool('true') as bool, int('3.1415e2') as int,
       int(true) as int_true, float('3.1415926', 3) as float, float2str(0.1, 20) as float2str,
       map('{"a": 1}') as map, bin2hexstr('Hi') as hex, sqlserver_bin2hexstr('Hi') as sqlhex,
       hexstr2bin('4869') as bin, json_encode(json_decode('{"a": [1]}')) as json
from "t/#"
-- expect: {"str": "3.1415926536", "str_utf8": "1", "bool": true, "int": 314, "int_true": 1, "float": 3.142, "float2str": "0.10000000000000000555", "map": {"a": 1}, "hex": "4869", "sqlhex": "0x4869", "bin": "Hi", "json": "{\"a\":[1]}"}

-- case: strings
select lower('AbC') as lower, upper('AbC') as upper, trim('  a ') as trim, ltrim('  a ') as ltrim,
       rtrim(' a  ') as rtrim, reverse('abc') as reverse, strlen('hello') as strlen, ascii('a') as ascii,
       substr('hello world', 6) as substr, rm_prefix('foo-bar', 'foo-') as rm_prefix, concat('a', 'b') as concat,
       pad('a', 3) as pad, replace('a-b-c', '-', '+') as replace, split('a;;b;;c', ';') as split,
       tokens('a b,c', ' ,') as tokens, find('hello world', 'o') as find, join_to_string(',', ['a', 'b']) as joined,
       join_to_sql_values_string(['a', 1]) as sql_values
from "t/#"
-- expect: {"sql_values": "'a', 1", "lower": "abc", "upper": "ABC", "trim": "a", "ltrim": "a ", "rtrim": " a", "reverse": "cba", "strlen": 5, "ascii": 97, "substr": "world", "rm_prefix": "bar", "concat": "ab", "pad": "a  ", "replace": "a+b+c", "split": ["a", "b", "c"], "tokens": ["a", "b", "c"], "find": "o world", "joined": "a,b"}

-- case: regular expressions
select regex_match('abc123', '[0-9]+') as m, regex_replace('ab12cd', '[0-9]+', '#') as r,
       regex_extract('abc123', '([a-z]+)([0-9]+)') as e
from "t/#"
-- expect: {"m": true, "r": "ab#cd", "e": ["abc", "123"]}

-- case: maps
-- payload: {"m": {"a": 1}}
select map_new() as new, map_get('a', payload.m) as get, map_put('b', 2, payload.m) as put,
       mget('a', payload.m) as mget, mput('c', 3, payload.m) as mput, map_keys(payload.m) as keys,
       map_values(payload.m) as vals, map_size(payload.m) as size, map_to_entries(payload.m) as entries,
       map_to_redis_hset_args(payload.m) as hset
from "t/#"
-- expect: {"new": {}, "get": 1, "put": {"a": 1, "b": 2}, "mget": 1, "mput": {"a": 1, "c": 3}, "keys": ["a"], "vals": [1], "size": 1, "entries": [{"key": "a", "value": 1}], "hset": ["a", "1"]}

-- case: arrays
select nth(2, [1, 2, 3]) as nth, length([1, 2]) as length, sublist(2, [1, 2, 3]) as head,
       sublist(2, 1, [1, 2, 3]) as mid, first([1, 2]) as first, last([1, 2]) as last, contains(2, [1, 2]) as contains
from "t/#"
-- expect: {"nth": 2, "length": 2, "head": [1, 2], "mid": [2], "first": 1, "last": 2, "contains": true}

-- case: hashes and base64
select md5('hello') as md5, sha('hello') as sha, sha256('hello') as sha256, hash('md5', 'hello') as hash,
       base64_encode('hello') as b64, base64_decode('aGVsbG8=') as unb64
from "t/#"
-- expect: {"md5": "5d41402abc4b2a76b9719d911017c592", "sha": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "hash": "5d41402abc4b2a76b9719d911017c592", "b64": "aGVsbG8=", "unb64": "hello"}

-- case: compression and UUIDs
select bin2hexstr(zip('hello')) as zip, unzip(zip('hello')) as unzip, gunzip(gzip('hello')) as gzip,
       zip_uncompress(zip_compress('hello')) as zlib, strlen(uuid_v4()) as uuid, strlen(uuid_v4_no_hyphen()) as uuid_nh
from "t/#"
-- expect: {"zip": "CB48CDC9C90700", "unzip": "hello", "gzip": "hello", "zlib": "hello", "uuid": 36, "uuid_nh": 32}

-- case: bits
select bitnot(0) as bnot, bitand(12, 10) as band, bitor(12, 10) as bor, bitxor(12, 10) as bxor,
       bitsl(1, 4) as bsl, bitsr(16, 4) as bsr, bitsize('ab') as bitsize, bytesize('ab') as bytesize,
       subbits(hexstr2bin('9F4E58'), 1, 16, 'integer', 'signed', 'big') as signed16, subbits(hexstr2bin('FF'), 4) as first4
from "t/#"
-- expect: {"bnot": -1, "band": 8, "bor": 14, "bxor": 6, "bsl": 16, "bsr": 1, "bitsize": 16, "bytesize": 2, "signed16": -24754, "first4": 15}

-- case: time
select is_int(now_timestamp()) as now, is_str(now_rfc3339()) as rfc, rfc3339_to_unix_ts(unix_ts_to_rfc3339(100)) as round_trip,
       rfc3339_to_unix_ts('1970-01-01T00:00:01+00:00') as one, timezone_to_offset_seconds('+08:00') as tz,
       timezone_to_second('-01:30') as tz2, format_date('second', '+08:00', '%Y-%m-%d %H:%M:%S', 0) as fmt,
       date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S%:z', '2024-02-23 15:00:00+08:00') as parsed
from "t/#"
-- expect: {"now": true, "rfc": true, "round_trip": 100, "one": 1, "tz": 28800, "tz2": -5400, "fmt": "1970-01-01 08:00:00", "parsed": 1708671600}

-- case: escapes, subscriptions, environment, UTF-16
-- payload: {"subs": [{"topic": "t/1", "qos": 1}, {"topic": "s/#", "qos": 0}]}
select unescape('a\tb') as unescaped, contains_topic(payload.subs, 't/1') as exact,
       contains_topic(payload.subs, 's/1') as exact_no, contains_topic_match(payload.subs, 's/1') as wild,
       is_null(getenv('WEIR_GOLDEN_SURELY_UNSET')) as env, bin2hexstr(str_utf16_le('a')) as utf16
from "t/#"
-- expect: {"unescaped": "a\tb", "exact": true, "exact_no": false, "wild": true, "env": true, "utf16": "6100"}

-- case: sprintf and jq
-- payload: {"r": [{"v": 1}, {"v": 5}]}
select sprintf_s('~s is ~p', ['x', 1]) as s, sprintf('~s/~d', 'a', 2) as p,
       jq('[.r[] | select(.v > 2) | .v]', payload) as big
from "t/#"
-- expect: {"s": "x is 1", "p": "a/2", "big": [[5]]}
