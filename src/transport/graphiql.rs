//! GraphiQL, self-hosted: `GET /graphql` from a browser gets a page whose every script and style
//! is served by this binary under `/graphiql/`, from pinned production builds installed in
//! `WEB_DIR/graphiql` (`npm ci` there; scripts/run and scripts/test do it). No request leaves the
//! machine, so it works offline. Read once at start; without them the page says how to install
//! them. Off in production.

use std::collections::HashMap;
use std::path::Path;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;

/// Each asset: its name under `/graphiql/`, its file in the installed packages, its type.
const ASSETS: [(&str, &str, &str); 5] = [
    (
        "react.js",
        "node_modules/react/umd/react.production.min.js",
        "text/javascript",
    ),
    (
        "react-dom.js",
        "node_modules/react-dom/umd/react-dom.production.min.js",
        "text/javascript",
    ),
    (
        "graphql-ws.js",
        "node_modules/graphql-ws/umd/graphql-ws.min.js",
        "text/javascript",
    ),
    (
        "graphiql.js",
        "node_modules/graphiql/graphiql.min.js",
        "text/javascript",
    ),
    (
        "graphiql.css",
        "node_modules/graphiql/graphiql.min.css",
        "text/css",
    ),
];

/// The assets, in memory.
pub struct Graphiql {
    files: HashMap<&'static str, (Bytes, &'static str)>,
}

impl Graphiql {
    /// Reads the assets under `dir` (WEB_DIR/graphiql); None when any is missing.
    pub fn load(dir: &Path) -> Option<Self> {
        let mut files = HashMap::new();
        for (name, file, content_type) in ASSETS {
            match std::fs::read(dir.join(file)) {
                Ok(bytes) => {
                    files.insert(name, (Bytes::from(bytes), content_type));
                }
                Err(err) => {
                    tracing::info!(
                        dir = %dir.display(), file, %err,
                        "GraphiQL assets not installed; run `npm ci` in web/graphiql"
                    );
                    return None;
                }
            }
        }
        Some(Self { files })
    }
}

/// `GET /graphiql/{file}`.
pub async fn asset(State(state): State<AppState>, UrlPath(file): UrlPath<String>) -> Response {
    let found = state
        .graphiql
        .as_ref()
        .filter(|_| !state.limits.production)
        .and_then(|g| g.files.get(file.as_str()));
    match found {
        Some((bytes, content_type)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            bytes.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The page: GraphiQL against `/graphql`, subscriptions over `/graphql/ws` with the credentials
/// of the headers tab (`Authorization`, `Queue-Token`) as `connection_init`.
pub fn page(installed: bool) -> Response {
    if !installed {
        return Html(MISSING).into_response();
    }
    Html(PAGE).into_response()
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Encore GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/graphiql.css">
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphiql/react.js"></script>
  <script src="/graphiql/react-dom.js"></script>
  <script src="/graphiql/graphql-ws.js"></script>
  <script src="/graphiql/graphiql.js"></script>
  <script>
    // The headers tab is the one place credentials are typed; websockets send them in
    // connection_init.
    function credentials() {
      try {
        const h = JSON.parse(localStorage.getItem("graphiql:headers") || "{}");
        return { authorization: h.Authorization || h.authorization, queueToken: h["Queue-Token"] || h["queue-token"] };
      } catch (e) {
        return {};
      }
    }
    const ws = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql/ws";
    const fetcher = GraphiQL.createFetcher({
      url: "/graphql",
      wsClient: graphqlWs.createClient({ url: ws, lazy: true, connectionParams: credentials }),
    });
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {
        fetcher,
        shouldPersistHeaders: true,
        defaultQuery: "{ concerts { id title venue dates onSale } }\n",
      }),
    );
  </script>
</body>
</html>
"#;

const MISSING: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Encore GraphiQL</title></head>
<body>
  <h1>GraphiQL is not installed on this server</h1>
  <p>Its pinned builds are installed with <code>npm ci</code> in <code>web/graphiql</code>
  (<code>scripts/run</code> does it when Node.js is present), or point <code>WEB_DIR</code> at a
  directory holding them. The API itself works: POST GraphQL to <code>/graphql</code>.</p>
</body>
</html>
"#;
