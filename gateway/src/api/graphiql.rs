//! GraphiQL on `GET /graphql`, served from the binary so it works on a
//! network without internet: our own page, React, ReactDOM and GraphiQL's
//! UMD bundle (`gateway/assets/graphiql/`, README there says which versions
//! and how to refresh them) under `GET /graphql/assets/{name}`.
//!
//! The page links each asset as `/graphql/assets/<name>?v=<hash>`, the hash
//! being the start of the file's SHA-256. A request carrying the current hash
//! may be cached for a year (`immutable`); any other (no `v`, an old one) gets
//! a short `max-age`, so an upgraded gateway is never hidden behind a stale
//! copy. The page itself is `no-cache`, so a browser sees new hashes at once.
//!
//! The routes need no state; [`routes`] is generic over it so this module does
//! not depend on [`super::http`], which merges them.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The page's Content-Security-Policy: everything from this origin, nothing
/// inline but styles. GraphiQL (CodeMirror, its resizable panes, Radix's
/// dialogs) sets `style` attributes and injects `<style>` elements, which
/// `style-src` must allow with `'unsafe-inline'`; scripts stay `'self'` only,
/// which is why the start-up code is a file (`graphiql-init.js`).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
     font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `Cache-Control` of an asset requested with its current hash.
const CACHE_VERSIONED: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of an asset requested without it (or with an old one).
const CACHE_UNVERSIONED: &str = "public, max-age=300";

/// `Content-Type` of the JavaScript assets.
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// `Content-Type` of the stylesheets.
const CSS: &str = "text/css; charset=utf-8";

/// One file served under `/graphql/assets/`.
struct Asset {
    /// The file name, in the URL and in `gateway/assets/graphiql/`.
    name: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes, compiled into the binary.
    bytes: &'static [u8],
}

/// Embeds `gateway/assets/graphiql/$name` as an [`Asset`].
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/graphiql/",
                $name
            )),
        }
    };
}

/// Every asset, in the order the page loads them: stylesheets, then the
/// scripts (React before ReactDOM before GraphiQL before our start-up code).
/// Our own files are named `graphiql-*`; the others are vendored as npm ships
/// them (the README's table, checked by a test below).
const ASSETS: &[Asset] = &[
    asset!("graphiql.min.css", CSS),
    asset!("graphiql-page.css", CSS),
    asset!("react.production.min.js", JAVASCRIPT),
    asset!("react-dom.production.min.js", JAVASCRIPT),
    asset!("graphiql.min.js", JAVASCRIPT),
    asset!("graphiql-init.js", JAVASCRIPT),
];

/// Each asset's version: the first 16 hex digits of its SHA-256, in the
/// order of [`ASSETS`]. Computed once, at the first GraphiQL request.
static VERSIONS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| version_of(a.bytes)).collect());

/// The page, built once from [`ASSETS`] and [`VERSIONS`].
static PAGE: LazyLock<String> = LazyLock::new(page_html);

/// The version of some bytes as it appears in an asset URL.
fn version_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The URL of the asset at `index` in [`ASSETS`], with its version.
fn asset_url(index: usize) -> String {
    format!(
        "/graphql/assets/{}?v={}",
        ASSETS[index].name, VERSIONS[index]
    )
}

/// Our markup: the stylesheets in the head, a container GraphiQL replaces,
/// the scripts at the end of the body. No inline script, no other origin.
fn page_html() -> String {
    let mut styles = String::new();
    let mut scripts = String::new();
    for (index, asset) in ASSETS.iter().enumerate() {
        let url = asset_url(index);
        if asset.content_type == CSS {
            styles.push_str(&format!("  <link rel=\"stylesheet\" href=\"{url}\">\n"));
        } else {
            scripts.push_str(&format!("  <script src=\"{url}\"></script>\n"));
        }
    }
    format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         \x20 <meta charset=\"utf-8\">\n\
         \x20 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         \x20 <title>changewire GraphiQL</title>\n\
         {styles}\
         </head>\n\
         <body>\n\
         \x20 <div id=\"graphiql\">Loading GraphiQL…</div>\n\
         \x20 <noscript>GraphiQL needs JavaScript. The API itself is POST /graphql.</noscript>\n\
         {scripts}\
         </body>\n\
         </html>\n"
    )
}

/// `GET /graphql` (the page) and `GET /graphql/assets/{name}`; merged into
/// the API router, whose `POST /graphql` shares the first path.
pub(crate) fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/graphql", get(page))
        .route("/graphql/assets/{name}", get(asset))
}

/// The page, with its Content-Security-Policy.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

/// The query of an asset request.
#[derive(Deserialize)]
struct AssetQuery {
    /// The version the page linked (see the module doc).
    v: Option<String>,
}

/// One asset by name; 404 for a name not in [`ASSETS`].
async fn asset(Path(name): Path<String>, Query(query): Query<AssetQuery>) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such GraphiQL asset\n").into_response();
    };
    let asset = &ASSETS[index];
    let cache = if query.v.as_deref() == Some(VERSIONS[index].as_str()) {
        CACHE_VERSIONED
    } else {
        CACHE_UNVERSIONED
    };
    let headers: [(HeaderName, &'static str); 3] = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored files are the ones `gateway/assets/graphiql/README.md`
    /// names: each third-party asset's SHA-256 is on its line there, so a
    /// refresh that forgets the README (or the README a refresh) fails here.
    #[test]
    fn the_readme_names_each_vendored_file_with_its_sha256() {
        let readme = include_str!("../../assets/graphiql/README.md");
        for asset in ASSETS.iter().filter(|a| !a.name.starts_with("graphiql-")) {
            let sha: String = Sha256::digest(asset.bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let line = readme
                .lines()
                .find(|l| l.contains(&format!("`{}`", asset.name)))
                .unwrap_or_else(|| panic!("README.md has no line for `{}`", asset.name));
            assert!(line.contains(&sha), "README.md: `{}` is {sha}", asset.name);
        }
    }
}
