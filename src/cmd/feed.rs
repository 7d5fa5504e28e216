//! `lector feed <url|file> [--json]`: print a feed and its posts.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use lector_pipeline::feed::{Feed, parse_feed};
use lector_pipeline::fetch::{AllowList, Backoff, FetchPolicy, Fetcher, Resource};
use serde::Serialize;
use url::Url;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The feed's address (http or https), or a file.
    pub source: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

/// Options for fetching what the user names.
#[derive(Debug, Clone, clap::Args)]
pub struct FetchArgs {
    /// Hosts, addresses or networks that may be fetched although private or loopback
    /// (repeat, or separate with commas).
    #[arg(long = "allow-host", env = "LECTOR_ALLOW_HOSTS", value_delimiter = ',', value_name = "HOST")]
    pub allow_host: Vec<String>,
}

impl FetchArgs {
    pub fn fetcher(&self) -> anyhow::Result<Fetcher> {
        let allow = AllowList::parse(&self.allow_host.join(","))?;
        Ok(Fetcher::new(FetchPolicy { allow, ..FetchPolicy::default() })?)
    }
}

/// What was read: its bytes, the charset a server declared, and its address when fetched.
#[derive(Debug)]
pub struct Loaded {
    pub url: Option<Url>,
    pub charset: Option<String>,
    pub body: Vec<u8>,
}

/// Fetches `source` when it is an address (any `scheme://`, so that `file://` is refused by
/// name rather than read), else reads it as a file, within the same size limit.
pub fn load(source: &str, what: Resource, fetch: &FetchArgs) -> anyhow::Result<Loaded> {
    if source.contains("://") {
        let fetcher = fetch.fetcher()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let got = runtime.block_on(fetcher.fetch_retrying(source, what, Backoff::default()))?;
        return Ok(Loaded { url: Some(got.url), charset: got.charset, body: got.body.to_vec() });
    }
    let path = Path::new(source);
    let size = std::fs::metadata(path).with_context(|| format!("cannot read {source}"))?.len();
    anyhow::ensure!(
        size <= what.max_bytes(),
        "{source} is larger than the limit of {} bytes",
        what.max_bytes()
    );
    let body = std::fs::read(path).with_context(|| format!("cannot read {source}"))?;
    Ok(Loaded { url: None, charset: None, body })
}

#[derive(Serialize)]
struct PostView<'a> {
    id: &'a str,
    title: Option<&'a str>,
    url: Option<&'a str>,
    published: Option<String>,
    author: Option<&'a str>,
    words: usize,
    full_text: bool,
}

#[derive(Serialize)]
struct FeedView<'a> {
    title: Option<&'a str>,
    link: Option<&'a str>,
    format: &'a str,
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    repairs: &'a [String],
    posts: Vec<PostView<'a>>,
}

fn view(feed: &Feed) -> FeedView<'_> {
    FeedView {
        title: feed.title.as_deref(),
        link: feed.link.as_ref().map(Url::as_str),
        format: &feed.format,
        language: feed.language.as_deref(),
        repairs: &feed.repairs,
        posts: feed
            .posts
            .iter()
            .map(|p| PostView {
                id: &p.id,
                title: p.title.as_deref(),
                url: p.url.as_ref().map(Url::as_str),
                published: p.published.map(|d| d.to_rfc3339()),
                author: p.author.as_deref(),
                words: p.words,
                full_text: p.full_text,
            })
            .collect(),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.source, Resource::Feed, &args.fetch)?;
    let feed = parse_feed(&loaded.body, loaded.url.as_ref(), loaded.charset.as_deref())
        .with_context(|| format!("cannot read the feed {}", args.source))?;
    let v = view(&feed);
    if args.json {
        return emit(&serde_json::to_string_pretty(&v)?);
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}", v.title.unwrap_or("(untitled feed)"));
    if let Some(link) = v.link {
        let _ = writeln!(out, "{link}");
    }
    let _ = writeln!(out, "{} posts ({})", v.posts.len(), v.format);
    for r in v.repairs {
        let _ = writeln!(out, "repaired: {r}");
    }
    for (i, p) in v.posts.iter().enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{:>3}. {}", i + 1, p.title.unwrap_or("(untitled)"));
        let mut facts = vec![];
        if let Some(d) = &p.published {
            facts.push(d.clone());
        }
        if let Some(a) = p.author {
            facts.push(a.to_string());
        }
        facts.push(format!("{} words", p.words));
        facts.push(if p.full_text { "full text in feed".into() } else { "summary only".into() });
        let _ = writeln!(out, "     {}", facts.join(" · "));
        if let Some(u) = p.url {
            let _ = writeln!(out, "     {u}");
        }
        let _ = writeln!(out, "     id: {}", p.id);
    }
    emit(out.trim_end())
}

/// Prints `text` and a newline; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use lector_testkit::http::{Reply, TestServer};

    use super::*;

    fn allow(hosts: &[&str]) -> FetchArgs {
        FetchArgs { allow_host: hosts.iter().map(|h| h.to_string()).collect() }
    }

    #[test]
    fn addresses_are_fetched_only_when_allowed_and_files_are_read() {
        let server = TestServer::start();
        server
            .route("/feed.xml", Reply::rss("<rss version=\"2.0\"><channel><title>T</title></channel></rss>"));
        let url = server.url("/feed.xml");
        let refused = load(&url, Resource::Feed, &allow(&[])).unwrap_err();
        assert!(refused.to_string().contains("--allow-host"), "{refused}");
        assert_eq!(server.hits("/feed.xml"), 0);
        let got = load(&url, Resource::Feed, &allow(&["127.0.0.1"])).unwrap();
        assert_eq!(got.url.as_ref().map(Url::as_str), Some(url.as_str()));
        assert!(parse_feed(&got.body, got.url.as_ref(), None).is_ok());

        let refused = load("file:///etc/hostname", Resource::Feed, &allow(&["127.0.0.1"])).unwrap_err();
        assert!(refused.to_string().contains("only http and https"), "{refused}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("feed.xml");
        std::fs::write(&file, "<rss version=\"2.0\"><channel><title>T</title></channel></rss>").unwrap();
        assert!(load(file.to_str().unwrap(), Resource::Feed, &allow(&[])).unwrap().url.is_none());
        assert!(load("/no/such/file.xml", Resource::Feed, &allow(&[])).is_err());
    }

    #[test]
    fn the_json_view_names_each_posts_fields() {
        let xml = "<rss version=\"2.0\"><channel><title>T</title><item><title>A</title><link>https://b.test/a</link>\
                   <description>one two three</description></item></channel></rss>";
        let feed = parse_feed(xml.as_bytes(), None, None).unwrap();
        let json = serde_json::to_value(view(&feed)).unwrap();
        assert_eq!(json["posts"][0]["title"], "A");
        assert_eq!(json["posts"][0]["url"], "https://b.test/a");
        assert_eq!(json["posts"][0]["id"], "https://b.test/a");
        assert_eq!(json["posts"][0]["words"], 3);
        assert_eq!(json["posts"][0]["full_text"], false);
    }
}
