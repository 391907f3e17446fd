-- Event rules on a series of events: only the events the FROM names reach the rule.

-- case: connected and disconnected events, each to its own FROM
-- event: client_connected {"clientid": "c1"}
-- event: client_disconnected {"clientid": "c1", "reason": "keepalive_timeout"}
-- event: client_connected {"clientid": "c2"}
SELECT clientid, event FROM "$events/client_connected"
-- expect: [{"clientid": "c1", "event": "client.connected"}, {"clientid": "c2", "event": "client.connected"}]

-- case: WHERE on an event's columns
-- event: client_disconnected {"clientid": "c1", "reason": "normal"}
-- event: client_disconnected {"clientid": "c2", "reason": "keepalive_timeout"}
SELECT clientid, reason FROM "$events/client_disconnected" WHERE reason <> 'normal'
-- expect: [{"clientid": "c2", "reason": "keepalive_timeout"}]

-- case: a wildcard over events, and messages beside them
-- event: session_subscribed {"clientid": "c1", "topic": "a/b"}
-- message: {"topic": "t/1"}
-- event: session_unsubscribed {"clientid": "c1", "topic": "a/b"}
SELECT event, clientid FROM "$events/+", "t/#"
-- expect: [{"event": "session.subscribed", "clientid": "c1"}, {"event": "message.publish", "clientid": "c_emqx"}, {"event": "session.unsubscribed", "clientid": "c1"}]

-- case: alarms through $events/sys/+
-- event: alarm_activated {"name": "sink_disconnected/pg"}
-- event: client_connected {"clientid": "c1"}
-- event: alarm_deactivated {"name": "sink_disconnected/pg"}
SELECT name, event FROM "$events/sys/+"
-- expect: [{"name": "sink_disconnected/pg", "event": "alarm.activated"}, {"name": "sink_disconnected/pg", "event": "alarm.deactivated"}]

-- case: events into a window: connections per client id
-- event: client_connected {"clientid": "c1", "timestamp": 1000}
-- event: client_connected {"clientid": "c1", "timestamp": 2000}
-- event: client_connected {"clientid": "c2", "timestamp": 3000}
-- close: 10000
SELECT clientid, count(*) AS connects FROM "$events/client_connected" GROUP BY clientid, TUMBLINGWINDOW(ss, 10)
-- expect: [{"clientid": "c1", "connects": 2}, {"clientid": "c2", "connects": 1}]

-- case: client_check_authn_complete, once per accepted CONNECT (emqx-5.md, the event table),
-- anonymous until Weir has authentication
-- event: client_check_authn_complete {"clientid": "c1"}
-- event: client_connack {"clientid": "c1"}
-- event: client_connected {"clientid": "c1"}
SELECT clientid, is_anonymous, is_superuser, reason_code FROM "$events/client_check_authn_complete"
-- expect: [{"clientid": "c1", "is_anonymous": true, "is_superuser": false, "reason_code": "success"}]
