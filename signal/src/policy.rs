//! What each site sends besides the bytes: security headers, MIME types and
//! caching rules. Pure functions and values, tested without a server.
//!
//! | header | vault site | app site |
//! |---|---|---|
//! | `Content-Security-Policy` | [`Policy::vault`]; its pages other than `/vault.html` with `frame-ancestors 'none'` | [`Policy::app`] |
//! | `Cross-Origin-Opener-Policy` (HTML only) | `same-origin-allow-popups`, none on opener pages | none |
//! | `Cross-Origin-Resource-Policy` | `same-origin` | `same-origin` |
//! | `X-Frame-Options` | none on `/vault.html` (any app may embed it), `DENY` on its other pages | `SAMEORIGIN` |
//! | `X-Content-Type-Options` | `nosniff` | `nosniff` |
//! | `Referrer-Policy` | `no-referrer` | `no-referrer` |

use axum::http::HeaderValue;
use std::collections::HashSet;

/// Which of the two sites a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SiteKind {
    /// The vault origin: the shell page apps embed, the consent popup, the
    /// manage page, the engine's worker and wasm.
    Vault,
    /// An app site (the demo app), which embeds the vault in an iframe.
    App,
}

impl SiteKind {
    /// Lower-case name, as used in messages and flags.
    pub fn name(self) -> &'static str {
        match self {
            SiteKind::Vault => "vault",
            SiteKind::App => "app",
        }
    }
}

/// `Cache-Control` of HTML, of anything whose name is not content-hashed, and
/// of the service worker script: always revalidate (cheap with `ETag` → 304).
pub const NO_CACHE: &str = "no-cache";
/// `Cache-Control` of content-hashed assets: their name changes with their bytes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The headers one site puts on every response (files, errors, `/healthz`).
#[derive(Clone, Debug)]
pub struct Policy {
    /// Which site this is.
    pub kind: SiteKind,
    /// `Content-Security-Policy`.
    pub csp: HeaderValue,
    /// `Cross-Origin-Opener-Policy` of HTML documents (`None`: not sent).
    pub coop_html: Option<HeaderValue>,
    /// Paths of HTML pages that must keep their opener and so get no COOP.
    pub opener_pages: HashSet<String>,
    /// `X-Frame-Options` (`None`: not sent).
    pub frame_options: Option<HeaderValue>,
    /// Paths of the HTML pages other sites may embed: the vault's shell
    /// (`/vault.html`) and any the deployment adds. Every other page of the
    /// vault site gets
    /// [`unframable_csp`](Self::unframable_csp) and `X-Frame-Options: DENY`.
    pub framable: HashSet<String>,
    /// The CSP of a page no other site may embed (`frame-ancestors 'none'`).
    pub unframable_csp: HeaderValue,
}

/// The CSP directives both sites share. `'wasm-unsafe-eval'` lets pages and
/// workers compile WebAssembly and nothing else that `eval` would allow.
const CSP_COMMON: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";

impl Policy {
    /// The vault site's policy.
    ///
    /// - `frame_ancestors`: who may embed the vault; `["*"]` by default. Any app
    ///   may embed the vault because the vault itself decides what an app gets:
    ///   the shell checks `event.origin` of every message and serves an origin
    ///   only what the user granted it in a top-level consent popup (which an
    ///   embedding page cannot clickjack). A deployment for known apps passes a
    ///   list of origins instead.
    /// - Only the shell (`vault.html`) is framable. Every other vault page —
    ///   the consent popup, the manage and invite pages — gets
    ///   `frame-ancestors 'none'`: framed by another site, a page would be
    ///   clickjackable, and (its storage partitioned by that site) would
    ///   start a second, empty vault.
    /// - `connect-src 'self' ws: wss:`: the signaling server may live on another
    ///   host than the vault (narrowed to its URL once signaling exists).
    /// - `opener_pages`: the consent popup is opened by the vault's iframe inside
    ///   an app. Its initial `about:blank` has no COOP (its creator's top-level
    ///   document is the app, another origin), so a COOP on the popup's own
    ///   response would not match and the browser would move it into a new
    ///   browsing context group, severing `window.opener`. Those pages get no
    ///   COOP; every other vault page gets `same-origin-allow-popups`, which
    ///   keeps the opener link of the popups *it* opens.
    /// - `extra_framable`: paths of more pages other sites may embed besides
    ///   the shell (the benchmark's floor pages); none in a deployment.
    pub fn vault(
        frame_ancestors: &[String],
        opener_pages: HashSet<String>,
        extra_framable: &[String],
    ) -> Policy {
        let ancestors = if frame_ancestors.is_empty() {
            "*".to_string()
        } else {
            frame_ancestors.join(" ")
        };
        let csp = format!("{CSP_COMMON}; connect-src 'self' ws: wss:; frame-ancestors {ancestors}");
        let unframable =
            format!("{CSP_COMMON}; connect-src 'self' ws: wss:; frame-ancestors 'none'");
        Policy {
            kind: SiteKind::Vault,
            csp: header(&csp),
            coop_html: Some(HeaderValue::from_static("same-origin-allow-popups")),
            opener_pages,
            frame_options: None,
            framable: std::iter::once("/vault.html".to_string())
                .chain(extra_framable.iter().cloned())
                .collect(),
            unframable_csp: header(&unframable),
        }
    }

