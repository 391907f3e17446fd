-- Cases taken from EMQX's function tests, apps/emqx_rule_engine/test/emqx_rule_funcs_SUITE.erl
-- (EMQX 5.x): each assertion of a test, named after it, as a rule on the tester's message.
-- Erlang-only inputs (atoms, charlists, tuples) are left out; text with control characters
-- comes in through the payload.

-- case: t_str #1
select str('abc') as r from "t/#"
-- expect: {"r": "abc"}

-- case: t_str #2
select str(json_decode('{"a":1}')) as r from "t/#"
-- expect: {"r": "{\"a\":1}"}

-- case: t_str #3
select str(json_decode('[{"a":1},{"b":1}]')) as r from "t/#"
-- expect: {"r": "[{\"a\":1},{\"b\":1}]"}

-- case: t_str #4
select str(1) as r from "t/#"
-- expect: {"r": "1"}

-- case: t_str #5
select str(2.0) as r from "t/#"
-- expect: {"r": "2.0"}

-- case: t_str #6
select str(true) as r from "t/#"
-- expect: {"r": "true"}

-- case: t_str #7
select str_utf8('abc') as r from "t/#"
-- expect: {"r": "abc"}

-- case: t_str #8
select str_utf8('abc 你好') as r from "t/#"
-- expect: {"r": "abc 你好"}

-- case: t_str #9
select str_utf8(json_decode('{"a":"abc 你好"}')) as r from "t/#"
-- expect: {"r": "{\"a\":\"abc 你好\"}"}

-- case: t_str #10
select str_utf8(1) as r from "t/#"
-- expect: {"r": "1"}

-- case: t_str #11
select str_utf8(2.0) as r from "t/#"
-- expect: {"r": "2.0"}

-- case: t_str #12
select str_utf8(true) as r from "t/#"
-- expect: {"r": "true"}

-- case: t_int #1
select int('1') as r from "t/#"
-- expect: {"r": 1}

-- case: t_int #2
select int('1.0') as r from "t/#"
-- expect: {"r": 1}

-- case: t_int #3
select int(1) as r from "t/#"
-- expect: {"r": 1}

-- case: t_int #4
select int(1.9) as r from "t/#"
-- expect: {"r": 1}

-- case: t_int #5
select int(1.0001) as r from "t/#"
-- expect: {"r": 1}

-- case: t_int #6
select int(true) as r from "t/#"
-- expect: {"r": 1}

-- case: t_int #7
select int(false) as r from "t/#"
-- expect: {"r": 0}

-- case: t_int #8
select int('a') as r from "t/#"
-- expect: error

-- case: t_float #1
select float('1.0') as r from "t/#"
-- expect: {"r": 1.0}

-- case: t_float #2
select float(1) as r from "t/#"
-- expect: {"r": 1.0}

-- case: t_float #3
select float(1.0) as r from "t/#"
-- expect: {"r": 1.0}

-- case: t_float #4
select float(1.9) as r from "t/#"
-- expect: {"r": 1.9}

-- case: t_float #5
select float(1.0001) as r from "t/#"
-- expect: {"r": 1.0001}

-- case: t_float #6
select float(1.0000000001) as r from "t/#"
-- expect: {"r": 1.0000000001}

-- case: t_float #7
select float('a') as r from "t/#"
-- expect: error

-- case: t_map #1
select map('{"a":1}') as r from "t/#"
-- expect: {"r": {"a": 1}}

-- case: t_map #2
select map('a') as r from "t/#"
-- expect: error

-- case: t_map #3
select map(1.0) as r from "t/#"
-- expect: error

-- case: t_bool #1
select bool(1) as r from "t/#"
-- expect: {"r": true}

-- case: t_bool #2
select bool(1.0) as r from "t/#"
-- expect: {"r": true}

-- case: t_bool #3
select bool(0) as r from "t/#"
-- expect: {"r": false}

-- case: t_bool #4
select bool(0.0) as r from "t/#"
-- expect: {"r": false}

-- case: t_bool #5
select bool(true) as r from "t/#"
-- expect: {"r": true}

-- case: t_bool #6
select bool('true') as r from "t/#"
-- expect: {"r": true}

