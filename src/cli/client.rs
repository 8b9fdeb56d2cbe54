//! The HTTP client of the client commands: one [`Client`] per invocation, talking to the
//! daemon's API v1 (DESIGN §6).
//!
//! Every failure becomes a [`ClientError`] whose message is ready for a person: a daemon
//! that does not answer is one line with the URL that was tried; an API error is the
//! server's own message (`{"error": {"code", "message"}}`); anything else says which
//! request got which HTTP status.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cli::sse::SseParser;

/// How long a plain (non-streaming) request may take. Generous: a control request waits
/// for the process (a stop can take a service's whole `stop_timeout`), and the commands
/// that must answer sooner put their own deadline around the call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How long to try to open a connection before saying no daemon answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing accepted the connection.
    #[error("no daemon at {url} (is `steward up` running?)")]
    NoDaemon {
        /// The URL as the user gave it.
        url: String,
    },
    /// The daemon wants a (different) bearer token.
    #[error("{message} (pass --token or set STEWARD_TOKEN)")]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// The daemon refused the request with an API error.
    #[error("{}", problems(.message, .details))]
    Api {
        /// HTTP status.
        status: u16,
        /// Machine-readable code (`not_found`, `conflict`, …).
        code: String,
        /// The server's message.
        message: String,
        /// Each problem of a rejected definition or config, one line each
        /// (`file:line:col: message (hint: …)`).
        details: Vec<String>,
    },
    /// An answer that is not an API error (no such route, a proxy, another program).
    #[error("{method} {path}: HTTP {status} from {base}{}", detail(.body))]
    Unexpected {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The daemon's URL.
        base: String,
        /// The start of the body, when there was one.
        body: String,
    },
    /// The connection broke or timed out.
    #[error("talking to {base}: {source}")]
    Transport {
        /// The daemon's URL.
        base: String,
        /// What went wrong.
        source: reqwest::Error,
    },
    /// A 2xx answer this client cannot read (a daemon of another version?).
    #[error("{path}: unexpected answer from the daemon: {reason}")]
    Decode {
        /// The request's path.
        path: String,
        /// What did not parse.
        reason: String,
    },
}

/// The message, or with several problems, a summary and one problem a line.
fn problems(message: &str, details: &[String]) -> String {
    if details.len() < 2 {
        return message.to_string();
    }
    let head = message.split_once(": ").map_or(message, |(head, _)| head);
    format!(
        "{head} ({} problems):\n  {}",
        details.len(),
        details.join("\n  ")
    )
}

fn detail(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// The error body of the API.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    /// Each problem of a rejected definition (absent for other errors).
    #[serde(default)]
    details: Vec<Problem>,
}

/// One problem of a rejected definition, as the API lists it.
#[derive(Debug, Deserialize)]
struct Problem {
    message: String,
    hint: Option<String>,
    file: Option<String>,
    line: Option<u64>,
    column: Option<u64>,
}

impl Problem {
    /// `file:line:col: message (hint: …)`, with what is known.
    fn line(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.file {
            out.push_str(file);
            for n in [self.line, self.column].into_iter().flatten() {
                out.push_str(&format!(":{n}"));
            }
            out.push_str(": ");
        }
        out.push_str(&self.message);
        if let Some(hint) = &self.hint {
            out.push_str(&format!(" (hint: {hint})"));
        }
        out
    }
}

/// A connection to one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    /// Parsed base URL; paths are appended segment by segment so ids are escaped.
    base: Url,
    /// The base URL as the user wrote it, for messages.
    shown: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for the daemon at `url` (`http://host:port`), sending `token` as a bearer
    /// token when given.
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Client> {
        let shown = url.trim_end_matches('/').to_string();
        let base = Url::parse(&shown).map_err(|e| {
            anyhow::anyhow!("invalid --url `{url}`: {e} (expected http://HOST:PORT)")
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            anyhow::bail!("invalid --url `{url}`: expected http://HOST:PORT");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(Client {
            base,
            shown,
            token: token.filter(|t| !t.is_empty()),
            http,
        })
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        // `new` checked the URL can be a base, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    fn transport(&self, source: reqwest::Error) -> ClientError {
        if source.is_connect() {
            ClientError::NoDaemon {
                url: self.shown.clone(),
            }
        } else {
            ClientError::Transport {
                base: self.shown.clone(),
                source,
            }
        }
    }

    /// Turns a non-2xx answer into the error it carries.
    async fn refusal(&self, method: Method, url: &Url, response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) if status == 401 => ClientError::Unauthorized {
                message: body.error.message,
            },
            Ok(body) => ClientError::Api {
                status,
                code: body.error.code,
                message: body.error.message,
                details: body.error.details.iter().map(Problem::line).collect(),
            },
            Err(_) if status == 401 => ClientError::Unauthorized {
                message: "the daemon wants a bearer token".to_string(),
            },
            Err(_) => ClientError::Unexpected {
                method,
                path: url.path().to_string(),
                status,
                base: self.shown.clone(),
                body: text.trim().chars().take(200).collect(),
            },
        }
    }

    /// Sends a request and reads its JSON answer (an empty body reads as `null`).
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let url = self.url(segments, query);
        let mut request = self
            .request(method.clone(), url.clone())
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        if !response.status().is_success() {
            return Err(self.refusal(method, &url, response).await);
        }
        let text = response.text().await.map_err(|e| self.transport(e))?;
        let text = if text.trim().is_empty() {
            "null"
        } else {
            &text
        };
        serde_json::from_str(text).map_err(|e| ClientError::Decode {
            path: url.path().to_string(),
            reason: e.to_string(),
        })
    }

    /// `GET` and read the JSON answer.
    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        self.send(Method::GET, segments, query, None).await
    }

    /// `POST` (with an optional JSON body) and read the JSON answer.
    pub async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        self.send(Method::POST, segments, query, body).await
    }

    /// Opens a Server-Sent Events stream.
    pub async fn stream(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<EventStream, ClientError> {
        let url = self.url(segments, query);
        let response = self
            .request(Method::GET, url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        if !response.status().is_success() {
            return Err(self.refusal(Method::GET, &url, response).await);
        }
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            return Err(ClientError::Decode {
                path: url.path().to_string(),
                reason: "expected a text/event-stream answer".to_string(),
            });
        }
        Ok(EventStream {
            client: self.clone(),
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::default(),
            ready: VecDeque::new(),
        })
    }
}

/// An open Server-Sent Events stream: yields the `data` of each event.
pub struct EventStream {
    client: Client,
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    parser: SseParser,
    /// Events parsed from a chunk and not yet handed out.
    ready: VecDeque<String>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("base", &self.client.shown)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The next event's data; `None` when the daemon closed the stream.
    pub async fn next(&mut self) -> Result<Option<String>, ClientError> {
        loop {
            if let Some(data) = self.ready.pop_front() {
                return Ok(Some(data));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.ready.extend(self.parser.feed(&chunk)),
                Some(Err(e)) => return Err(self.client.transport(e)),
                None => return Ok(None),
            }
        }
    }
}