    /// An app site's policy: it may frame the vault (`frame-src vault_origin`),
    /// may be framed only by itself, and connects only to itself (it reaches
    /// the vault by postMessage). It sends no COOP: `same-origin` there would
    /// open the vault iframe's consent popup without an opener, and an app's
    /// own COOP is its own choice.
    pub fn app(vault_origin: Option<&str>) -> Policy {
        let frame_src = match vault_origin {
            Some(origin) => format!("frame-src {origin}; "),
            None => String::new(),
        };
        let csp = format!("{CSP_COMMON}; connect-src 'self'; {frame_src}frame-ancestors 'self'");
        Policy {
            kind: SiteKind::App,
            csp: header(&csp),
            coop_html: None,
            opener_pages: HashSet::new(),
            frame_options: Some(HeaderValue::from_static("SAMEORIGIN")),
            framable: HashSet::new(),
            unframable_csp: header(&csp),
        }
    }

    /// The framing headers of the HTML file `file_name`, when they differ
    /// from the site's: a vault page other than the shell may be framed by
    /// no one (CSP and `X-Frame-Options`).
    pub fn unframable(
        &self,
        page_path: &str,
        file_name: &str,
    ) -> Option<(HeaderValue, HeaderValue)> {
        (self.kind == SiteKind::Vault && is_html(file_name) && !self.framable.contains(page_path))
            .then(|| {
                (
                    self.unframable_csp.clone(),
                    HeaderValue::from_static("DENY"),
                )
            })
    }

    /// The COOP an HTML page at `path` (as requested, e.g. `/consent.html`) gets.
    pub fn coop_for(&self, path: &str) -> Option<&HeaderValue> {
        if self.opener_pages.contains(path) {
            None
        } else {
            self.coop_html.as_ref()
        }
    }
}

/// A header value built from our own text; origins and lists come from the
/// command line and are checked there ([`valid_source`]).
fn header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

/// Whether `source` can stand in a CSP source list: visible ASCII with no
/// `;` or `,` (which would end the directive or the policy).
pub fn valid_source(source: &str) -> bool {
    !source.is_empty()
        && source
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

/// The `Content-Type` of a file, from its extension (case-insensitive).
/// Unknown extensions are `application/octet-stream`, which `nosniff` keeps
/// from being run as script or style.
pub fn mime_type(file_name: &str) -> &'static str {
    let ext = match file_name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => String::new(),
    };
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether a file is an HTML document.
pub fn is_html(file_name: &str) -> bool {
    mime_type(file_name).starts_with("text/html")
}

/// Whether a file name is content-hashed, and so may be cached forever.
///
/// The rule: take the name without its last extension; its last part after a
/// `.` or `-` (never the whole stem) is the hash when it is 8 to 64 lower-case
/// hex digits with at least one digit 0–9. So `app.3f2a9c1d.js`,
/// `echo_vault_bg-0a1b2c3d4e5f6071.wasm` and `style.abcdef12.css` are hashed;
/// `app.js`, `sw.js`, `index-settings.js` and `deadbeef.js` are not. The
/// digit rule keeps words like `facade` out; a hash without a digit is
/// only revalidated, never served stale. HTML is never hashed, whatever its
/// name: pages' URLs are stable and must always revalidate, and so does the
/// service worker script, whose URL cannot change.
pub fn is_content_hashed(file_name: &str) -> bool {
    if is_html(file_name) {
        return false;
    }
    let Some((stem, _ext)) = file_name.rsplit_once('.') else {
        return false;
    };
    let Some(cut) = stem.rfind(['.', '-']) else {
        return false;
    };
    let (head, hash) = (&stem[..cut], &stem[cut + 1..]);
    !head.is_empty()
        && (8..=64).contains(&hash.len())
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && hash.bytes().any(|b| b.is_ascii_digit())
}