-- case: t_bool #7
select bool(false) as r from "t/#"
-- expect: {"r": false}

-- case: t_bool #8
select bool('false') as r from "t/#"
-- expect: {"r": false}

-- case: t_bool #9
select bool(3) as r from "t/#"
-- expect: error

-- case: t_float2str #1
select float2str(20.2, 1) as r from "t/#"
-- expect: {"r": "20.2"}

-- case: t_float2str #2
select float2str(20.2, 10) as r from "t/#"
-- expect: {"r": "20.2"}

-- case: t_float2str #3
select float2str(20.2, 15) as r from "t/#"
-- expect: {"r": "20.199999999999999"}

-- case: t_float2str #4
select float2str(20.2, 16) as r from "t/#"
-- expect: {"r": "20.1999999999999993"}

-- case: t_hexstr2bin #1
select bin2hexstr(hexstr2bin('6364f')) as r from "t/#"
-- expect: {"r": "06364F"}

-- case: t_hexstr2bin #2
select bin2hexstr(hexstr2bin('a')) as r from "t/#"
-- expect: {"r": "0A"}

-- case: t_hexstr2bin #3
select bin2hexstr(hexstr2bin('f')) as r from "t/#"
-- expect: {"r": "0F"}

-- case: t_hexstr2bin #4
select bin2hexstr(hexstr2bin('5')) as r from "t/#"
-- expect: {"r": "05"}

-- case: t_hexstr2bin #5
select bin2hexstr(hexstr2bin('0102')) as r from "t/#"
-- expect: {"r": "0102"}

-- case: t_hexstr2bin #6
select bin2hexstr(hexstr2bin('1121')) as r from "t/#"
-- expect: {"r": "1121"}

-- case: t_is_null #1
select is_null(payload.nope) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_null #2
select is_null('') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_null #3
select is_null('a') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_null #4
select is_not_null(payload.nope) as r from "t/#"
-- expect: {"r": false}

-- case: t_is_null #5
select is_not_null('') as r from "t/#"
-- expect: {"r": true}

-- case: t_is_null #6
select is_not_null('a') as r from "t/#"
-- expect: {"r": true}

-- case: t_is_str #1
select is_str('a') as r from "t/#"
-- expect: {"r": true}

-- case: t_is_str #2
select is_str('') as r from "t/#"
-- expect: {"r": true}

-- case: t_is_str #3
select is_str('abc') as r from "t/#"
-- expect: {"r": true}

-- case: t_is_str #4
select is_str(1) as r from "t/#"
-- expect: {"r": false}

-- case: t_is_bool #1
select is_bool(true) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_bool #2
select is_bool(false) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_bool #3
select is_bool('') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_bool #4
select is_bool(2) as r from "t/#"
-- expect: {"r": false}

-- case: t_is_int #1
select is_int(1) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_int #2
select is_int(2) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_int #3
select is_int(-1) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_int #4
select is_int(1.1) as r from "t/#"
-- expect: {"r": false}

-- case: t_is_int #5
select is_int('a') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_float #1
select is_float(1.1) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_float #2
select is_float(2.0) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_float #3
select is_float(-1.2) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_float #4
select is_float(1) as r from "t/#"
-- expect: {"r": false}

-- case: t_is_float #5
select is_float('') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_num #1
select is_num(1.1) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_num #2
select is_num(2.0) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_num #3
select is_num(-1.2) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_num #4
select is_num(1) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_num #5
select is_num('a') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_num #6
select is_num('') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_map #1
select is_map(json_decode('{}')) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_map #2
select is_map(json_decode('{"a":1}')) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_map #3
select is_map('a') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_map #4
select is_map('') as r from "t/#"
-- expect: {"r": false}

-- case: t_is_array #1
select is_array([]) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_array #2
select is_array([1, 2]) as r from "t/#"
-- expect: {"r": true}

-- case: t_is_array #3
select is_array('') as r from "t/#"
-- expect: {"r": false}

-- case: t_lower_upper #1
select upper('abc4') as r from "t/#"
-- expect: {"r": "ABC4"}

-- case: t_lower_upper #2
select lower('0ABC') as r from "t/#"
-- expect: {"r": "0abc"}

-- case: t_reverse #1
select reverse('abcd') as r from "t/#"
-- expect: {"r": "dcba"}

