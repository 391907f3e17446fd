-- Edge cases per function: empty input, wrong types, Unicode, negative numbers, positions out
-- of range. The expected values are what EMQX's own code gives (emqx_rule_funcs.erl and the
-- Erlang functions it calls: string:slice/pad/reverse work on grapheme clusters, int/1 floors,
-- round/1 rounds half away from zero, div truncates, mod is rem, abs/1 takes integers only);
-- a guard that does not match is an error, as it fails the message in EMQX.

-- case: strlen, empty input
select strlen('') as r from "t/#"
-- expect: {"r": 0}

-- case: upper, empty input
select upper('') as r from "t/#"
-- expect: {"r": ""}

-- case: lower, empty input
select lower('') as r from "t/#"
-- expect: {"r": ""}

-- case: reverse, empty input
select reverse('') as r from "t/#"
-- expect: {"r": ""}

-- case: bin2hexstr, empty input
select bin2hexstr('') as r from "t/#"
-- expect: {"r": ""}

-- case: hexstr2bin, empty input
select hexstr2bin('') as r from "t/#"
-- expect: {"r": ""}

-- case: tokens, empty input
select tokens('', ',') as r from "t/#"
-- expect: {"r": []}

-- case: join_to_string, empty input
select join_to_string(',', []) as r from "t/#"
-- expect: {"r": ""}

-- case: replace, empty input
select replace('aaa', 'a', '') as r from "t/#"
-- expect: {"r": ""}

-- case: concat, empty input
select concat('', '') as r from "t/#"
-- expect: {"r": ""}

-- case: map_keys, empty input
select map_keys(json_decode('{}')) as r from "t/#"
-- expect: {"r": []}

-- case: map_values, empty input
select map_values(json_decode('{}')) as r from "t/#"
-- expect: {"r": []}

-- case: contains, empty input
select contains(1, []) as r from "t/#"
-- expect: {"r": false}

-- case: length, empty input
select length([]) as r from "t/#"
-- expect: {"r": 0}

-- case: pad, empty input
select pad('', 2) as r from "t/#"
-- expect: {"r": "  "}

-- case: find, empty input
select find('abc', '') as r from "t/#"
-- expect: {"r": "abc"}

-- case: base64_encode, empty input
select base64_encode('') as r from "t/#"
-- expect: {"r": ""}

-- case: lower, wrong type or out of range: an error
select lower(1) as r from "t/#"
-- expect: error

-- case: upper, wrong type or out of range: an error
select upper(1) as r from "t/#"
-- expect: error

-- case: reverse, wrong type or out of range: an error
select reverse(1) as r from "t/#"
-- expect: error

-- case: strlen, wrong type or out of range: an error
select strlen(1) as r from "t/#"
-- expect: error

-- case: trim, wrong type or out of range: an error
select trim(1) as r from "t/#"
-- expect: error

-- case: ltrim, wrong type or out of range: an error
select ltrim(1) as r from "t/#"
-- expect: error

-- case: substr, wrong type or out of range: an error
select substr(1, 1) as r from "t/#"
-- expect: error

-- case: substr, wrong type or out of range: an error #2
select substr('abc', 'x') as r from "t/#"
-- expect: error

-- case: sqrt, wrong type or out of range: an error
select sqrt('a') as r from "t/#"
-- expect: error

-- case: abs, wrong type or out of range: an error
select abs(-1.5) as r from "t/#"
-- expect: error

-- case: length, wrong type or out of range: an error
select length('abc') as r from "t/#"
-- expect: error

-- case: first, wrong type or out of range: an error
select first([]) as r from "t/#"
-- expect: error

-- case: last, wrong type or out of range: an error
select last([]) as r from "t/#"
-- expect: error

-- case: nth, wrong type or out of range: an error
select nth(0, [1, 2]) as r from "t/#"
-- expect: error

-- case: nth, wrong type or out of range: an error #2
select nth(5, [1, 2]) as r from "t/#"
-- expect: error

-- case: ascii, wrong type or out of range: an error
select ascii('') as r from "t/#"
-- expect: error

-- case: json_decode, wrong type or out of range: an error
select json_decode('{') as r from "t/#"
-- expect: error

-- case: base64_decode, wrong type or out of range: an error
select base64_decode('!!') as r from "t/#"
-- expect: error

-- case: regex_match, wrong type or out of range: an error
select regex_match('abc', '(') as r from "t/#"
-- expect: error

-- case: regex_replace, wrong type or out of range: an error
select regex_replace('abc', '(', 'x') as r from "t/#"
-- expect: error

-- case: split, wrong type or out of range: an error
select split('a,b', ',', 'bogus') as r from "t/#"
-- expect: error

