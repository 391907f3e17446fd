//! weir-rules: EMQX rule SQL compiled onto Apache DataFusion and run on micro-batches of messages.
//! It turns messages into rows and knows nothing of MQTT sessions. The engine arrives with issue 3.