-- case: t_reverse #2
select reverse('1234') as r from "t/#"
-- expect: {"r": "4321"}

-- case: t_strlen #1
select strlen('abcd') as r from "t/#"
-- expect: {"r": 4}

-- case: t_strlen #2
select strlen('你好') as r from "t/#"
-- expect: {"r": 2}

-- case: t_substr #1
select substr('', 1) as r from "t/#"
-- expect: {"r": ""}

-- case: t_substr #2
select substr('abc', 1) as r from "t/#"
-- expect: {"r": "bc"}

-- case: t_substr #3
select substr('abcd', 1, 2) as r from "t/#"
-- expect: {"r": "bc"}

-- case: t_trim #1
select trim('') as r from "t/#"
-- expect: {"r": ""}

-- case: t_trim #2
select ltrim('') as r from "t/#"
-- expect: {"r": ""}

-- case: t_trim #3
select rtrim('') as r from "t/#"
-- expect: {"r": ""}

-- case: t_trim #4
select trim(' abc ') as r from "t/#"
-- expect: {"r": "abc"}

-- case: t_trim #5
select ltrim(' abc ') as r from "t/#"
-- expect: {"r": "abc "}

-- case: t_trim #6
select rtrim(' abc') as r from "t/#"
-- expect: {"r": " abc"}

-- case: t_split_all #1
select split('', '/') as r from "t/#"
-- expect: {"r": []}

-- case: t_split_all #2
select split('/', '/') as r from "t/#"
-- expect: {"r": []}

-- case: t_split_all #3
select split('/a/b/c', '/') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_split_all #4
select split('/a/b//c/', '/') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_split_all #5
-- payload: {"s": "a,b,c"}
select split(payload.s, ',') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_split_all #6
-- payload: {"s": "a, b ,c"}
select split(payload.s, ',') as r from "t/#"
-- expect: {"r": ["a", " b ", "c"]}

-- case: t_split_all #7
-- payload: {"s": "a,b,c\n"}
select split(payload.s, ',') as r from "t/#"
-- expect: {"r": ["a", "b", "c\n"]}

-- case: t_split_all #8
-- payload: {"s": "a,b,c\r\n"}
select split(payload.s, ',') as r from "t/#"
-- expect: {"r": ["a", "b", "c\r\n"]}

-- case: t_split_notrim_all #1
select split('', '/', 'notrim') as r from "t/#"
-- expect: {"r": [""]}

-- case: t_split_notrim_all #2
select split('/', '/', 'notrim') as r from "t/#"
-- expect: {"r": ["", ""]}

-- case: t_split_notrim_all #3
select split('/a/b/c', '/', 'notrim') as r from "t/#"
-- expect: {"r": ["", "a", "b", "c"]}

-- case: t_split_notrim_all #4
select split('/a/b//c/', '/', 'notrim') as r from "t/#"
-- expect: {"r": ["", "a", "b", "", "c", ""]}

-- case: t_split_notrim_all #5
-- payload: {"s": ",a,b,c\n"}
select split(payload.s, ',', 'notrim') as r from "t/#"
-- expect: {"r": ["", "a", "b", "c\n"]}

-- case: t_split_notrim_all #6
-- payload: {"s": "a, b,c\r\n"}
select split(payload.s, ',', 'notrim') as r from "t/#"
-- expect: {"r": ["a", " b", "c\r\n"]}

-- case: t_split_notrim_all #7
-- payload: {"s": "哈哈, 你好, 是的\r\n"}
select split(payload.s, ',', 'notrim') as r from "t/#"
-- expect: {"r": ["哈哈", " 你好", " 是的\r\n"]}

-- case: t_split_leading #1
select split('', '/', 'leading') as r from "t/#"
-- expect: {"r": []}

-- case: t_split_leading #2
select split('/', '/', 'leading') as r from "t/#"
-- expect: {"r": []}

-- case: t_split_leading #3
select split('/a/b/c', '/', 'leading') as r from "t/#"
-- expect: {"r": ["a/b/c"]}

-- case: t_split_leading #4
-- payload: {"s": "a/b//c/"}
select split(payload.s, '/', 'leading') as r from "t/#"
-- expect: {"r": ["a", "b//c/"]}

