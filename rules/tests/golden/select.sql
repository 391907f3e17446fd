-- SELECT, aliases, WHERE (emqx-5.md 2.8, examples 1-5, 8, 31-33, 35)

-- case: star keeps the payload raw (ex. 1)
-- payload: {"cmd": {"info":"tt"}}
select * from "t/#" where payload.cmd.info = 'tt'
-- expect: subset: {"payload": "{\"cmd\": {\"info\":\"tt\"}}", "clientid": "c_emqx", "topic": "t/a"}

-- case: alias visible to WHERE (ex. 2)
-- payload: {"cmd": {"info":"tt"}}
select payload.cmd as cmd from "t/#" where cmd.info = 'tt'
-- expect: {"cmd": {"info": "tt"}}

-- case: alias visible to later fields (ex. 3)
-- payload: {"cmd": {"info":"tt"}}
select payload.cmd as cmd, cmd.info as info from "t/#" where cmd.info = 'tt' and info = 'tt'
-- expect: {"cmd": {"info": "tt"}, "info": "tt"}

-- case: nested alias read back in WHERE (ex. 4)
-- payload: {"cmd": {"info":"tt"}}
select payload.cmd as cmd, cmd.info as meta.info from "t/#" where cmd.info = 'tt' and meta.info = 'tt'
-- expect: {"cmd": {"info": "tt"}, "meta": {"info": "tt"}}

-- case: where false is no match
-- payload: {"cmd": {"info":"xx"}}
select payload.cmd as cmd from "t/#" where cmd.info = 'tt'
-- expect: nomatch

-- case: unary minus and plus (ex. 5)
select 1-1 as a, -1 + 1 as b, 1 + 1 as c, +1 as d from "t/#"
-- expect: {"a": 0, "b": 0, "c": 2, "d": 1}

-- case: div and mod, as operators and functions (ex. 8)
select 2 mod 2 as mod1, mod(3, 2) as mod2, 4 div 2 as div1, div(7, 2) as div2 from "t/#"
-- expect: {"mod1": 0, "mod2": 1, "div1": 2, "div2": 3}

-- case: booleans into paths and lists (ex. 31)
select true as a, false as b, false as x.y, true as c[-0] from "t/#"
-- expect: {"a": true, "b": false, "x": {"y": false}, "c": [true]}

-- case: undefined equals undefined (ex. 32)
select a, b from "t/#" where a = b
-- expect: {"a": "undefined", "b": "undefined"}

-- case: undefined is not greater than undefined (ex. 32)
select a, b from "t/#" where a > b
-- expect: nomatch

-- case: comparing undefined gives false (ex. 32)
select a < b as c from "t/#"
-- expect: {"c": false}

-- case: new maps into paths and lists (ex. 33)
select map_new() as a, map_new() as x.y, map_new() as c[-0] from "t/#"
-- expect: {"a": {}, "x": {"y": {}}, "c": [{}]}

-- case: path into an alias holding raw JSON (ex. 35)
-- payload: {"a": {"b": 0}}
select payload as p, p.a.b as c from "t/#"
-- expect: {"p": "{\"a\": {\"b\": 0}}", "c": 0}

-- case: unaliased column keeps its name, unaliased path its shape
-- payload: {"x": [1, 2, 3]}
select clientid, payload.x[2] from "t/#"
-- expect: {"clientid": "c_emqx", "payload": {"x": [2]}}

-- case: double quotes name a column, single quotes make a string (ex. 27)
-- payload: {"a": 11}
select [payload.a, "topic", 'c'] as c, 1 as c[-0], 2 as c[-0], 0 as c[0] from "t/#"
-- expect: {"c": [0, 11, "t/a", "c", 1, 2]}

-- case: rule tester example (emqx-5.md 2.6)
select payload.msg as msg, clientid, username, payload, topic, qos from "t/#"
-- expect: {"username": "u_emqx", "topic": "t/a", "qos": 1, "payload": "{\"msg\": \"hello\"}", "msg": "hello", "clientid": "c_emqx"}

-- case: json_decode alias in WHERE (ex. 12)
-- payload: {"x":1,"y":2}
SELECT json_decode(payload) as p, payload FROM "t/#" WHERE p.x = 1 and p.y = 2
-- expect: subset: {"payload": "{\"x\":1,\"y\":2}"}

-- case: json_decode alias in WHERE, no match (ex. 12)
-- payload: {"x":1,"y":1}
SELECT json_decode(payload) as p, payload FROM "t/#" WHERE p.x = 1 and p.y = 2
-- expect: nomatch

-- case: numeric text compares as a number
-- payload: {"temp": "31"}
select payload.temp as t from "t/#" where payload.temp > 30
-- expect: {"t": "31"}

-- case: non-numeric text against a number is an error
-- payload: {"msg": "hello"}
select 1 as x from "t/#" where payload.msg > 1
-- expect: error

-- case: topic match operator and IN
-- context: {"topic": "sensors/room1/temp", "qos": 2}
select topic from "sensors/#" where topic =~ 'sensors/+/temp' and qos in (1, 2)
-- expect: {"topic": "sensors/room1/temp"}

-- case: context functions
-- context: {"topic": "a/b/c"}
select topic(2) as second, clientid() as c, payload('msg') as m from "#"
-- expect: {"second": "b", "c": "c_emqx", "m": "hello"}

-- case: + concatenates text
select 'id-' + clientid as id, 1 + 2.5 as n from "t/#"
-- expect: {"id": "id-c_emqx", "n": 3.5}

-- case: not is true only for false
-- payload: {"off": false, "on": true, "n": 1}
select not payload.off as a, not payload.on as b, not payload.n as c, not payload.missing as d from "t/#"
-- expect: {"a": true, "b": false, "c": false, "d": false}

-- case: not in and a where on the selected alias
-- payload: {"level": 3}
select payload.level as l from "t/#" where l not in (1, 2) and not (l = 4)
-- expect: {"l": 3}
