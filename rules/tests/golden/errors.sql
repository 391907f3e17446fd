-- How each kind of failure reads, as `weir rule test` and `POST /api/v5/rule_test` show it after
-- "the rule failed on this message: ". The status and code are EMQX's (400 BAD_REQUEST); the words
-- are Weir's, where EMQX prints its Erlang error term.

-- case: a path into a payload that is not JSON
-- payload: not json
select payload.a as a from "t/#"
-- expect: error: the payload is not valid JSON

-- case: a range on something that is not a list (EMQX: range_get, non_list_data)
-- payload: {"x": [0, 1, 2]}
select payload.a[1..2] as c from "t/#"
-- expect: error: a range [a..b] was applied to a value that is not a list

-- case: a function that does not exist
select no_such_function(1) as r from "t/#"
-- expect: error: function no_such_function() is not supported

-- case: a function that is not supported on purpose
select term_encode(1) as r from "t/#"
-- expect: error: function term_encode() is not supported

-- case: the wrong number of arguments
select lower('a', 'b') as r from "t/#"
-- expect: error: bad argument: lower() takes 1 argument, got 2

-- case: an argument of the wrong type
select lower(1) as r from "t/#"
-- expect: error: bad argument: lower() cannot take an integer

-- case: text that is not a number where one is needed
select int('a') as r from "t/#"
-- expect: error: bad argument: int() cannot take a string

-- case: integer division by zero
select div(1, 0) as r from "t/#"
-- expect: error: division by zero

-- case: an integer past 64 bits
select 9223372036854775807 + 1 as r from "t/#"
-- expect: error: integer overflow

-- case: a topic level that is not a number
select topic('x') as r from "t/#"
-- expect: error: bad argument: topic(N): the level N must be an integer, not "x"

-- case: undefined is a value, not an error: it prints as "undefined"
select payload.nope as a, null() as b from "t/#"
-- expect: {"a": "undefined", "b": "undefined"}

-- case: WHERE on undefined is false, not an error (EMQX's compare/3)
select 1 as one from "t/#" where payload.nope > 1
-- expect: nomatch