-- case: t_split_leading #5
-- payload: {"s": "a,b,c\n"}
select split(payload.s, ',', 'leading') as r from "t/#"
-- expect: {"r": ["a", "b,c\n"]}

-- case: t_split_leading #6
-- payload: {"s": "a b,c\r\n"}
select split(payload.s, ',', 'leading') as r from "t/#"
-- expect: {"r": ["a b", "c\r\n"]}

-- case: t_split_leading #7
-- payload: {"s": "哈哈, 你好, 是的\r\n"}
select split(payload.s, ',', 'leading') as r from "t/#"
-- expect: {"r": ["哈哈", " 你好, 是的\r\n"]}

-- case: t_split_leading_notrim #1
select split('', '/', 'leading_notrim') as r from "t/#"
-- expect: {"r": [""]}

-- case: t_split_leading_notrim #2
select split('/', '/', 'leading_notrim') as r from "t/#"
-- expect: {"r": ["", ""]}

-- case: t_split_leading_notrim #3
select split('/a/b/c', '/', 'leading_notrim') as r from "t/#"
-- expect: {"r": ["", "a/b/c"]}

-- case: t_split_leading_notrim #4
-- payload: {"s": "a/b//c/"}
select split(payload.s, '/', 'leading_notrim') as r from "t/#"
-- expect: {"r": ["a", "b//c/"]}

-- case: t_split_leading_notrim #5
-- payload: {"s": "a,b,c\n"}
select split(payload.s, ',', 'leading_notrim') as r from "t/#"
-- expect: {"r": ["a", "b,c\n"]}

-- case: t_split_leading_notrim #6
-- payload: {"s": "a b,c\r\n"}
select split(payload.s, ',', 'leading_notrim') as r from "t/#"
-- expect: {"r": ["a b", "c\r\n"]}

-- case: t_split_leading_notrim #7
-- payload: {"s": "哈哈, 你好, 是的\r\n"}
select split(payload.s, ',', 'leading_notrim') as r from "t/#"
-- expect: {"r": ["哈哈", " 你好, 是的\r\n"]}

-- case: t_split_trailing #1
select split('', '/', 'trailing') as r from "t/#"
-- expect: {"r": []}

-- case: t_split_trailing #2
select split('/', '/', 'trailing') as r from "t/#"
-- expect: {"r": []}

-- case: t_split_trailing #3
select split('/a/b/c', '/', 'trailing') as r from "t/#"
-- expect: {"r": ["/a/b", "c"]}

-- case: t_split_trailing #4
-- payload: {"s": "a/b//c/"}
select split(payload.s, '/', 'trailing') as r from "t/#"
-- expect: {"r": ["a/b//c"]}

-- case: t_split_trailing #5
-- payload: {"s": "a,b,c\n"}
select split(payload.s, ',', 'trailing') as r from "t/#"
-- expect: {"r": ["a,b", "c\n"]}

-- case: t_split_trailing #6
-- payload: {"s": "a b,c\r\n"}
select split(payload.s, ',', 'trailing') as r from "t/#"
-- expect: {"r": ["a b", "c\r\n"]}

-- case: t_split_trailing #7
-- payload: {"s": "哈哈, 你好, 是的\r\n"}
select split(payload.s, ',', 'trailing') as r from "t/#"
-- expect: {"r": ["哈哈, 你好", " 是的\r\n"]}

-- case: t_split_trailing_notrim #1
select split('', '/', 'trailing_notrim') as r from "t/#"
-- expect: {"r": [""]}

-- case: t_split_trailing_notrim #2
select split('/', '/', 'trailing_notrim') as r from "t/#"
-- expect: {"r": ["", ""]}

-- case: t_split_trailing_notrim #3
select split('/a/b/c', '/', 'trailing_notrim') as r from "t/#"
-- expect: {"r": ["/a/b", "c"]}

-- case: t_split_trailing_notrim #4
-- payload: {"s": "a/b//c/"}
select split(payload.s, '/', 'trailing_notrim') as r from "t/#"
-- expect: {"r": ["a/b//c", ""]}

