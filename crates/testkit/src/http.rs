//! A loopback HTTP server for tests: serves folders and programmable routes (status codes,
//! redirects and loops, slow, huge or endless bodies, gzip and gzip bombs, wrong content
//! types, failures that recover after n tries), started on port 0, with a request log.
//!
//! It runs on its own thread and runtime, so sync and async tests use it alike; dropping the
//! server stops it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// The body of a reply.
#[derive(Debug, Clone)]
enum Body {
    Bytes(Bytes),
    /// `pattern` repeated up to `total` bytes, or forever when `None`.
    Repeat {
        pattern: Bytes,
        total: Option<u64>,
    },
}

/// A programmable response.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    gzip: bool,
    /// Wait before the status line.
    delay: Option<Duration>,
    /// Send the body in pieces of `chunk` bytes, `interval` apart.
    trickle: Option<(usize, Duration)>,
}

impl Reply {
    /// `status` with an empty body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Bytes::new()),
            gzip: false,
            delay: None,
            trickle: None,
        }
    }

    /// 200 with `body` as `content_type`.
    pub fn ok(content_type: &str, body: impl Into<Bytes>) -> Self {
        Self::status(200).header("content-type", content_type).body(body)
    }

    pub fn html(body: impl Into<Bytes>) -> Self {
        Self::ok("text/html; charset=utf-8", body)
    }

    pub fn rss(body: impl Into<Bytes>) -> Self {
        Self::ok("application/rss+xml", body)
    }

    pub fn text(body: impl Into<Bytes>) -> Self {
        Self::ok("text/plain; charset=utf-8", body)
    }

    pub fn not_found() -> Self {
        Self::status(404).header("content-type", "text/plain").body("not found")
    }

    /// A redirect with `status` (301, 302, 303, 307, 308) to `location`, relative or absolute.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::status(status).header("location", location)
    }

    /// `total` bytes of `content_type`, made as they are sent (no buffer of that size).
    pub fn huge(content_type: &str, total: u64) -> Self {
        Self::status(200)
            .header("content-type", content_type)
            .with_body(Body::Repeat { pattern: Bytes::from(vec![b'a'; 64 * 1024]), total: Some(total) })
    }

    /// A body that never ends.
    pub fn endless(content_type: &str) -> Self {
        Self::status(200)
            .header("content-type", content_type)
            .with_body(Body::Repeat { pattern: Bytes::from(vec![b'a'; 64 * 1024]), total: None })
    }

    /// A small gzip body (`content-encoding: gzip`) that inflates to `decoded` bytes of zeros.
    pub fn gzip_bomb(content_type: &str, decoded: u64) -> Self {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 1 << 20];
        let mut left = decoded;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            // Writing to a Vec cannot fail.
            enc.write_all(&block[..n]).ok();
            left -= n as u64;
        }
        let compressed = enc.finish().unwrap_or_default();
        Self::ok(content_type, compressed).header("content-encoding", "gzip")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn body(self, body: impl Into<Bytes>) -> Self {
        self.with_body(Body::Bytes(body.into()))
    }

    fn with_body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// Compress the body with gzip and say so in `content-encoding`.
    pub fn gzip(mut self) -> Self {
        self.gzip = true;
        self
    }

    /// Wait `delay` before answering. A zero delay answers at once: a timer of zero would
    /// still wait for the runtime's next tick, up to a millisecond.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Send the body `chunk` bytes at a time, `interval` apart.
    pub fn slow(mut self, chunk: usize, interval: Duration) -> Self {
        self.trickle = Some((chunk.max(1), interval));
        self
    }
}

/// What a path answers.
enum Route {
    Fixed(Reply),
    /// Replies in turn; the last one repeats.
    Sequence(Vec<Reply>),
    Dynamic(Box<dyn Fn(&Request) -> Reply + Send + Sync>),
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    hits: HashMap<String, usize>,
    dirs: Vec<(String, PathBuf)>,
    log: Vec<Request>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic in another test thread must not hide this test's log.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running loopback server.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).finish()
    }
}

