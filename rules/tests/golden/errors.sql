-- How each kind of failure reads in `POST /api/v5/rule_test` and `weir rule test`: 400
-- BAD_REQUEST with EMQX 5.8's message, `{"<clause>_error": <reason>}`
-- (emqx_rule_engine_api:err_msg/1 encodes the clause's error and the first element of its
-- reason; a function's bad argument keeps its map), and Weir's words as `detail`.

-- case: a payload that is not JSON (emqx_rule_engine_api_SUITE, t_crud_rule_api)
-- payload: {"msg": "hel
select payload.msg from "t/#"
-- expect: error: {"select_and_transform_error":"decode_json_failed"}
-- detail: the payload is not valid JSON (in SELECT)

-- case: text compared with a number (emqx_rule_engine_api_SUITE, t_crud_rule_api)
-- payload: {"msg": "hello"}
select payload.msg > 1 from "t/#"
-- expect: error: {"select_and_transform_error":"badarg"}
-- detail: bad argument: cannot compare a number with 'hello', which is not a number (in SELECT)

-- case: a function's argument of the wrong kind (emqx_rule_engine_SUITE, t_function_clause_errors)
-- payload: {}
select upper(xxxx) from "t/a"
-- expect: error: {"select_and_transform_error":{"arguments":["undefined"],"function_name":"upper","reason":"bad_sql_function_argument"}}
-- detail: bad argument: upper() cannot take undefined (in SELECT)

-- case: the same in WHERE (EMQX: match_conditions_error)
-- payload: {"msg": "hello"}
select 1 as one from "t/#" where payload.msg > 1
-- expect: error: {"match_conditions_error":"badarg"}
-- detail: bad argument: cannot compare a number with 'hello', which is not a number (in WHERE)

-- case: FOREACH on a payload that is not JSON (emqx_rule_engine_SUITE, t_sqlparse_invalid_json)
-- payload: {"x":[0,1,2,3,}
foreach payload.x as e from "t/#"
-- expect: error: {"select_and_collect_error":"decode_json_failed"}
-- detail: the payload is not valid JSON (in FOREACH)

-- case: an error in INCASE, per element (EMQX: match_incase_error)
-- payload: {"xs": ["a", "b"]}
foreach payload.xs as x incase x > 1 from "t/#"
-- expect: error: {"match_incase_error":"badarg"}
-- detail: bad argument: cannot compare a number with 'a', which is not a number (in INCASE)

-- case: an error in DO, per element (EMQX names it doeach_error, and prints its whole Erlang term with a stack)
-- payload: {"xs": [1, 2]}
foreach payload.xs as x do upper(x) as u from "t/#"
-- expect: error: {"doeach_error":{"arguments":[1],"function_name":"upper","reason":"bad_sql_function_argument"}}
-- detail: bad argument: upper() cannot take an integer (in DO)

-- case: a range on something that is not a list (emqx_rule_engine_SUITE, t_sqlparse_array_range_1: range_get, non_list_data)
-- payload: {"x": [0, 1, 2]}
select payload.a[1..2] as c from "t/#"
-- expect: error: {"select_and_transform_error":"range_get"}
-- detail: a range [a..b] was applied to a value that is not a list (in SELECT)

-- case: a function that does not exist (EMQX: sql_function_not_supported)
select no_such_function(1) as r from "t/#"
-- expect: error: {"select_and_transform_error":"sql_function_not_supported"}
-- detail: function no_such_function() is not supported (in SELECT)

-- case: a function that is not supported on purpose
select term_encode(1) as r from "t/#"
-- expect: error: {"select_and_transform_error":"sql_function_not_supported"}
-- detail: function term_encode() is not supported (in SELECT)

-- case: the wrong number of arguments (EMQX has no lower/2: sql_function_not_supported)
select lower('a', 'b') as r from "t/#"
-- expect: error: {"select_and_transform_error":"sql_function_not_supported"}
-- detail: bad argument: lower() takes 1 argument, got 2 (in SELECT)

-- case: an argument of the wrong type
select lower(1) as r from "t/#"
-- expect: error: {"select_and_transform_error":{"arguments":[1],"function_name":"lower","reason":"bad_sql_function_argument"}}
-- detail: bad argument: lower() cannot take an integer (in SELECT)

-- case: arithmetic on text: EMQX's '+' has no clause for it
select 1 - 'a' as r from "t/#"
-- expect: error: {"select_and_transform_error":{"arguments":[1,"a"],"function_name":"-","reason":"bad_sql_function_argument"}}
-- detail: bad argument: - needs numbers, got an integer and a string (in SELECT)

-- case: text that is not a number where one is needed
select int('a') as r from "t/#"
-- expect: error: {"select_and_transform_error":{"arguments":["a"],"function_name":"int","reason":"bad_sql_function_argument"}}
-- detail: bad argument: int() cannot take a string (in SELECT)

-- case: integer division by zero (Erlang: badarith)
select div(1, 0) as r from "t/#"
-- expect: error: {"select_and_transform_error":"badarith"}
-- detail: division by zero (in SELECT)

-- case: an integer past 64 bits (Erlang's integers have no bound; Weir's stop at 64 bits)
select 9223372036854775807 + 1 as r from "t/#"
-- expect: error: {"select_and_transform_error":"badarith"}
-- detail: integer overflow (in SELECT)

-- case: a topic level that is not a number (EMQX's topic/1 guards is_integer)
select topic('x') as r from "t/#"
-- expect: error: {"select_and_transform_error":{"arguments":["x"],"function_name":"topic","reason":"bad_sql_function_argument"}}
-- detail: bad argument: topic(N): the level N must be an integer, not "x" (in SELECT)

-- case: a value that JSON cannot hold (EMQX's JSON encoder raises badarg)
select json_encode(base64_decode('/w==')) as r from "t/#"
-- expect: error: {"select_and_transform_error":"badarg"}
-- detail: the value is not representable as JSON (binary data or a non-finite number) (in SELECT)

-- case: AND on text (Erlang's andalso: badarg)
select 1 as a from "t/#" where 'a' and true
-- expect: error: {"match_conditions_error":"badarg"}
-- detail: bad argument: AND/OR need booleans, got a string (in WHERE)

-- case: a long argument is cut at 256 bytes in the message
-- payload: {"s": "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}
select abs(payload.s) as r from "t/#"
-- expect: error: {"select_and_transform_error":{"arguments":["0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345"],"function_name":"abs","reason":"bad_sql_function_argument"}}

-- case: undefined is a value, not an error: it prints as "undefined"
select payload.nope as a, null() as b from "t/#"
-- expect: {"a": "undefined", "b": "undefined"}

-- case: WHERE on undefined is false, not an error (EMQX's compare/3)
select 1 as one from "t/#" where payload.nope > 1
-- expect: nomatch