-- case: t_split_trailing_notrim #5
-- payload: {"s": "a,b,c\n"}
select split(payload.s, ',', 'trailing_notrim') as r from "t/#"
-- expect: {"r": ["a,b", "c\n"]}

-- case: t_split_trailing_notrim #6
-- payload: {"s": "a b,c\r\n"}
select split(payload.s, ',', 'trailing_notrim') as r from "t/#"
-- expect: {"r": ["a b", "c\r\n"]}

-- case: t_split_trailing_notrim #7
-- payload: {"s": "哈哈, 你好, 是的\r\n"}
select split(payload.s, ',', 'trailing_notrim') as r from "t/#"
-- expect: {"r": ["哈哈, 你好", " 是的\r\n"]}

-- case: t_tokens #1
select tokens('', '/') as r from "t/#"
-- expect: {"r": []}

-- case: t_tokens #2
select tokens('/', '/') as r from "t/#"
-- expect: {"r": []}

-- case: t_tokens #3
select tokens('/a/b/c', '/') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_tokens #4
select tokens('/a/b//c/', '/') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_tokens #5
select tokens(' /a/ b /c', ' /') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_tokens #6
-- payload: {"s": "a ,\nb,c\n"}
select tokens(payload.s, ', ') as r from "t/#"
-- expect: {"r": ["a", "\nb", "c\n"]}

-- case: t_tokens #7
-- payload: {"s": "a ,b,c\r\n"}
select tokens(payload.s, ', ') as r from "t/#"
-- expect: {"r": ["a", "b", "c\r\n"]}

-- case: t_tokens #8
-- payload: {"s": "a,b, c\n"}
select tokens(payload.s, ', ', 'nocrlf') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_tokens #9
-- payload: {"s": "a,b,c\r\n"}
select tokens(payload.s, ',', 'nocrlf') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_tokens #10
-- payload: {"s": "a,b\r\n,c\n"}
select tokens(payload.s, ',', 'nocrlf') as r from "t/#"
-- expect: {"r": ["a", "b", "c"]}

-- case: t_tokens #11
-- payload: {"s": "\r\n"}
select tokens(payload.s, ',', 'nocrlf') as r from "t/#"
-- expect: {"r": []}

-- case: t_tokens #12
-- payload: {"s": "哈哈, 你好, 是的\r\n"}
select tokens(payload.s, ', ', 'nocrlf') as r from "t/#"
-- expect: {"r": ["哈哈", "你好", "是的"]}

-- case: t_concat #1
select concat('a', 'b') as r from "t/#"
-- expect: {"r": "ab"}

-- case: t_concat #2
select 'a' + 'b' as r from "t/#"
-- expect: {"r": "ab"}

-- case: t_concat #3
select concat('哈哈', '你好') as r from "t/#"
-- expect: {"r": "哈哈你好"}

-- case: t_concat #4
select concat(concat('a', 'b'), 'c') as r from "t/#"
-- expect: {"r": "abc"}

-- case: t_concat #5
select concat('', 'a') as r from "t/#"
-- expect: {"r": "a"}

-- case: t_concat #6
select concat('a', '') as r from "t/#"
-- expect: {"r": "a"}

-- case: t_concat #7
select concat('', '') as r from "t/#"
-- expect: {"r": ""}

-- case: t_sprintf #1
select sprintf('Hello ~ts!', 'Shawn') as r from "t/#"
-- expect: {"r": "Hello Shawn!"}

-- case: t_sprintf #2
select sprintf('Name: ~ts, Count: ~p', 'ABC', 2) as r from "t/#"
-- expect: {"r": "Name: ABC, Count: 2"}

-- case: t_pad #1
select pad('abc', 5) as r from "t/#"
-- expect: {"r": "abc  "}

-- case: t_pad #2
select pad('abc', 0) as r from "t/#"
-- expect: {"r": "abc"}

-- case: t_pad #3
select pad('abc', 5, 'trailing') as r from "t/#"
-- expect: {"r": "abc  "}

-- case: t_pad #4
select pad('abc', 0, 'trailing') as r from "t/#"
-- expect: {"r": "abc"}

-- case: t_pad #5
select pad('abc', 5, 'both') as r from "t/#"
-- expect: {"r": " abc "}

-- case: t_pad #6
select pad('abc', 0, 'both') as r from "t/#"
-- expect: {"r": "abc"}