/// `Cache-Control` for a file.
pub fn cache_control(file_name: &str) -> &'static str {
    if is_content_hashed(file_name) {
        IMMUTABLE
    } else {
        NO_CACHE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        for name in [
            "app.3f2a9c1d.js",
            "name.abcdef12.js",
            "echo_vault_bg-0a1b2c3d4e5f6071.wasm",
            "style.abcdef12.css",
            "a.b.0123456789abcdef0123456789abcdef.mjs",
        ] {
            assert!(is_content_hashed(name), "{name}");
            assert_eq!(cache_control(name), IMMUTABLE);
        }
        for name in [
            "app.js",
            "sw.js",
            "service-worker.js",
            "index-settings.js",
            "deadbeef.js",
            ".3f2a9c1d.js",
            "app.deadbeef.js",
            "app.3F2A9C1D.js",
            "app.3f2a9c1.js",
            "index.3f2a9c1d.html",
            "3f2a9c1d",
            "app.3f2a9c1d",
        ] {
            assert!(!is_content_hashed(name), "{name}");
            assert_eq!(cache_control(name), NO_CACHE);
        }
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_type("a.wasm"), "application/wasm");
        assert_eq!(mime_type("A.JS"), "text/javascript; charset=utf-8");
        assert_eq!(mime_type("m.webmanifest"), "application/manifest+json");
        assert_eq!(mime_type("noext"), "application/octet-stream");
    }

    #[test]
    fn policies() {
        let vault = Policy::vault(&[], ["/consent.html".to_string()].into(), &[]);
        let csp = vault.csp.to_str().unwrap();
        assert!(csp.contains("frame-ancestors *"), "{csp}");
        // Only the shell is framable.
        assert!(vault.unframable("/vault.html", "vault.html").is_none());
        for page in ["consent.html", "manage.html", "invite.html", "index.html"] {
            let (csp, xfo) = vault.unframable(&format!("/{page}"), page).expect(page);
            assert!(csp.to_str().unwrap().ends_with("frame-ancestors 'none'"));
            assert_eq!(xfo, "DENY");
        }
        assert!(vault
            .unframable("/engine-worker.js", "engine-worker.js")
            .is_none());
        // A vault.html elsewhere is not the shell; a page added is framable.
        assert!(vault.unframable("/x/vault.html", "vault.html").is_some());
        let floor = Policy::vault(&[], HashSet::new(), &["/floor.html".to_string()]);
        assert!(floor.unframable("/floor.html", "floor.html").is_none());
        assert!(floor.unframable("/vault.html", "vault.html").is_none());
        assert!(floor.unframable("/consent.html", "consent.html").is_some());
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{csp}"
        );
        assert!(vault.coop_for("/consent.html").is_none());
        assert_eq!(
            vault.coop_for("/vault.html").unwrap(),
            "same-origin-allow-popups"
        );
        let listed = Policy::vault(
            &["https://a.example".into(), "https://b.example".into()],
            HashSet::new(),
            &[],
        );
        assert!(listed
            .csp
            .to_str()
            .unwrap()
            .ends_with("frame-ancestors https://a.example https://b.example"));
        let app = Policy::app(Some("http://vault.localhost:8600"));
        let csp = app.csp.to_str().unwrap();
        assert!(
            csp.contains("frame-src http://vault.localhost:8600;"),
            "{csp}"
        );
        assert!(csp.ends_with("frame-ancestors 'self'"), "{csp}");
        assert!(app.coop_for("/index.html").is_none());
        assert!(valid_source("https://a.example:8443"));
        assert!(!valid_source("a; script-src *"));
        assert!(!valid_source(""));
    }
}
