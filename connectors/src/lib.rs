//! weir-connectors: the sink contract, the delivery driver with its durable buffer, and one module
//! per destination (Kafka, PostgreSQL, SQLite, HTTP, MQTT). The sinks arrive with issue 4.