-- case: t_pad #7
select pad('abc', 5, 'leading') as r from "t/#"
-- expect: {"r": "  abc"}

-- case: t_pad #8
select pad('abc', 0, 'leading') as r from "t/#"
-- expect: {"r": "abc"}

-- case: t_pad_char #1
select pad('abc', 5, 'trailing', 'e') as r from "t/#"
-- expect: {"r": "abcee"}

-- case: t_pad_char #2
select pad('abc', 5, 'trailing', 'ex') as r from "t/#"
-- expect: {"r": "abcexex"}

-- case: t_pad_char #3
select pad('abc', 5, 'both', 'e') as r from "t/#"
-- expect: {"r": "eabce"}

-- case: t_pad_char #4
select pad('abc', 5, 'both', 'ex') as r from "t/#"
-- expect: {"r": "exabcex"}

-- case: t_pad_char #5
select pad('abc', 5, 'leading', 'e') as r from "t/#"
-- expect: {"r": "eeabc"}

-- case: t_pad_char #6
select pad('abc', 5, 'leading', 'ex') as r from "t/#"
-- expect: {"r": "exexabc"}

-- case: t_replace #1
select replace('ab c  ', ' ', '-') as r from "t/#"
-- expect: {"r": "ab-c--"}

-- case: t_replace #2
select replace('ab c  ', ' ', '::') as r from "t/#"
-- expect: {"r": "ab::c::::"}

-- case: t_replace #3
select replace('ab c  ', ' ', '-', 'all') as r from "t/#"
-- expect: {"r": "ab-c--"}

-- case: t_replace #4
select replace('ab c  ', ' ', '-', 'leading') as r from "t/#"
-- expect: {"r": "ab-c  "}

-- case: t_replace #5
select replace('ab c  ', ' ', '-', 'trailing') as r from "t/#"
-- expect: {"r": "ab c -"}

-- case: t_ascii #1
select ascii('a') as r from "t/#"
-- expect: {"r": 97}

-- case: t_ascii #2
select ascii('ab') as r from "t/#"
-- expect: {"r": 97}

-- case: t_find #1
select find('acbcd', 'c') as r from "t/#"
-- expect: {"r": "cbcd"}

-- case: t_find #2
select find('acbcd', 'c', 'leading') as r from "t/#"
-- expect: {"r": "cbcd"}

-- case: t_find #3
select find('acbcd', 'e') as r from "t/#"
-- expect: {"r": ""}

-- case: t_find #4
select find('', 'c') as r from "t/#"
-- expect: {"r": ""}

-- case: t_find #5
select find('', '') as r from "t/#"
-- expect: {"r": ""}

-- case: t_find_trailing #1
select find('acbcd', 'c', 'trailing') as r from "t/#"
-- expect: {"r": "cd"}

-- case: t_find_trailing #2
select find('acbcd', 'e', 'trailing') as r from "t/#"
-- expect: {"r": ""}

-- case: t_find_trailing #3
select find('', 'c', 'trailing') as r from "t/#"
-- expect: {"r": ""}

-- case: t_find_trailing #4
select find('', '', 'trailing') as r from "t/#"
-- expect: {"r": ""}

-- case: t_regex_match #1
select regex_match('acbcd', 'c') as r from "t/#"
-- expect: {"r": true}

-- case: t_regex_match #2
select regex_match('acbcd', '(ac)+') as r from "t/#"
-- expect: {"r": true}

-- case: t_regex_match #3
select regex_match('bcd', '(ac)+') as r from "t/#"
-- expect: {"r": false}

-- case: t_regex_match #4
select regex_match('', '.*') as r from "t/#"
-- expect: {"r": true}

-- case: t_regex_match #5
select regex_match('', '[a-z]+') as r from "t/#"
-- expect: {"r": false}

-- case: t_regex_match #6
select regex_match('exebd', '^[a-z]+$') as r from "t/#"
-- expect: {"r": true}

-- case: t_regex_match #7
select regex_match('e2xebd', '^[a-z]+$') as r from "t/#"
-- expect: {"r": false}

-- case: t_regex_replace #1
select regex_replace('', 'c.*', 'e') as r from "t/#"
-- expect: {"r": ""}

