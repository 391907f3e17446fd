-- Windowed aggregation (`GROUP BY ..., TUMBLINGWINDOW(ss, N)` / `HOPPINGWINDOW(ss, N, M)`, over
-- the messages' `timestamp`): rows come when a window closes, one per group.

-- case: a tumbling window counts and averages, and closes at its end
-- message: {"timestamp": 1000, "payload": "{\"temp\": 20}"}
-- message: {"timestamp": 4000, "payload": "{\"temp\": 30}"}
-- message: {"timestamp": 9999, "payload": "{\"temp\": 40}"}
-- close: 9999
-- close: 10000
SELECT count(*) AS n, avg(payload.temp) AS mean, window_start, window_end FROM "t/#" GROUP BY TUMBLINGWINDOW(ss, 10)
-- expect: [{"n": 3, "mean": 30.0, "window_start": 0, "window_end": 10000}]

-- case: a message of the next window closes nothing by itself; the clock does
-- message: {"timestamp": 1000, "payload": "{\"temp\": 20}"}
-- message: {"timestamp": 12000, "payload": "{\"temp\": 50}"}
-- close: 20000
SELECT count(*) AS n, max(payload.temp) AS top, window_start FROM "t/#" GROUP BY TUMBLINGWINDOW(ss, 10)
-- expect: [{"n": 1, "top": 20, "window_start": 0}, {"n": 1, "top": 50, "window_start": 10000}]

-- case: groups give one row each, in the order of their first message
-- message: {"timestamp": 1000, "clientid": "b", "payload": "{\"v\": 1}"}
-- message: {"timestamp": 2000, "clientid": "a", "payload": "{\"v\": 5}"}
-- message: {"timestamp": 3000, "clientid": "b", "payload": "{\"v\": 3}"}
-- close: 10000
SELECT clientid, sum(payload.v) AS total FROM "t/#" GROUP BY clientid, TUMBLINGWINDOW(ss, 10)
-- expect: [{"clientid": "b", "total": 4}, {"clientid": "a", "total": 5}]

-- case: WHERE keeps messages out of the window, HAVING drops groups
-- message: {"timestamp": 1000, "clientid": "a", "payload": "{\"v\": 1}"}
-- message: {"timestamp": 2000, "clientid": "a", "payload": "{\"v\": 100}"}
-- message: {"timestamp": 3000, "clientid": "b", "payload": "{\"v\": 2}"}
-- message: {"timestamp": 4000, "clientid": "b", "payload": "{\"v\": 3}"}
-- close: 10000
SELECT clientid, count(*) AS n FROM "t/#" WHERE payload.v < 50 GROUP BY clientid, TUMBLINGWINDOW(ss, 10) HAVING count(*) > 1
-- expect: [{"clientid": "b", "n": 2}]

-- case: a hopping window keeps a message in every window that covers it
-- message: {"timestamp": 6000, "payload": "{\"v\": 1}"}
-- close: 20000
SELECT count(*) AS n, window_start, window_end FROM "t/#" GROUP BY HOPPINGWINDOW(ss, 10, 5)
-- expect: [{"n": 1, "window_start": 0, "window_end": 10000}, {"n": 1, "window_start": 5000, "window_end": 15000}]

-- case: messages on other topics never reach the window
-- message: {"timestamp": 1000, "topic": "other/x", "payload": "{\"v\": 1}"}
-- message: {"timestamp": 2000, "topic": "t/x", "payload": "{\"v\": 2}"}
-- close: 10000
SELECT count(*) AS n, sum(payload.v) AS total FROM "t/#" GROUP BY TUMBLINGWINDOW(ss, 10)
-- expect: [{"n": 1, "total": 2}]

-- case: an empty window gives no row
-- close: 30000
SELECT count(*) AS n FROM "t/#" GROUP BY TUMBLINGWINDOW(ss, 10)
-- expect: []
