-- JOIN with reference tables: each message looks its row up by key.

-- case: an inner join adds the row and drops messages without one
-- table devices: [{"id": "c1", "site": "north", "max": 30}, {"id": "c2", "site": "south", "max": 40}]
-- message: {"clientid": "c1", "payload": "{\"temp\": 35}"}
-- message: {"clientid": "c2", "payload": "{\"temp\": 35}"}
-- message: {"clientid": "c9", "payload": "{\"temp\": 99}"}
SELECT clientid, d.site AS site, payload.temp AS temp FROM "t/#" JOIN devices AS d ON d.id = clientid WHERE payload.temp > d.max
-- expect: [{"clientid": "c1", "site": "north", "temp": 35}]

-- case: a left join keeps messages without a row, with undefined columns
-- table devices: [{"id": "c1", "site": "north"}]
-- message: {"clientid": "c1"}
-- message: {"clientid": "c2"}
SELECT clientid, d.site AS site FROM "t/#" LEFT JOIN devices d ON clientid = d.id
-- expect: [{"clientid": "c1", "site": "north"}, {"clientid": "c2", "site": "undefined"}]

-- case: the key can come from the payload
-- table sensors: [{"sid": "s-7", "room": "lab"}]
-- message: {"payload": "{\"sensor\": \"s-7\", \"v\": 1}"}
SELECT payload.v AS v, s.room AS room FROM "t/#" JOIN sensors AS s ON s.sid = payload.sensor
-- expect: [{"v": 1, "room": "lab"}]

-- case: a join feeds a window
-- table devices: [{"id": "c1", "site": "north"}, {"id": "c2", "site": "north"}, {"id": "c3", "site": "south"}]
-- message: {"timestamp": 1000, "clientid": "c1"}
-- message: {"timestamp": 2000, "clientid": "c2"}
-- message: {"timestamp": 3000, "clientid": "c3"}
-- close: 10000
SELECT d.site AS site, count(*) AS n FROM "t/#" JOIN devices AS d ON d.id = clientid GROUP BY d.site, TUMBLINGWINDOW(ss, 10)
-- expect: [{"site": "north", "n": 2}, {"site": "south", "n": 1}]