-- case: t_regex_replace #2
select regex_replace('accbcd', 'c+', 'e') as r from "t/#"
-- expect: {"r": "aebed"}

-- case: t_regex_replace #3
select regex_replace('accbcd', 'c+', '[&]') as r from "t/#"
-- expect: {"r": "a[cc]b[c]d"}

-- case: t_jq #1
select jq('.', json_decode('{"b": 2}')) as r from "t/#"
-- expect: {"r": [{"b": 2}]}

-- case: t_jq #2
select jq('.+1', json_decode('5')) as r from "t/#"
-- expect: {"r": [6]}

-- case: t_jq #3
select jq('.', '{"b": 2}') as r from "t/#"
-- expect: {"r": [{"b": 2}]}

-- case: t_nth #1
select nth(2, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": 2}

-- case: t_nth #2
select nth(4, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": 4}

-- case: t_length #1
select length([1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": 4}

-- case: t_length #2
select length([]) as r from "t/#"
-- expect: {"r": 0}

-- case: t_slice #1
select sublist(4, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": [1, 2, 3, 4]}

-- case: t_slice #2
select sublist(2, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": [1, 2]}

-- case: t_slice #3
select sublist(4, 1, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": [4]}

-- case: t_slice #4
select sublist(4, 2, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": [4]}

-- case: t_slice #5
select sublist(5, 2, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": []}

-- case: t_slice #6
select sublist(2, 2, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": [2, 3]}

-- case: t_slice #7
select sublist(1, 1, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": [1]}

-- case: t_first_last #1
select first([1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": 1}

-- case: t_first_last #2
select last([1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": 4}

-- case: t_contains #1
select contains(1, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": true}

-- case: t_contains #2
select contains(3, [1, 2, 3, 4]) as r from "t/#"
-- expect: {"r": true}

-- case: t_contains #3
select contains('a', ['', 'ab', 3, 'a']) as r from "t/#"
-- expect: {"r": true}

-- case: t_contains #4
select contains(json_decode('{"a":"b"}'), json_decode('[{"a":1},{"a":"b"}]')) as r from "t/#"
-- expect: {"r": true}

-- case: t_contains #5
select contains(json_decode('{"a":"b"}'), json_decode('[{"a":1}]')) as r from "t/#"
-- expect: {"r": false}

-- case: t_contains #6
select contains(3, [1, 2]) as r from "t/#"
-- expect: {"r": false}

-- case: t_contains #7
select contains('c', ['', 'ab', 3, 'a']) as r from "t/#"
-- expect: {"r": false}

-- case: t_map_get #1
select map_get('a', json_decode('{"a":1}')) as r from "t/#"
-- expect: {"r": 1}

-- case: t_map_get #2
select is_null(map_get('a', json_decode('{}'))) as r from "t/#"
-- expect: {"r": true}

-- case: t_map_get #3
select map_get('a.b', json_decode('{"a":{"b":1}}')) as r from "t/#"
-- expect: {"r": 1}

-- case: t_map_get #4
select is_null(map_get('a.c', json_decode('{"a":{"b":1}}'))) as r from "t/#"
-- expect: {"r": true}

-- case: t_map_put #1
select map_put('a', 1, json_decode('{}')) as r from "t/#"
-- expect: {"r": {"a": 1}}

-- case: t_map_put #2
select map_put('a', 2, json_decode('{"a":1}')) as r from "t/#"
-- expect: {"r": {"a": 2}}

-- case: t_map_put #3
select map_put('a.b', 1, json_decode('{}')) as r from "t/#"
-- expect: {"r": {"a": {"b": 1}}}

-- case: t_map_put #4
select map_put('a.c', 1, json_decode('{"a":{"b":1}}')) as r from "t/#"
-- expect: {"r": {"a": {"b": 1, "c": 1}}}

-- case: t_mget_mput #1
select mget('a', json_decode('{"a":1}')) as r from "t/#"
-- expect: {"r": 1}

-- case: t_mget_mput #2
select is_null(mget('a', json_decode('{}'))) as r from "t/#"
-- expect: {"r": true}

-- case: t_mget_mput #3
select mput('a', 1, json_decode('{}')) as r from "t/#"
-- expect: {"r": {"a": 1}}

-- case: t_mget_mput #4
select mput('a', 2, json_decode('{"a":1}')) as r from "t/#"
-- expect: {"r": {"a": 2}}

-- case: t_bitsize #1
select bitsize('a') as r from "t/#"
-- expect: {"r": 8}

-- case: t_subbits #1
select subbits(hexstr2bin('FF'), 1) as r from "t/#"
-- expect: {"r": 1}

-- case: t_subbits2 #1
select subbits(hexstr2bin('FF'), 1, 1) as r from "t/#"
-- expect: {"r": 1}

-- case: t_subbits #2
select subbits(hexstr2bin('FF'), 2) as r from "t/#"
-- expect: {"r": 3}

-- case: t_subbits2 #2
select subbits(hexstr2bin('FF'), 1, 2) as r from "t/#"
-- expect: {"r": 3}

-- case: t_subbits #3
select subbits(hexstr2bin('FF'), 3) as r from "t/#"
-- expect: {"r": 7}

-- case: t_subbits2 #3
select subbits(hexstr2bin('FF'), 1, 3) as r from "t/#"
-- expect: {"r": 7}

-- case: t_subbits #4
select subbits(hexstr2bin('FF'), 4) as r from "t/#"
-- expect: {"r": 15}

-- case: t_subbits2 #4
select subbits(hexstr2bin('FF'), 1, 4) as r from "t/#"
-- expect: {"r": 15}

-- case: t_subbits #5
select subbits(hexstr2bin('FF'), 5) as r from "t/#"
-- expect: {"r": 31}

-- case: t_subbits2 #5
select subbits(hexstr2bin('FF'), 1, 5) as r from "t/#"
-- expect: {"r": 31}

-- case: t_subbits #6
select subbits(hexstr2bin('FF'), 6) as r from "t/#"
-- expect: {"r": 63}

-- case: t_subbits2 #6
select subbits(hexstr2bin('FF'), 1, 6) as r from "t/#"
-- expect: {"r": 63}

-- case: t_subbits #7
select subbits(hexstr2bin('FF'), 7) as r from "t/#"
-- expect: {"r": 127}

-- case: t_subbits2 #7
select subbits(hexstr2bin('FF'), 1, 7) as r from "t/#"
-- expect: {"r": 127}

-- case: t_subbits #8
select subbits(hexstr2bin('FF'), 8) as r from "t/#"
-- expect: {"r": 255}

-- case: t_subbits2 #8
select subbits(hexstr2bin('FF'), 1, 8) as r from "t/#"
-- expect: {"r": 255}

-- case: t_subbits2_1 #1
select subbits(hexstr2bin('FF'), 2, 1) as r from "t/#"
-- expect: {"r": 1}

-- case: t_subbits2_1 #2
select subbits(hexstr2bin('FF'), 2, 2) as r from "t/#"
-- expect: {"r": 3}

-- case: t_subbits2_1 #3
select subbits(hexstr2bin('FF'), 2, 3) as r from "t/#"
-- expect: {"r": 7}

-- case: t_subbits2_1 #4
select subbits(hexstr2bin('FF'), 2, 4) as r from "t/#"
-- expect: {"r": 15}

-- case: t_subbits2_1 #5
select subbits(hexstr2bin('FF'), 2, 5) as r from "t/#"
-- expect: {"r": 31}

-- case: t_subbits2_1 #6
select subbits(hexstr2bin('FF'), 2, 6) as r from "t/#"
-- expect: {"r": 63}

-- case: t_subbits2_1 #7
select subbits(hexstr2bin('FF'), 2, 7) as r from "t/#"
-- expect: {"r": 127}

-- case: t_subbits2_1 #8
select subbits(hexstr2bin('FF'), 2, 8) as r from "t/#"
-- expect: {"r": 127}

-- case: t_subbits2_integer #1
select subbits(hexstr2bin('000001C8'), 1, 32, 'integer', 'signed', 'big') as r from "t/#"
-- expect: {"r": 456}

-- case: t_subbits2_integer #2
select subbits(hexstr2bin('FFFFFE38'), 1, 32, 'integer', 'signed', 'big') as r from "t/#"
-- expect: {"r": -456}
