//! gzip for clients that ask for it (`Accept-Encoding: gzip`): the dashboard's files and
//! the large read pages, `GET /api/v1/services` and `GET /metrics` (issue 16).
//!
//! At 10,000 services the list is about 3 MB of JSON and `/metrics` about 9 MB of text;
//! fifty clients reading the list move gigabytes a second through loopback. The pages are
//! repetitive and shrink about tenfold, so a page is compressed **once** per rendering
//! (inside [`read_cache`](super::read_cache)'s single flight), not per request as a
//! compression layer in front of the router would. A client that does not ask gets the
//! same bytes as before; every such response carries `Vary: Accept-Encoding`.
//!
//! `/metrics` appends what the runtime recorded (restarts, probe durations) fresh to every
//! response, after the cached table part. So that part need not be compressed again, a
//! [`Gzipped`] page keeps its deflate data ended by a *sync flush*: byte-aligned and not
//! final, so other deflate blocks may follow it in the same stream. The fresh text is
//! compressed into such blocks (a small, separate deflate that refers to nothing before
//! it), and the trailer's CRC-32 is carried on from the page's. The result is one ordinary
//! gzip member, which every decoder reads (several concatenated members would be valid
//! gzip too, but some clients stop after the first).

use std::io;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use flate2::{Compress, Compression, FlushCompress, Status};

/// The compression level: 1, the fastest. Measured on a list of 4,000 services (1.33 MB):
/// see docs/BENCHMARKS.md ("S8 in the fourth session") for the sizes and times of the
/// levels tried.
const LEVEL: u32 = 1;

/// A gzip header with no name, no time and an unknown OS (RFC 1952, 2.3).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// True when `Accept-Encoding` admits gzip: `gzip` (or `x-gzip`, or `*` when gzip is not
/// named) with a quality above 0.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut named = None;
    let mut any = false;
    for coding in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let accepted = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .all(|q| q.trim().parse::<f32>().map_or(true, |q| q > 0.0));
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            named = Some(named.unwrap_or(false) || accepted);
        } else if name == "*" {
            any |= accepted;
        }
    }
    named.unwrap_or(any)
}

/// A `200` with `body` as `content_type`, marked `Content-Encoding: gzip` when it is
/// `gzipped`; `Vary: Accept-Encoding` either way, so a cache between keeps the two apart.
pub(crate) fn respond(content_type: &'static str, body: Bytes, gzipped: bool) -> Response {
    let common = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if gzipped {
        let encoding = [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))];
        (common, encoding, body).into_response()
    } else {
        (common, body).into_response()
    }
}

/// A page compressed with gzip, kept so that more text may be appended to it.
#[derive(Debug, Clone)]
pub(crate) struct Gzipped {
    /// The page alone as one gzip member: header, deflate blocks, final block, trailer.
    whole: Bytes,
    /// How many bytes of `whole` precede its final block: the header and the page's
    /// deflate blocks, ended by a sync flush.
    open: usize,
    /// CRC-32 of the page.
    crc: u32,
    /// The page's length modulo 2³², as gzip's trailer has it.
    len: u32,
}

impl Gzipped {
    /// Compresses `page` (milliseconds per megabyte: call it off the async workers).
    pub(crate) fn of(page: &[u8]) -> io::Result<Gzipped> {
        let mut out = Vec::with_capacity(page.len() / 6 + 64);
        out.extend_from_slice(&HEADER);
        let mut deflate = Compress::new(Compression::new(LEVEL), false);
        deflate_into(&mut deflate, page, &mut out, FlushCompress::Sync)?;
        let open = out.len();
        deflate_into(&mut deflate, &[], &mut out, FlushCompress::Finish)?;
        let crc = crc32fast::hash(page);
        let len = isize_of(page.len());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        Ok(Gzipped {
            whole: Bytes::from(out),
            open,
            crc,
            len,
        })
    }

    /// The page as one gzip member (shared, no copy).
    pub(crate) fn whole(&self) -> Bytes {
        self.whole.clone()
    }

