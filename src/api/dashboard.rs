//! The web dashboard (DESIGN §12): a single page and its script and style sheet, built
//! into the binary and served at `/` and `/ui/{file}`.
//!
//! The files live in `dashboard/` at the crate's root and are embedded with
//! `include_bytes!`: three hand-written files need no embedding crate, no build script and
//! no directory walk, and a missing file fails the build. Each is served with
//!
//! * a strong `ETag` (a 64-bit FNV-1a hash of its bytes, computed once), so a browser
//!   revalidates with `If-None-Match` and gets `304 Not Modified` without the body;
//! * `Cache-Control: no-cache`: the names carry no hash, so the browser must revalidate
//!   (cheap, thanks to the ETag) and a new binary's page is never mixed with an old script;
//! * gzip when the request accepts it (compressed once, on first use), with
//!   `Vary: Accept-Encoding`.
//!
//! The page is public static content (DESIGN §10): the token guard covers `/api/*` and
//! `/metrics` only, and the page asks the person for the token when the API answers 401.
//! These routes are not part of the API, so they are not in [`super::ROUTES`] or the
//! OpenAPI document.

use std::io::Write;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::gzip::accepts_gzip;

/// One embedded file and what is computed from it once.
struct Asset {
    /// The name under `/ui/` (the page itself is `index.html`, served at `/`).
    name: &'static str,
    /// Its `Content-Type`.
    mime: &'static str,
    /// Its bytes as built in.
    body: &'static [u8],
    /// Its `ETag` and gzipped body, made on first use.
    derived: OnceLock<Derived>,
}

/// What is computed once per asset.
struct Derived {
    /// The quoted strong entity tag.
    etag: HeaderValue,
    /// The body compressed with gzip (`None` when compressing failed; then the plain body
    /// is served).
    gzip: Option<Vec<u8>>,
}

/// Every file of the dashboard.
static ASSETS: [Asset; 3] = [
    Asset {
        name: "index.html",
        mime: "text/html; charset=utf-8",
        body: include_bytes!("../../dashboard/index.html"),
        derived: OnceLock::new(),
    },
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../../dashboard/app.js"),
        derived: OnceLock::new(),
    },
    Asset {
        name: "app.css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("../../dashboard/app.css"),
        derived: OnceLock::new(),
    },
];

impl Asset {
    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| Derived {
            etag: etag_of(self.body),
            gzip: gzip(self.body),
        })
    }
}

/// `GET /`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(&ASSETS[0], &headers)
}

/// `GET /ui/{file}`: the page's script and style sheet (404 for any other name).
pub(crate) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::NotFound(format!("the dashboard has no file `{file}`")).into_response(),
    }
}

/// The response for `asset`: 304 when the client has this version, else the body
/// (gzipped when accepted).
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let derived = asset.derived();
    let common = [
        (header::ETAG, derived.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if matches_etag(headers, &derived.etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime))];
    match &derived.gzip {
        Some(gzipped) if accepts_gzip(headers) => (
            common,
            content_type,
            [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
            gzipped.clone(),
        )
            .into_response(),
        _ => (common, content_type, asset.body).into_response(),
    }
}

/// True when `If-None-Match` lists `etag` (or is `*`).
fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(wanted) = etag.to_str() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == wanted || tag == "*")
}

/// A strong entity tag for `body`: FNV-1a over its bytes, quoted.
fn etag_of(body: &[u8]) -> HeaderValue {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let text = format!("\"{hash:016x}-{}\"", body.len());
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// `body` compressed with gzip at the best level (done once per file).
fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    match encoder.write_all(body).and_then(|()| encoder.finish()) {
        Ok(out) => Some(out),
        Err(error) => {
            tracing::warn!(%error, "could not gzip a dashboard file; serving it plain");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn etags_differ_by_content_and_match_in_lists() {
        let a = etag_of(b"one");
        let b = etag_of(b"two");
        assert_ne!(a, b);
        let list = format!("\"x\", W/{}", a.to_str().expect("ascii"));
        assert!(matches_etag(
            &headers(&[(header::IF_NONE_MATCH, &list)]),
            &a
        ));
        assert!(!matches_etag(
            &headers(&[(header::IF_NONE_MATCH, &list)]),
            &b
        ));
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = ASSETS[1].body;
        let packed = gzip(body).expect("gzip");
        assert!(packed.len() < body.len());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, body);
    }
}
