//! `lector serve`.

use std::net::SocketAddr;
use std::process::ExitCode;

use lector_pipeline::fetch::AllowList;
use url::Url;

use crate::cmd::feed::FetchArgs;
use crate::data::{DataArgs, runtime};
use crate::serve::{SAMPLE_FEED_PATH, ServeOptions, Server};
use crate::voices::VoiceArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The bearer token writes need. Required to listen beyond loopback.
    #[arg(long, env = "LECTOR_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The public address of this server, for links in answers (default: the request's Host).
    #[arg(long, env = "LECTOR_PUBLIC_URL")]
    pub public_url: Option<Url>,
    /// The owner of the podcast feeds whose subscriptions name none: Apple Podcasts requires
    /// an owner's name and email.
    #[arg(long, env = "LECTOR_PODCAST_OWNER_NAME", requires = "podcast_owner_email")]
    pub podcast_owner_name: Option<String>,
    #[arg(long, env = "LECTOR_PODCAST_OWNER_EMAIL", requires = "podcast_owner_name")]
    pub podcast_owner_email: Option<String>,
    /// The secret WebSub hubs sign pushes with (each feed gets its own, derived from it). With
    /// --public-url, feeds that name a hub are pushed to this server; without, only polled.
    #[arg(long, env = "LECTOR_WEBSUB_SECRET", hide_env_values = true, requires = "public_url")]
    pub websub_secret: Option<String>,
    /// How often the poller looks for subscribed feeds that are due, in seconds.
    #[arg(long, env = "LECTOR_POLL_EVERY", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub poll_every: u64,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub voices: VoiceArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let options = ServeOptions {
            addr: args.addr,
            data: args.data.dir.clone(),
            allow_hosts: AllowList::parse(&args.fetch.allow_host.join(","))?,
            token: args.token.clone(),
            public_url: args.public_url.clone(),
            voice: Some(args.voices.setup(&args.data.dir).await?),
            podcast_owner: match (&args.podcast_owner_name, &args.podcast_owner_email) {
                (Some(name), Some(email)) => {
                    Some(lector_core::feed::event::PodcastOwner { name: name.clone(), email: email.clone() })
                }
                _ => None,
            },
            poll_every: Some(std::time::Duration::from_secs(args.poll_every)),
            websub: match (&args.public_url, &args.websub_secret) {
                (Some(url), Some(secret)) => Some(
                    lector_pipeline::websub::WebSubConfig::new(url.clone(), secret.clone())
                        .map_err(|e| anyhow::anyhow!("LECTOR_WEBSUB_SECRET: {e}"))?,
                ),
                _ => None,
            },
        };
        let summary = options.voice.as_ref().map(|v| v.summary.clone()).unwrap_or_default();
        let server = Server::start(options).await?;
        // The first line of stdout is the address, for scripts and tests that listen on port 0.
        println!("listening on {}", server.url());
        eprintln!("Lector is running: open {}/ in a browser.", server.url());
        eprintln!("Try the sample feed: {}{SAMPLE_FEED_PATH}", server.url());
        eprintln!("{summary}.");
        eprintln!(
            "Data in {}. Ctrl-C stops (unfinished conversions resume at the next start).",
            args.data.dir.display()
        );
        shutdown_signal().await;
        eprintln!("stopping…");
        server.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