    /// The page followed by `tail`, as one gzip member: the page's compressed blocks are
    /// copied, only `tail` is compressed.
    pub(crate) fn followed_by(&self, tail: &[u8]) -> io::Result<Bytes> {
        let mut out = Vec::with_capacity(self.open + tail.len() / 4 + 64);
        out.extend_from_slice(&self.whole[..self.open]);
        let mut deflate = Compress::new(Compression::new(LEVEL), false);
        deflate_into(&mut deflate, tail, &mut out, FlushCompress::Finish)?;
        let mut crc = crc32fast::Hasher::new_with_initial(self.crc);
        crc.update(tail);
        let len = self.len.wrapping_add(isize_of(tail.len()));
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        Ok(Bytes::from(out))
    }
}

/// gzip's ISIZE: a length modulo 2³² (the cast keeps the low 32 bits).
fn isize_of(len: usize) -> u32 {
    len as u32
}

/// Runs `deflate` over all of `input` into `out` until `flush` is done: for
/// [`FlushCompress::Finish`] the stream's end, for [`FlushCompress::Sync`] all input
/// consumed and the output no longer filling the space it was given.
fn deflate_into(
    deflate: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    const ROOM: usize = 16 * 1024;
    let mut consumed = 0usize;
    loop {
        if out.capacity() - out.len() < ROOM {
            out.reserve(ROOM.max(out.len() / 2));
        }
        let (read_before, written_before) = (deflate.total_in(), out.len());
        let status = deflate
            .compress_vec(&input[consumed..], out, flush)
            .map_err(io::Error::other)?;
        let read = usize::try_from(deflate.total_in() - read_before).map_err(io::Error::other)?;
        consumed += read;
        let room_left = out.len() < out.capacity();
        match (flush, status) {
            (FlushCompress::Finish, Status::StreamEnd) => return Ok(()),
            (FlushCompress::Finish, _) => {}
            (_, _) if consumed == input.len() && room_left => return Ok(()),
            _ => {}
        }
        if read == 0 && out.len() == written_before && room_left {
            return Err(io::Error::other("deflate made no progress"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(packed: &[u8]) -> Vec<u8> {
        // Single-member decoder: a second member would be left unread and fail the test.
        let mut out = Vec::new();
        let mut decoder = flate2::read::GzDecoder::new(packed);
        decoder.read_to_end(&mut out).expect("gunzip");
        out
    }

    /// Text that compresses like a page: repetitive rows with changing numbers.
    fn page(rows: usize) -> Vec<u8> {
        (0..rows)
            .map(|i| format!("steward_service_up{{service=\"s{i}\"}} {}\n", i % 2))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn a_page_round_trips_and_shrinks() {
        let text = page(20_000);
        let packed = Gzipped::of(&text).expect("gzip");
        assert!(
            packed.whole().len() * 5 < text.len(),
            "{}",
            packed.whole().len()
        );
        assert_eq!(gunzip(&packed.whole()), text);
    }

    #[test]
    fn a_page_followed_by_fresh_text_is_one_member_of_both() {
        let text = page(5_000);
        let packed = Gzipped::of(&text).expect("gzip");
        for tail in [
            &b""[..],
            b"\n",
            b"steward_restarts_total{reason=\"crash\"} 3\n",
        ] {
            let joined = packed.followed_by(tail).expect("append");
            assert_eq!(gunzip(&joined), [&text[..], tail].concat());
        }
        let long_tail = page(3_000);
        let joined = packed.followed_by(&long_tail).expect("append");
        assert_eq!(gunzip(&joined), [&text[..], &long_tail[..]].concat());
    }

    #[test]
    fn an_empty_page_is_valid_gzip() {
        let packed = Gzipped::of(b"").expect("gzip");
        assert_eq!(gunzip(&packed.whole()), b"");
        assert_eq!(gunzip(&packed.followed_by(b"x").expect("append")), b"x");
    }

    fn asks(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("header"),
        );
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_accepted_when_named_or_starred_and_not_refused() {
        assert!(asks("gzip, deflate, br"));
        assert!(asks("br;q=1.0, GZIP;q=0.5"));
        assert!(asks("x-gzip"));
        assert!(asks("*"));
        assert!(!asks("gzip;q=0"));
        assert!(!asks("gzip;q=0.0, *"));
        assert!(!asks("*;q=0"));
        assert!(!asks("br"));
        assert!(!asks("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
