-- Cases taken from EMQX's own test suite, apps/emqx_rule_engine/test/emqx_rule_engine_SUITE.erl
-- (EMQX 5.x), each named after the test it comes from, with the input and the output that
-- test asserts. Where the test matches only part of the output, the case is a subset. The last
-- two cases come from the rule SQL reference instead, as they say.

-- case: t_sqlparse_foreach_9, a decoded payload
-- payload: [{"ts": 1451649600512, "values": {"respiratoryrate": 20, "heartrate": 130, "systolic": 50}}]
foreach json_decode(payload) as p do p.ts as ts from "t/#"
-- expect: [{"ts": 1451649600512}]

-- case: t_sqlparse_foreach_9, the payload as it came ("doesn't work if we don't decode it first")
-- payload: [{"ts": 1451649600512, "values": {"respiratoryrate": 20, "heartrate": 130, "systolic": 50}}]
foreach payload as p do p.ts as ts from "t/#"
-- expect: []

-- case: t_sqlparse_foreach_6
-- payload: [{"id": 5},{"id": 15}]
foreach json_decode(payload) do item.id as zid, timestamp as t from "t/#"
-- expect: rows-subset: [{"zid": 5}, {"zid": 15}]

-- case: t_sqlparse_foreach_1, Sql5: an unaliased path binding is written into the output
-- payload: {"sensors": [1, 2]}
foreach payload.sensors from "t/#"
-- expect: rows-subset: [{"item": 1, "payload": {"sensors": [1, 2]}}, {"item": 2, "payload": {"sensors": [1, 2]}}]

-- case: t_sqlparse_foreach_1, Sql5, only the path is written
-- payload: {"sensors": [1, 2], "other": true}
foreach payload.sensors from "t/#"
-- expect: rows-subset: [{"item": 1, "payload": {"sensors": [1, 2]}}, {"item": 2, "payload": {"sensors": [1, 2]}}]

-- case: t_sqlparse_foreach_5, a collection that is not a list
-- payload: {"sensors": 1}
foreach payload.sensors from "t/#"
-- expect: []

-- case: t_sqlparse_foreach_7, cascaded AS
-- payload: {"sensors": {"page": 2, "collection": {"info":[{"name":"cmd1", "cmd":"1"}, {"cmd":"2"}]} } }
foreach json_decode(payload) as p, p.sensors as s, s.collection as c, c.info as info do info.cmd as msg_type, info.name as name incase is_not_null(info.cmd) from "t/#" where s.page = '2'
-- expect: rows-subset: [{"name": "cmd1", "msg_type": "1"}, {"msg_type": "2"}]

-- case: t_sqlparse_foreach_7, WHERE on a binding
-- payload: {"sensors": {"page": 2, "collection": {"info":[{"name":"cmd1", "cmd":"1"}, {"cmd":"2"}]} } }
foreach json_decode(payload) as p, p.sensors as s, s.collection as c, c.info as info do info.cmd as msg_type, info.name as name incase is_not_null(info.cmd) from "t/#" where s.page = '3'
-- expect: nomatch

-- case: t_sqlparse_array_range_1
-- payload: {"a":[0,1,2,3,4,5]}
select payload.a[1..4] as c from "t/#"
-- expect: {"c": [0, 1, 2, 3]}

-- case: t_sqlparse_array_range_1, from something that is not a list
-- payload: {"x":[0,1,2,3,4,5]}
select payload.a[1..4] as c from "t/#"
-- expect: error

-- case: t_sqlparse_array_range_1, a range built and appended to
select [1..4] as c, 5 as c[-0], 6 as c[-0], 0 as c[0] from "t/#"
-- expect: {"c": [0, 1, 2, 3, 4, 5, 6]}

-- case: t_sqlparse_array_range_2, a column's range without AS
-- context: {"a": [1, 2, 3, 4, 5]}
select a[2..4] from "t/#"
-- expect: {"a": [2, 3, 4]}

-- case: t_sqlparse_array_range_2, a payload path's range without AS
-- payload: {"a":[0,1,2,3,4,5]}
select payload.a[1..4] from "t/#"
-- expect: {"payload": {"a": [0, 1, 2, 3]}}

-- case: bin2hexstr with a prefix, the inverse of hexstr2bin's (shared/reference/emqx-rule-sql.md: "optional prefix arg")
select bin2hexstr('Hi', '0x') as h, hexstr2bin(bin2hexstr('Hi', '0x'), '0x') as back, bin2hexstr('') as empty from "t/#"
-- expect: {"h": "0x4869", "back": "Hi", "empty": ""}

-- case: sprintf's ~ts and ~tp (io_lib:format's Unicode modifier)
select sprintf('~ts|~tp|~p', 'héllo', 'a', 42) as s from "t/#"
-- expect: {"s": "héllo|<<\"a\">>|42"}
