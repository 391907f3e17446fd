//! The input of a batch of published messages, built straight from the messages: EMQX's
//! `message.publish` columns, each an Arrow column, only those some rule reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_types::QoS;

use crate::plan::{nulls, variant, Input};
use crate::value::Value;

/// A published message, from which the columns of EMQX's `message.publish` are read.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    /// The topic it was published to.
    pub topic: &'a str,
    /// Its payload.
    pub payload: &'a [u8],
    /// Its QoS.
    pub qos: QoS,
    /// `None` for messages the broker made itself (retained by the API, for instance).
    pub clientid: Option<&'a str>,
    /// The RETAIN flag it was published with.
    pub retain: bool,
    /// `pub_props` (`User-Property`, `Content-Type`, ...); `None` when the message has none.
    pub properties: Option<&'a Value>,
    /// When the broker received it, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Where `pub_props` is in [`PUBLISH_COLUMNS`], checked when compiling.
const PUB_PROPS: usize = 5;
const _: () = assert!(matches!(PUBLISH_COLUMNS[PUB_PROPS].0.as_bytes(), b"pub_props"));

/// The columns of a publish, in the order an [`Input`] holds them (sorted), with their types.
const PUBLISH_COLUMNS: [(&str, DataType); 10] = [
    ("clientid", DataType::Binary),
    ("event", DataType::Utf8),
    ("flags", DataType::Binary),
    ("node", DataType::Utf8),
    ("payload", DataType::Binary),
    ("pub_props", DataType::Binary),
    ("publish_received_at", DataType::Int64),
    ("qos", DataType::Int64),
    ("timestamp", DataType::Int64),
    ("topic", DataType::Utf8),
];

/// The layout (names and types) of every publish batch's [`Input`].
pub fn publish_layout() -> SchemaRef {
    let fields: Vec<Field> = PUBLISH_COLUMNS.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect();
    Arc::new(Schema::new(fields))
}

/// Builds the [`Input`] of a batch of publishes straight from the messages: no map per message,
/// and only the columns some rule reads (`crate::engine::ActiveRule::publish_reads`); the
/// others are left null. Columns whose type never changes are native Arrow columns (`qos` and
/// the timestamps are integers; `topic`, `event` and `node` are text), which rules compare with
/// Arrow's own kernels; the others are variant columns.
pub struct PublishBatch {
    /// Per column of [`PUBLISH_COLUMNS`], whether to build it.
    wanted: [bool; 10],
    clientid: variant::Builder,
    event: StringBuilder,
    flags: variant::Builder,
    node: StringBuilder,
    payload: variant::Builder,
    pub_props: variant::Builder,
    received_at: Int64Builder,
    qos: Int64Builder,
    timestamp: Int64Builder,
    topic: StringBuilder,
    rows: usize,
    /// What every row shares or picks from.
    node_name: String,
    no_properties: Vec<u8>,
    flag_values: [Vec<u8>; 2],
}

fn encoded(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    variant::write(v, &mut out);
    out
}

impl PublishBatch {
    /// `wanted`: per column of [`publish_layout`], whether some rule reads it (missing: yes).
    pub fn new(node: &str, wanted: &[bool]) -> PublishBatch {
        let flags = |retain| {
            let m =
                BTreeMap::from([("dup".to_string(), Value::Bool(false)), ("retain".to_string(), Value::Bool(retain))]);
            encoded(&Value::Map(m))
        };
        let variant = || variant::Builder::with_capacity(1024);
        let mut all = [true; 10];
        all.iter_mut().zip(wanted).for_each(|(a, w)| *a = *w);
        PublishBatch {
            wanted: all,
            clientid: variant(),
            event: StringBuilder::new(),
            flags: variant(),
            node: StringBuilder::new(),
            payload: variant(),
            pub_props: variant(),
            received_at: Int64Builder::new(),
            qos: Int64Builder::new(),
            timestamp: Int64Builder::new(),
            topic: StringBuilder::new(),
            rows: 0,
            node_name: node.to_string(),
            no_properties: encoded(&Value::Map(BTreeMap::new())),
            flag_values: [flags(false), flags(true)],
        }
    }

    /// Adds one message's row.
    pub fn push(&mut self, p: &Publish) {
        let w = self.wanted;
        if w[0] {
            match p.clientid {
                Some(c) => self.clientid.push_str(c),
                None => self.clientid.push(&Value::Undefined),
            }
        }
        if w[1] {
            self.event.append_value("message.publish");
        }
        if w[2] {
            self.flags.push_encoded(&self.flag_values[usize::from(p.retain)]);
        }
        if w[3] {
            self.node.append_value(&self.node_name);
        }
        if w[4] {
            match std::str::from_utf8(p.payload) {
                Ok(text) => self.payload.push_str(text),
                Err(_) => self.payload.push(&Value::Bin(p.payload.to_vec())),
            }
        }
        if w[5] {
            match p.properties {
                Some(props) => self.pub_props.push(props),
                None => self.pub_props.push_encoded(&self.no_properties),
            }
        }
        if w[6] {
            self.received_at.append_value(p.timestamp_ms);
        }
        if w[7] {
            self.qos.append_value(i64::from(p.qos.level()));
        }
        if w[8] {
            self.timestamp.append_value(p.timestamp_ms);
        }
        if w[9] {
            self.topic.append_value(p.topic);
        }
        self.rows += 1;
    }

    /// Whether some rule reads `pub_props`: the caller need not gather them otherwise.
    pub fn wants_properties(&self) -> bool {
        self.wanted[PUB_PROPS]
    }

    /// The number of rows pushed.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The input, the columns nobody reads left null.
    pub fn finish(mut self) -> Input {
        let built: [ArrayRef; 10] = [
            self.clientid.finish(),
            Arc::new(self.event.finish()),
            self.flags.finish(),
            Arc::new(self.node.finish()),
            self.payload.finish(),
            self.pub_props.finish(),
            Arc::new(self.received_at.finish()),
            Arc::new(self.qos.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.topic.finish()),
        ];
        let columns = built
            .into_iter()
            .zip(PUBLISH_COLUMNS.iter().zip(self.wanted))
            .map(|(column, ((_, t), wanted))| if wanted { column } else { nulls(t, self.rows) })
            .collect();
        let shape: Vec<String> = PUBLISH_COLUMNS.iter().map(|(n, _)| n.to_string()).collect();
        Input::new(shape.into(), columns, self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_batch_has_the_columns_of_the_map_emqx_gives() {
        let props = Value::Map(BTreeMap::from([("Content-Type".to_string(), Value::Str("json".into()))]));
        let mut batch = PublishBatch::new("weir@h", &[]);
        let publish = Publish {
            topic: "t/1",
            payload: b"{}",
            qos: QoS::AtLeastOnce,
            clientid: Some("c"),
            retain: true,
            properties: Some(&props),
            timestamp_ms: 5,
        };
        batch.push(&publish);
        batch.push(&Publish { clientid: None, payload: &[0xff], properties: None, ..publish });
        let input = batch.finish();
        let row = Value::Map(input.row(0)).to_json().unwrap();
        assert_eq!(
            row,
            r#"{"clientid":"c","event":"message.publish","flags":{"dup":false,"retain":true},"node":"weir@h","payload":"{}","pub_props":{"Content-Type":"json"},"publish_received_at":5,"qos":1,"timestamp":5,"topic":"t/1"}"#
        );
        let second = input.row(1);
        assert_eq!(second["clientid"], Value::Undefined);
        assert_eq!(second["payload"], Value::Bin(vec![0xff]));
        assert_eq!(second["pub_props"], Value::Map(BTreeMap::new()));
    }
}
