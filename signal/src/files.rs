//! Static files of one site, from one directory.
//!
//! A small handler rather than `tower-http`'s `ServeDir`, because the rules
//! here need control it does not give: it follows symlinks out of its root,
//! has no `ETag` (only `Last-Modified`), serves dotfiles, and its MIME table
//! and caching are not per file name. Here:
//!
//! - the request path is split on `/`, each segment percent-decoded and
//!   refused (404) when it is `.` or `..`, starts with `.` (dotfiles; only
//!   `.well-known` is allowed), or holds `/`, `\`, a control character or
//!   invalid UTF-8 — so `../` and `%2e%2e` never reach the file system;
//! - the joined path is canonicalized and must still lie under the
//!   canonicalized root: a symlink inside the root that points outside is
//!   refused (404) like a missing file;
//! - a directory is served as its `index.html` (`/sub` redirects to `/sub/`
//!   first, so relative URLs in the page work); no directory listing, ever;
//! - only `GET` and `HEAD` (405 with `Allow: GET, HEAD` otherwise);
//! - `ETag` is `"<length>-<mtime ns>"` in hex (as nginx does), and
//!   `If-None-Match` answers 304;
//! - files are read whole into memory: a vault's assets are a few MB at most.

use crate::policy::{self, Policy};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// One site: its canonical root directory and its header policy.
#[derive(Debug)]
pub struct Site {
    /// Canonicalized root directory.
    pub root: PathBuf,
    /// Headers and rules of this site.
    pub policy: Policy,
}

/// Splits and decodes a request path into the segments of a relative file
/// path. `None`: refused. Empty segments (`//`, a trailing `/`) are skipped.
pub fn decode_path(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    let mut segments = Vec::new();
    for raw in rest.split('/') {
        if raw.is_empty() {
            continue;
        }
        let bytes = percent_decode(raw)?;
        let segment = String::from_utf8(bytes).ok()?;
        let refused = segment == "."
            || segment == ".."
            || (segment.starts_with('.') && segment != ".well-known")
            || segment
                .chars()
                .any(|c| c == '/' || c == '\\' || c.is_control());
        if refused {
            return None;
        }
        segments.push(segment);
    }
    Some(segments)
}

/// Percent-decodes one segment; `None` on a malformed escape.
fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A plain-text response with the given status (404, 405, ...).
pub fn status_response(status: StatusCode) -> Response {
    let text = status.canonical_reason().unwrap_or("error");
    let mut response = (status, format!("{} {text}\n", status.as_u16())).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found() -> Response {
    status_response(StatusCode::NOT_FOUND)
}

/// The fallback handler: every request no other route took.
pub async fn serve(
    State(site): State<Arc<Site>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut response = status_response(StatusCode::METHOD_NOT_ALLOWED);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = uri.path();
    let Some(segments) = decode_path(path) else {
        return not_found();
    };
    let mut target = site.root.clone();
    target.extend(&segments);
    // Canonicalizing resolves every symlink; the result must stay in the root.
    let Ok(mut target) = tokio::fs::canonicalize(&target).await else {
        return not_found();
    };
    if !target.starts_with(&site.root) {
        return not_found();
    }
    let Ok(mut meta) = tokio::fs::metadata(&target).await else {
        return not_found();
    };
    // The page's decoded path, as opener pages are listed (`/consent.html`).
    let mut page_path = format!("/{}", segments.join("/"));
    if meta.is_dir() {
        if !path.ends_with('/') {
            // Built from the checked segments, so it is a same-origin path
            // (never `//host`), with the query kept.
            let mut location = String::new();
            for raw in path.split('/').filter(|s| !s.is_empty()) {
                location.push('/');
                location.push_str(raw);
            }
            location.push('/');
            if let Some(query) = uri.query() {
                location.push('?');
                location.push_str(query);
            }
            let Ok(location) = HeaderValue::from_str(&location) else {
                return not_found();
            };
            let mut response = status_response(StatusCode::TEMPORARY_REDIRECT);
            response.headers_mut().insert(header::LOCATION, location);
            return response;
        }
        let Ok(index) = tokio::fs::canonicalize(target.join("index.html")).await else {
            return not_found();
        };
        if !index.starts_with(&site.root) {
            return not_found();
        }
        match tokio::fs::metadata(&index).await {
            Ok(m) if m.is_file() => meta = m,
            _ => return not_found(),
        }
        target = index;
        if !page_path.ends_with('/') {
            page_path.push('/');
        }
        page_path.push_str("index.html");
    } else if !meta.is_file() || path.ends_with('/') {
        return not_found();
    }
    let file_name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    file_response(
        &site.policy,
        &page_path,
        file_name,
        &target,
        &meta,
        method == Method::HEAD,
        &headers,
    )
    .await
}

async fn file_response(
    policy: &Policy,
    page_path: &str,
    file_name: &str,
    target: &Path,
    meta: &std::fs::Metadata,
    head: bool,
    request: &HeaderMap,
) -> Response {
    let etag = etag(meta);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(policy::cache_control(file_name)),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if policy::is_html(file_name) {
        if let Some(coop) = policy.coop_for(page_path) {
            headers.insert("cross-origin-opener-policy", coop.clone());
        }
        // The site's headers (server.rs) keep these.
        if let Some((csp, frame_options)) = policy.unframable(page_path, file_name) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
            headers.insert(header::X_FRAME_OPTIONS, frame_options);
        }
    }
    if none_match(request, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(policy::mime_type(file_name)),
    );
    if head {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
        return (StatusCode::OK, headers).into_response();
    }
    match tokio::fs::read(target).await {
        Ok(bytes) => (StatusCode::OK, headers, Body::from(bytes)).into_response(),
        Err(_) => not_found(),
    }
}

/// `"<length>-<mtime in ns>"` in hex: changes whenever a build rewrites the file.
fn etag(meta: &std::fs::Metadata) -> String {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{:x}\"", meta.len(), nanos)
}

/// Whether `If-None-Match` matches `etag` (weak comparison, as RFC 9110 asks
/// for this header; `*` matches any existing file).
fn none_match(request: &HeaderMap, etag: &str) -> bool {
    request.get_all(header::IF_NONE_MATCH).iter().any(|value| {
        value.to_str().is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses() {
        assert_eq!(decode_path("/").unwrap(), Vec::<String>::new());
        assert_eq!(decode_path("/a/b.js").unwrap(), vec!["a", "b.js"]);
        assert_eq!(decode_path("//a//b%20c/").unwrap(), vec!["a", "b c"]);
        assert_eq!(
            decode_path("/.well-known/x").unwrap(),
            vec![".well-known", "x"]
        );
        for refused in [
            "a",
            "/../x",
            "/a/../../x",
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/.%2e/x",
            "/a/%2e",
            "/a%2f..%2fb",
            "/a%5c..%5cb",
            "/.git/config",
            "/.env",
            "/a%00b",
            "/%ff",
            "/%zz",
            "/%2",
        ] {
            assert!(decode_path(refused).is_none(), "{refused}");
        }
    }

    #[test]
    fn if_none_match() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"1-2\""),
        );
        assert!(none_match(&h, "\"1-2\""));
        assert!(!none_match(&h, "\"1-3\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, "\"1-3\""));
        assert!(!none_match(&HeaderMap::new(), "\"1-3\""));
    }
}
