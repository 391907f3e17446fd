-- Paths, indexes, ranges and AS targets (emqx-5.md 2.8, examples 9, 24-30, 34, 36)

-- case: AS into a selected payload decodes it and keeps its siblings (ex. 9)
-- payload: {"f1":"f1","f2":"f2","data":[{"name":"n1","idx":1},{"name":"n2","idx":2}]}
select payload, 'STEVE' as payload.data[1].name from "t/#"
-- expect: {"payload": {"f1": "f1", "f2": "f2", "data": [{"name": "STEVE", "idx": 1}, {"name": "n2", "idx": 2}]}}

-- case: index into a decoded array (ex. 24)
-- payload: [{"x": 1}]
select json_decode(payload) as p, p[1] as a from "t/#"
-- expect: {"p": [{"x": 1}], "a": {"x": 1}}

-- case: index into a map is undefined (ex. 24)
-- payload: {"x": 1}
select json_decode(payload) as p, p[1] as a from "t/#"
-- expect: {"p": {"x": 1}, "a": "undefined"}

-- case: 1-based index then key (ex. 25)
-- payload: {"x":[1,{"y":3},4]}
select payload.x[2].y as b from "t/#"
-- expect: {"b": 3}

-- case: negative index (ex. 25)
-- payload: {"x":[1,{"y":3},4]}
select payload.x[-2].y as b from "t/#"
-- expect: {"b": 3}

-- case: append and prepend (ex. 26)
-- payload: {"x": 0}
select payload.x as b, 1 as c[-0], 2 as c[-0], b as c[0] from "t/#"
-- expect: {"b": 0, "c": [0, 1, 2]}

-- case: alias as nested path (ex. 28)
-- payload: {"x": [1,{"y": [1,2]},3]}
select payload.x[2].y as b.c from "t/#"
-- expect: {"b": {"c": [1, 2]}}

-- case: index put on nothing makes a list (ex. 28)
select 0 as payload.x[2].y from "t/#"
-- expect: {"payload": {"x": [{"y": 0}]}}

-- case: list literal with expressions (ex. 29)
select [21 + 21, abs(-abs(-2)), [1 + 1], 4] as l from "t/#"
-- expect: {"l": [42, 2, [2], 4]}

-- case: range read (ex. 30)
-- payload: {"a":[0,1,2,3,4,5]}
select payload.a[1..4] as c from "t/#"
-- expect: {"c": [0, 1, 2, 3]}

-- case: range on a missing value is an error (ex. 30)
-- payload: {"x":[0,1,2,3,4,5]}
select payload.a[1..4] as c from "t/#"
-- expect: error

-- case: range literal then appends (ex. 30)
select [1..4] as c, 5 as c[-0], 6 as c[-0], 0 as c[0] from "t/#"
-- expect: {"c": [0, 1, 2, 3, 4, 5, 6]}

-- case: map_get with default into a selected payload (ex. 34)
-- payload: {"msgId":1002,"params":{"convertTemp":20,"engineSpeed":42,"hydOilTem":30}}
SELECT payload, map_get('engineWorkTime', payload.params, -1) as payload.params.engineWorkTime, map_get('hydOilTem', payload.params, -1) as payload.params.hydOilTem FROM "t/#"
-- expect: {"payload": {"msgId": 1002, "params": {"convertTemp": 20, "engineSpeed": 42, "engineWorkTime": -1, "hydOilTem": 30}}}

-- case: invalid JSON payload is an error (ex. 36)
-- payload: {"x":[0,1,2,3,}
select payload.a[1..4] as c from "t/#"
-- expect: error

-- case: quoted key segment
-- context: {"pub_props": {"User-Property": {"foo": "bar"}}}
SELECT pub_props.'User-Property'.foo as foo FROM "t/#"
-- expect: {"foo": "bar"}
