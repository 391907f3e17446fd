-- CASE and FOREACH / DO / INCASE (emqx-5.md 2.8, examples 15-23)

-- case: searched case, lower bound (ex. 22)
-- payload: {"x": -1}
select case when payload.x < 0 then 0 when payload.x > 7 then 7 else payload.x end as y from "t/#"
-- expect: {"y": 0}

-- case: searched case, upper bound (ex. 22)
-- payload: {"x": 8}
select case when payload.x < 0 then 0 when payload.x > 7 then 7 else payload.x end as y from "t/#"
-- expect: {"y": 7}

-- case: searched case, else (ex. 22)
-- payload: {"x": 1}
select case when payload.x < 0 then 0 when payload.x > 7 then 7 else payload.x end as y from "t/#"
-- expect: {"y": 1}

-- case: simple case (ex. 23)
-- payload: {"x": 2}
select case payload.x when 1 then 2 when 2 then 3 else 4 end as y from "t/#"
-- expect: {"y": 3}

-- case: simple case without else and no match (ex. 23)
-- payload: {"x": 9}
select case payload.x when 1 then 2 when 2 then 3 end as y from "t/#"
-- expect: {"y": "undefined"}

-- case: foreach with alias carries the columns (ex. 15)
-- payload: {"sensors": [1, 2]}
foreach payload.sensors as s from "t/#"
-- expect: rows-subset: [{"s": 1, "clientid": "c_emqx"}, {"s": 2, "clientid": "c_emqx"}]

-- case: foreach default element name (ex. 15)
-- payload: {"sensors": [1, 2]}
foreach payload.sensors from "t/#"
-- expect: rows-subset: [{"item": 1}, {"item": 2}]

-- case: foreach do (ex. 16)
-- payload: {"sensors": [{"cmd":"1"}, {"cmd":"2"}]}
foreach payload.sensors as s do s.cmd as msg_type from "t/#"
-- expect: [{"msg_type": "1"}, {"msg_type": "2"}]

-- case: foreach do item (ex. 16)
-- payload: {"sensors": [1, 2]}
foreach payload.sensors do item as item from "t/#"
-- expect: [{"item": 1}, {"item": 2}]

-- case: foreach incase (ex. 17)
-- payload: {"sensors": [{"cmd":1}, {"cmd":2}, {"cmd":3}]}
foreach payload.sensors as s incase s.cmd != 1 from "t/#"
-- expect: rows-subset: [{"s": {"cmd": 2}}, {"s": {"cmd": 3}}]

-- case: foreach do and incase (ex. 18)
-- payload: {"sensors": [{"cmd":"1","name":"n1"}, {"cmd":"2"}, {"name":"n3"}]}
foreach payload.sensors as s do s.cmd as msg_type, s.name as name incase is_not_null(s.cmd) from "t/#"
-- expect: [{"msg_type": "1", "name": "n1"}, {"msg_type": "2", "name": "undefined"}]

-- case: foreach incase filters everything (ex. 18)
-- payload: {"sensors": [1, 2]}
foreach payload.sensors as s do s.cmd as msg_type, s.name as name incase is_not_null(s.cmd) from "t/#"
-- expect: []

-- case: foreach over a number (ex. 19)
-- payload: {"sensors": 1}
foreach payload.sensors as s do s.cmd as msg_type, s.name as name from "t/#"
-- expect: []

-- case: foreach over an empty list (ex. 19)
-- payload: {"sensors": []}
foreach payload.sensors as s do s.cmd as msg_type, s.name as name from "t/#"
-- expect: []

-- case: foreach bindings and where (ex. 20)
-- payload: {"sensors": {"page": 2, "collection": {"info":[{"name":"cmd1", "cmd":"1"}, {"cmd":"2"}]} } }
foreach json_decode(payload) as p, p.sensors as s, s.collection as c, c.info as info do info.cmd as msg_type, info.name as name incase is_not_null(info.cmd) from "t/#" where s.page = '2'
-- expect: [{"name": "cmd1", "msg_type": "1"}, {"msg_type": "2", "name": "undefined"}]

-- case: foreach where false (ex. 20)
-- payload: {"sensors": {"page": 2, "collection": {"info":[{"name":"cmd1", "cmd":"1"}, {"cmd":"2"}]} } }
foreach json_decode(payload) as p, p.sensors as s, s.collection as c, c.info as info do info.cmd as msg_type, info.name as name incase is_not_null(info.cmd) from "t/#" where s.page = '3'
-- expect: nomatch

-- case: foreach over a decoded array (ex. 21)
-- payload: [{"ts":1451649600512,"values":{"a":1}}]
foreach json_decode(payload) as p do p.ts as ts from "t/#"
-- expect: [{"ts": 1451649600512}]

-- case: foreach over the raw payload iterates nothing (ex. 21)
-- payload: [{"ts":1451649600512,"values":{"a":1}}]
foreach payload as p do p.ts as ts from "t/#"
-- expect: []

-- case: foreach over invalid JSON is an error (ex. 36)
-- payload: {"x":[0,1,2,3,}
foreach payload.x as x from "t/#"
-- expect: error

-- case: foreach doc example with clientid (ex. 37)
-- payload: {"date":"2020-04-24","sensors":[{"name":"a","idx":0},{"name":"b","idx":1},{"name":"c","idx":2}]}
FOREACH payload.sensors DO clientid, item.name as name, item.idx as idx INCASE item.idx >= 1 FROM "t/#"
-- expect: [{"clientid": "c_emqx", "name": "b", "idx": 1}, {"clientid": "c_emqx", "name": "c", "idx": 2}]