-- case: bitnot, wrong type or out of range: an error
select bitnot(1.5) as r from "t/#"
-- expect: error

-- case: bitand, wrong type or out of range: an error
select bitand(1, 'a') as r from "t/#"
-- expect: error

-- case: div, wrong type or out of range: an error
select div(1.5, 1) as r from "t/#"
-- expect: error

-- case: mod, wrong type or out of range: an error
select mod(7, 2.0) as r from "t/#"
-- expect: error

-- case: power, wrong type or out of range: an error
select power('a', 2) as r from "t/#"
-- expect: error

-- case: map_put, wrong type or out of range: an error
select map_put('a', 1, 2) as r from "t/#"
-- expect: error

-- case: strlen, unicode
select strlen('héllo') as r from "t/#"
-- expect: {"r": 5}

-- case: reverse, unicode
select reverse('héllo') as r from "t/#"
-- expect: {"r": "olléh"}

-- case: upper, unicode
select upper('héllo') as r from "t/#"
-- expect: {"r": "HÉLLO"}

-- case: lower, unicode
select lower('ÀB') as r from "t/#"
-- expect: {"r": "àb"}

-- case: substr, unicode
select substr('héllo', 1, 2) as r from "t/#"
-- expect: {"r": "él"}

-- case: find, unicode
select find('héllo', 'l') as r from "t/#"
-- expect: {"r": "llo"}

-- case: pad, unicode
select pad('é', 3) as r from "t/#"
-- expect: {"r": "é  "}

-- case: ascii, unicode
select ascii('é') as r from "t/#"
-- expect: {"r": 195}

-- case: split, unicode
select split('α,β', ',') as r from "t/#"
-- expect: {"r": ["α", "β"]}

-- case: concat, unicode
select concat('你', '好') as r from "t/#"
-- expect: {"r": "你好"}

-- case: trim, unicode
select trim(' 你好 ') as r from "t/#"
-- expect: {"r": "你好"}

-- case: int, negative numbers
select int(-1.5) as r from "t/#"
-- expect: {"r": -2}

-- case: round, negative numbers
select round(-2.5) as r from "t/#"
-- expect: {"r": -3}

-- case: round, negative numbers #2
select round(2.5) as r from "t/#"
-- expect: {"r": 3}

-- case: ceil, negative numbers
select ceil(-1.5) as r from "t/#"
-- expect: {"r": -1}

-- case: floor, negative numbers
select floor(-1.5) as r from "t/#"
-- expect: {"r": -2}

-- case: div, negative numbers
select div(-7, 2) as r from "t/#"
-- expect: {"r": -3}

-- case: mod, negative numbers
select mod(-7, 2) as r from "t/#"
-- expect: {"r": -1}

-- case: fmod, negative numbers
select fmod(-7, 2) as r from "t/#"
-- expect: {"r": -1.0}

-- case: bitsr, negative numbers
select bitsr(-8, 1) as r from "t/#"
-- expect: {"r": -4}

-- case: bitnot, negative numbers
select bitnot(0) as r from "t/#"
-- expect: {"r": -1}

-- case: abs, negative numbers
select abs(-3) as r from "t/#"
-- expect: {"r": 3}

-- case: power, negative numbers
select power(2, -1) as r from "t/#"
-- expect: {"r": 0.5}

-- case: float2str, negative numbers
select float2str(-1.5, 2) as r from "t/#"
-- expect: {"r": "-1.5"}

-- case: str, negative numbers
select str(-1) as r from "t/#"
-- expect: {"r": "-1"}

-- case: bitsl, negative numbers
select bitsl(1, 62) as r from "t/#"
-- expect: {"r": 4611686018427387904}

-- case: substr, out-of-range positions
select substr('abc', 5) as r from "t/#"
-- expect: {"r": ""}

-- case: substr, out-of-range positions #2
select substr('abc', 1, 10) as r from "t/#"
-- expect: {"r": "bc"}

-- case: sublist, out-of-range positions
select sublist(10, [1, 2]) as r from "t/#"
-- expect: {"r": [1, 2]}

-- case: sublist, out-of-range positions #2
select sublist(3, 1, [1, 2]) as r from "t/#"
-- expect: {"r": []}

-- case: pad, out-of-range positions
select pad('abc', 2) as r from "t/#"
-- expect: {"r": "abc"}

-- case: regex_extract, out-of-range positions
select regex_extract('No numbers here!', '([0-9]+)') as r from "t/#"
-- expect: {"r": []}

-- case: regex_extract, out-of-range positions #2
select regex_extract('Date: 2021-05-20', '([0-9]{4})-([0-9]{2})-([0-9]{2})') as r from "t/#"
-- expect: {"r": ["2021", "05", "20"]}
