-- Readings above 30 degrees from any sensor. A bare SELECT has no destination yet: it counts
-- (GET /api/v5/rules/hot_readings/metrics) and can be tried with `weir rule test`.
SELECT payload.temp AS temp, clientid, topic
FROM "sensors/#"
WHERE payload.temp > 30
