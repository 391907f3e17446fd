//! Alarms as EMQX raises them: a sink whose destination is down, and a rule that fails on most
//! of its input, raise alarms that `GET /api/v5/alarms` lists and that rules selecting
//! `$events/sys/+` receive; they clear when the condition ends.

mod common;

use common::http::get;
use common::http_server::Server;
use common::sinks::until;
use common::{publish_qos1, Weir};
use serde_json::Value as Json;

async fn alarms(weir: &Weir, query: &str) -> Vec<Json> {
    let (status, body) = get(weir.api.expect("API"), &format!("/api/v5/alarms{query}")).await;
    assert_eq!(status, 200, "{body}");
    let page: Json = serde_json::from_str(&body).expect("JSON");
    assert!(page["meta"]["count"].is_u64(), "EMQX's meta: {page}");
    page["data"].as_array().cloned().unwrap_or_default()
}

fn named<'a>(list: &'a [Json], name: &str) -> Option<&'a Json> {
    list.iter().find(|a| a["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_cannot_reach_its_destination_raises_an_alarm_until_it_can() {
    // A port nobody listens on yet; the destination comes up there later.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    let config = format!(
        "[alarms]\ncheck_interval = 1\n[sinks.hook]\ntype = \"http\"\nurl = \"http://{addr}/in\"\nmax_retry_backoff_ms = 200\nhealth_check_interval = 1\n"
    );
    let rules = [
        ("hook.sql", r#"INSERT INTO hook SELECT payload FROM "h/#""#),
        (
            "raised.sql",
            r#"SELECT name, details.sink AS sink FROM "$events/sys/+" WHERE event = 'alarm.activated' and name = 'sink_disconnected/hook'"#,
        ),
        (
            "cleared.sql",
            r#"SELECT name FROM "$events/sys/alarm_deactivated" WHERE name = 'sink_disconnected/hook' and deactivated_at >= activated_at"#,
        ),
    ];
    let weir = Weir::start_with_rules(&config, &rules);
    publish_qos1(weir.tcp, "h-pub", 3, |i| ("h/1".into(), i.to_string())).await;

    let alarm = until("the sink's alarm", &weir, async || {
        named(&alarms(&weir, "?activated=true").await, "sink_disconnected/hook").cloned()
    })
    .await;
    assert_eq!(alarm["activated"], true, "{alarm}");
    assert_eq!(alarm["deactivate_at"], "infinity", "{alarm}");
    assert_eq!(alarm["details"]["sink"], "hook", "{alarm}");
    assert!(alarm["activate_at"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339: {alarm}");
    until("the rule on $events/sys/+", &weir, async || (weir.rule_passed("raised").await == 1).then_some(())).await;

    let server = Server::start_on(addr, |_, _| (200, vec![])).await;
    until("the alarm to clear", &weir, async || {
        named(&alarms(&weir, "?activated=false").await, "sink_disconnected/hook").cloned()
    })
    .await;
    assert!(named(&alarms(&weir, "?activated=true").await, "sink_disconnected/hook").is_none());
    until("the rule on alarm_deactivated", &weir, async || (weir.rule_passed("cleared").await == 1).then_some(()))
        .await;
    until("the rows", &weir, async || (server.answered(200).len() >= 3).then_some(())).await;
    assert_eq!(weir.rule_passed("raised").await, 1, "raised once, not at every check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_failing_on_most_of_its_input_raises_an_alarm() {
    let rules = [("decode.sql", r#"SELECT hexstr2bin(payload) AS b FROM "hex/#""#)];
    let weir = Weir::start_with_rules("[alarms]\ncheck_interval = 1\n", &rules);
    // Twenty payloads that are not hex, two that are: 91% fail.
    publish_qos1(weir.tcp, "hex-pub", 22, |i| ("hex/1".into(), if i < 2 { "4869".into() } else { format!("zz{i}") }))
        .await;
    let alarm =
        until("the rule's alarm", &weir, async || named(&alarms(&weir, "").await, "rule_failing/decode").cloned())
            .await;
    // The 22 may fall into two check intervals: the figures are those of the one that raised it.
    let (matched, failed) = (alarm["details"]["matched"].as_u64(), alarm["details"]["failed"].as_u64());
    assert!(matched.zip(failed).is_some_and(|(m, f)| m >= 10 && f * 2 > m), "{alarm}");
    assert_eq!(alarm["activated"], true, "{alarm}");
    // A good interval clears it.
    publish_qos1(weir.tcp, "hex-pub", 20, |_| ("hex/1".into(), "4869".into())).await;
    until("the alarm to clear", &weir, async || {
        named(&alarms(&weir, "?activated=false").await, "rule_failing/decode").cloned()
    })
    .await;
}
