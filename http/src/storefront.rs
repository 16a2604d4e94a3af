//! The shop in a browser: the storefront (`/`), the merchant console (`/merchant`) and the admin
//! console (`/admin`), static files embedded in the binary that talk to the public API only.
//!
//! Every page is the same HTML shell; its script draws the page the path names. Assets are
//! served from `/assets/{name}` with a weak ETag (answering `If-None-Match` with 304); the shell
//! links them with `?v=<hash>`, and a request carrying the current hash may be cached for a
//! year, any other for no time without revalidation. Every answer carries a Content-Security-
//! Policy that lets the page load and connect to nothing but its own origin.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The paths that serve the HTML shell.
pub const PAGES: [&str; 3] = ["/", "/merchant", "/admin"];

/// The Content-Security-Policy of every storefront answer: nothing off the host, no inline
/// script or style, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The embedded files (see `http/assets/README.md`).
const FILES: [Asset; 6] = [
    Asset {
        name: "mall.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/mall.css"),
    },
    Asset {
        name: "common.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/common.js"),
    },
    Asset {
        name: "shop.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/shop.js"),
    },
    Asset {
        name: "merchant.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/merchant.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/admin.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/icon.svg"),
    },
];

const SHELL: &str = include_str!("../assets/index.html");

/// A file ready to serve: its body and the hash that is both its ETag and its version.
struct Prepared {
    name: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    hash: String,
}

fn digest(body: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(body)[..12])
}

/// The assets, and the shell with each asset's link versioned by its hash.
static PREPARED: LazyLock<(Vec<Prepared>, Prepared)> = LazyLock::new(|| {
    let assets: Vec<Prepared> = FILES
        .iter()
        .map(|a| Prepared {
            name: a.name,
            content_type: a.content_type,
            body: a.body.to_vec(),
            hash: digest(a.body),
        })
        .collect();
    let mut shell = SHELL.to_owned();
    for a in &assets {
        shell = shell.replace(
            &format!("/assets/{}\"", a.name),
            &format!("/assets/{}?v={}\"", a.name, a.hash),
        );
    }
    let shell = Prepared {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        hash: digest(shell.as_bytes()),
        body: shell.into_bytes(),
    };
    (assets, shell)
});

/// Headers every storefront answer carries.
fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    builder
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag.trim_start_matches("W/"))
}

fn serve(req: &HttpRequest, file: &Prepared, cache_control: &'static str) -> HttpResponse {
    let etag = format!("W/\"{}\"", file.hash);
    let unchanged = not_modified(req, &etag);
    let mut builder = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::VARY, "Accept-Encoding"));
    let mut builder = secured(builder);
    if unchanged {
        builder.finish()
    } else {
        builder
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            ))
            .body(file.body.clone())
    }
}

/// `GET /`, `GET /merchant`, `GET /admin`: the HTML shell, revalidated on every load.
pub async fn page(req: HttpRequest) -> HttpResponse {
    serve(&req, &PREPARED.1, "no-cache")
}

/// `GET /assets/{name}`: an embedded file, or 404 `not_found`. With `?v=` equal to the file's
/// current hash it may be cached for a year; otherwise it must be revalidated.
pub async fn asset(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let Some(file) = PREPARED.0.iter().find(|a| a.name == name.as_str()) else {
        return Err(ApiError::not_found("asset"));
    };
    let versioned =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("v").cloned())
            .is_some_and(|v| v == file.hash);
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(serve(&req, file, cache))
}

/// Registers the storefront's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Resources, so another method on a page is 405 with `Allow` like everywhere else.
    for path in PAGES {
        cfg.service(web::resource(path).route(web::get().to(page)));
    }
    cfg.service(web::resource("/assets/{name}").route(web::get().to(asset)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_links_every_script_and_style_with_its_version() {
        let shell = String::from_utf8_lossy(&PREPARED.1.body).into_owned();
        for a in &PREPARED.0 {
            if a.name.ends_with(".js") || a.name.ends_with(".css") || a.name.ends_with(".svg") {
                assert!(
                    shell.contains(&format!("/assets/{}?v={}\"", a.name, a.hash)),
                    "{} not versioned in the shell",
                    a.name
                );
            }
        }
        assert!(shell.contains("name=\"viewport\""));
    }

    #[test]
    fn no_asset_names_anything_off_the_host() {
        // (The icon's SVG namespace is a name, not a request.)
        let texts = FILES
            .iter()
            .filter(|a| a.name != "icon.svg")
            .map(|a| a.body);
        for a in texts.chain([SHELL.as_bytes()]) {
            let text = String::from_utf8_lossy(a);
            for scheme in [
                "http://",
                "https://",
                "//cdn",
                "innerHTML",
                "outerHTML",
                "eval(",
            ] {
                assert!(!text.contains(scheme), "an asset contains {scheme:?}");
            }
        }
    }

    #[test]
    fn etags_match_weakly_and_by_star() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"abc\", W/\"xyz\""))
            .to_http_request();
        assert!(not_modified(&req, "W/\"abc\""));
        assert!(not_modified(&req, "W/\"xyz\""));
        assert!(!not_modified(&req, "W/\"other\""));
        let star = actix_web::test::TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "*"))
            .to_http_request();
        assert!(not_modified(&star, "W/\"q\""));
    }
}
