//! gzip of the large read pages (issue 16): `GET /api/v1/services` and `GET /metrics`
//! over a real HTTP server on 127.0.0.1. A client that sends `Accept-Encoding: gzip` gets
//! one gzip member that decompresses to exactly the plain answer; a client that does not
//! gets the plain bytes with no `Content-Encoding`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use steward::Steward;
use steward::api;

use crate::api::Server;
use crate::support::{service, wait_for};

/// One answer: its `Content-Encoding` and `Vary` headers and its body as sent.
struct Answer {
    encoding: Option<String>,
    vary: Option<String>,
    body: Vec<u8>,
}

/// The API server of tests/it/api.rs (its reqwest client has no compression feature: it
/// sends no `Accept-Encoding` of its own and hands the body over as it came).
impl Server {
    async fn get(&self, path: &str, accept_encoding: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(value) = accept_encoding {
            request = request.header("accept-encoding", value);
        }
        let response = request.send().await.expect("GET");
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ascii header").to_string())
        };
        let (encoding, vary) = (header("content-encoding"), header("vary"));
        let body = response.bytes().await.expect("body").to_vec();
        Answer {
            encoding,
            vary,
            body,
        }
    }
}

/// `packed` decompressed as a single gzip member (anything after it would be left unread).
fn gunzip(packed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(packed)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

/// `packed` decompressed by the system's `gzip -dc`, a decoder that is not ours.
fn system_gunzip(packed: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip -dc");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = packed.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("gzip -dc output");
    writer.join().expect("writer").expect("write to gzip");
    assert!(output.status.success(), "gzip -dc: {:?}", output.status);
    output.stdout
}

/// A `/metrics` page as two parts that must match: the part read from the tables, byte
/// for byte, and the lines of the families the runtime recorded, sorted (the recorder
/// renders its families in no fixed order).
fn page_parts(page: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(page).into_owned();
    let recorded = [
        steward::metrics::RESTARTS_TOTAL,
        steward::metrics::PROBE_DURATION_SECONDS,
        steward::metrics::LOG_DROPPED_TOTAL,
        steward::metrics::NOTIFY_IGNORED_TOTAL,
    ]
    .iter()
    .filter_map(|name| text.find(&format!("\n# HELP {name} ")))
    .min()
    .unwrap_or(text.len());
    let mut lines: Vec<String> = text[recorded..].lines().map(str::to_string).collect();
    lines.sort();
    (text[..recorded].to_string(), lines)
}

/// Fails with the first line where two `/metrics` pages differ (they are megabytes).
fn same_page(got: &[u8], want: &[u8]) {
    let ((got_tables, got_recorded), (want_tables, want_recorded)) =
        (page_parts(got), page_parts(want));
    let differ = got_tables
        .lines()
        .zip(want_tables.lines())
        .enumerate()
        .find(|(_, (g, w))| g != w);
    assert!(
        got_tables == want_tables,
        "tables part: {} bytes where {} were expected; first different line: {differ:?}",
        got_tables.len(),
        want_tables.len()
    );
    assert_eq!(got_recorded, want_recorded, "the recorded families");
}

/// A runtime with `n` defined services that are not started (their rows do not change).
async fn runtime_with_idle_services(n: usize) -> Steward {
    let steward = Steward::spawn().await.expect("runtime");
    for i in 0..n {
        let mut def = service(&format!("gz-{i}"), "sleep 300");
        def.autostart = false;
        steward.define(def).await.expect("define");
    }
    steward
}

#[tokio::test]
async fn the_list_is_gzipped_for_a_client_that_asks_and_plain_for_one_that_does_not() {
    let steward = runtime_with_idle_services(200).await;
    let server = Server::start(&steward, None).await;

    let plain = server.get("/api/v1/services", None).await;
    assert_eq!(plain.encoding, None);
    assert_eq!(plain.vary.as_deref(), Some("Accept-Encoding"));
    let list: serde_json::Value = serde_json::from_slice(&plain.body).expect("JSON");
    assert_eq!(list["services"].as_array().map(Vec::len), Some(200));

    for asks in ["gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "*"] {
        let gzipped = server.get("/api/v1/services", Some(asks)).await;
        assert_eq!(gzipped.encoding.as_deref(), Some("gzip"), "{asks}");
        assert_eq!(gzipped.vary.as_deref(), Some("Accept-Encoding"));
        assert!(
            gzipped.body.len() * 5 < plain.body.len(),
            "{asks}: {} compressed bytes for {} plain",
            gzipped.body.len(),
            plain.body.len()
        );
        assert_eq!(gunzip(&gzipped.body), plain.body, "{asks}");
    }
    let by_gzip = server.get("/api/v1/services", Some("gzip")).await;
    assert_eq!(system_gunzip(&by_gzip.body), plain.body);

    for refuses in ["gzip;q=0", "identity", "br", "*;q=0"] {
        let answer = server.get("/api/v1/services", Some(refuses)).await;
        assert_eq!(answer.encoding, None, "{refuses}");
        assert_eq!(answer.body, plain.body, "{refuses}");
    }
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn metrics_are_gzipped_with_the_fresh_part_for_a_client_that_asks() {
    let steward = runtime_with_idle_services(100).await;
    let server = Server::start(&steward, None).await;
    // Something recorded, so the answer has a part appended after the cached page.
    api::install_recorder();
    metrics::counter!(steward::metrics::LOG_DROPPED_TOTAL, "service" => "gz-recorded").increment(1);

    // The page holds the runtime's uptime and this process's recorded series, which other
    // tests change: compare a gzipped answer with the plain ones taken around it once those
    // two agree.
    let (plain, gzipped) = wait_for(
        "two equal plain answers around a gzipped one",
        Duration::from_secs(30),
        || async {
            let before = server.get("/metrics", None).await;
            let gzipped = server.get("/metrics", Some("gzip")).await;
            let after = server.get("/metrics", None).await;
            (page_parts(&before.body) == page_parts(&after.body)).then_some((before, gzipped))
        },
    )
    .await;
    assert_eq!(plain.encoding, None);
    assert_eq!(plain.vary.as_deref(), Some("Accept-Encoding"));
    assert_eq!(gzipped.encoding.as_deref(), Some("gzip"));
    assert_eq!(gzipped.vary.as_deref(), Some("Accept-Encoding"));
    let text = String::from_utf8(plain.body.clone()).expect("UTF-8");
    assert!(
        text.contains("steward_service_up{service=\"gz-99\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("steward_log_dropped_total{service=\"gz-recorded\"}"),
        "{text}"
    );
    assert!(gzipped.body.len() * 3 < plain.body.len());
    same_page(&gunzip(&gzipped.body), &plain.body);
    same_page(&system_gunzip(&gzipped.body), &plain.body);

    let refused = server.get("/metrics", Some("gzip;q=0")).await;
    assert_eq!(refused.encoding, None);
    steward.shutdown().await.expect("shutdown");
}