impl TestServer {
    /// Starts a server on `127.0.0.1:0` with no routes.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    addr_tx.send(Err(e.to_string())).ok();
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => {
                        addr_tx.send(Err(e.to_string())).ok();
                        return;
                    }
                };
                addr_tx.send(listener.local_addr().map_err(|e| e.to_string())).ok();
                let mut stop_rx = stop_rx;
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = served.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| {
                                    let state = state.clone();
                                    async move { Ok::<_, Infallible>(handle(&state, req).await) }
                                });
                                // A client that hangs up mid-body is normal in these tests.
                                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                            });
                        }
                    }
                }
            });
            // Endless bodies still streaming are cancelled with the runtime.
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = match addr_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("test HTTP server could not start: {e}"),
            Err(_) => panic!("test HTTP server thread died before it started"),
        };
        Self { addr, state, stop: Some(stop_tx), thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answers `path` (with its query, if given; else any query) with `reply`.
    pub fn route(&self, path: &str, reply: Reply) -> &Self {
        lock(&self.state).routes.insert(path.to_string(), Route::Fixed(reply));
        self
    }

    /// Answers `path` with `replies` in turn, the last one for every later request.
    pub fn sequence(&self, path: &str, replies: Vec<Reply>) -> &Self {
        lock(&self.state).routes.insert(path.to_string(), Route::Sequence(replies));
        self
    }

    /// `failures` times `failure`, then `then` for good: a service that recovers.
    pub fn fail_then(&self, path: &str, failures: usize, failure: Reply, then: Reply) -> &Self {
        let mut replies = vec![failure; failures];
        replies.push(then);
        self.sequence(path, replies)
    }

    /// Answers `path` with whatever `f` makes of the request.
    pub fn dynamic(&self, path: &str, f: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> &Self {
        lock(&self.state).routes.insert(path.to_string(), Route::Dynamic(Box::new(f)));
        self
    }

    /// Serves the files under `dir` at `prefix` (`/corpus/` serves `dir/a.html` as
    /// `/corpus/a.html`), with a content type from the extension.
    pub fn serve_dir(&self, prefix: &str, dir: impl AsRef<Path>) -> &Self {
        let prefix = if prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        lock(&self.state).dirs.push((prefix, dir.as_ref().to_path_buf()));
        self
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).log.clone()
    }

    /// How many requests asked for `path` (without query).
    pub fn hits(&self, path: &str) -> usize {
        lock(&self.state).hits.get(path).copied().unwrap_or(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

type Resp = hyper::Response<BoxBody<Bytes, Infallible>>;

async fn handle(state: &Mutex<State>, req: hyper::Request<hyper::body::Incoming>) -> Resp {
    let path_and_query =
        req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let path = req.uri().path().to_string();
    let record = Request {
        method: req.method().to_string(),
        path: path_and_query.clone(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        at: Instant::now(),
    };
    let reply = {
        let mut st = lock(state);
        st.log.push(record.clone());
        let hit = {
            let n = st.hits.entry(path.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let route = st.routes.get(&path_and_query).or_else(|| st.routes.get(&path));
        match route {
            Some(Route::Fixed(r)) => Some(r.clone()),
            Some(Route::Sequence(rs)) => rs.get(hit - 1).or(rs.last()).cloned(),
            Some(Route::Dynamic(f)) => Some(f(&record)),
            None => None,
        }
        .or_else(|| file_reply(&st.dirs, &path))
        .unwrap_or_else(Reply::not_found)
    };
    if let Some(delay) = reply.delay.filter(|d| !d.is_zero()) {
        tokio::time::sleep(delay).await;
    }
    respond(reply)
}

fn file_reply(dirs: &[(String, PathBuf)], path: &str) -> Option<Reply> {
    for (prefix, dir) in dirs {
        let Some(rest) = path.strip_prefix(prefix.as_str()) else { continue };
        let rel = Path::new(rest);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Some(Reply::status(400));
        }
        let file = dir.join(rel);
        if let Ok(bytes) = std::fs::read(&file) {
            return Some(Reply::ok(content_type_of(&file), bytes));
        }
    }
    None
}

fn content_type_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "rss" => "application/rss+xml",
        "atom" => "application/atom+xml",
        "xml" => "application/xml",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

fn respond(reply: Reply) -> Resp {
    let mut builder = hyper::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k, v);
    }
    let body: BoxBody<Bytes, Infallible> = match (reply.body, reply.gzip) {
        (Body::Bytes(bytes), gzip) => {
            let bytes = if gzip {
                builder = builder.header("content-encoding", "gzip");
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&bytes).ok();
                Bytes::from(enc.finish().unwrap_or_default())
            } else {
                bytes
            };
            match reply.trickle {
                None => {
                    builder = builder.header("content-length", bytes.len().to_string());
                    http_body_util::Full::new(bytes).boxed()
                }
                Some((chunk, interval)) => {
                    let pieces: Vec<Bytes> = bytes.chunks(chunk).map(Bytes::copy_from_slice).collect();
                    let stream = futures::stream::iter(pieces).then(move |piece| async move {
                        tokio::time::sleep(interval).await;
                        Ok::<_, Infallible>(Frame::data(piece))
                    });
                    BodyExt::boxed(StreamBody::new(stream))
                }
            }
        }
        (Body::Repeat { pattern, total }, _) => {
            let interval = reply.trickle.map(|(_, i)| i);
            let stream = futures::stream::unfold(0u64, move |sent| {
                let pattern = pattern.clone();
                async move {
                    if total.is_some_and(|t| sent >= t) {
                        return None;
                    }
                    if let Some(i) = interval {
                        tokio::time::sleep(i).await;
                    }
                    let n = total.map_or(pattern.len() as u64, |t| (t - sent).min(pattern.len() as u64));
                    let piece = pattern.slice(..n as usize);
                    Some((Ok::<_, Infallible>(Frame::data(piece)), sent + n))
                }
            });
            BodyExt::boxed(StreamBody::new(stream))
        }
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut r = hyper::Response::new(http_body_util::Full::new(Bytes::from_static(b"bad reply")).boxed());
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
