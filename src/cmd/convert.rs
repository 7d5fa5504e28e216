//! `lector convert`: convert a feed's posts, or one post, to MP3 on the embedded default, through
//! the real workflow on the local engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use lector_core::ports::Voice;
use lector_core::{ConversionId, ConversionState, ConversionStatus, ObjectKey, Stage, VoiceEngine, VoiceId};
use lector_pipeline::feed::{Feed, FeedError, Post, parse_feed};
use lector_pipeline::fetch::{AllowList, Resource};
use lector_pipeline::submit::{Submission, submit};
use lector_pipeline::timeline::Timeline;
use serde::Serialize;
use url::Url;

use crate::cmd::feed::{FetchArgs, load};
use crate::data::{DataArgs, runtime};
use crate::local::{LocalOptions, LocalSystem};
use crate::voices::VoiceArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A feed or a post: an http(s) address or a file.
    pub source: String,
    /// Convert the feed's Nth post (1 is the first the feed lists).
    #[arg(long, conflicts_with_all = ["latest", "all"])]
    pub post: Option<usize>,
    /// Convert the feed's most recent post (the default).
    #[arg(long, conflicts_with = "all")]
    pub latest: bool,
    /// Convert every post of the feed.
    #[arg(long)]
    pub all: bool,
    /// Where to write the MP3 files.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out: PathBuf,
    /// The voice (`GET /voices` of `lector serve` lists them); by default one for the feed's
    /// language on the engine.
    #[arg(long)]
    pub voice: Option<String>,
    #[command(flatten)]
    pub voices: VoiceArgs,
    /// Print one JSON line per post: conversion_id, state, audio, duration_seconds, error.
    #[arg(long)]
    pub json: bool,
    /// Give up waiting after this many seconds (the conversions go on at the next start).
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub timeout: u64,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

/// One line of the result.
#[derive(Debug, Serialize)]
struct Outcome {
    conversion_id: Option<String>,
    title: Option<String>,
    state: String,
    audio: Option<PathBuf>,
    duration_seconds: Option<f64>,
    error: Option<String>,
}

/// A post to convert.
struct Pick {
    title: Option<String>,
    post_url: Url,
    feed_url: Option<Url>,
    feed_title: Option<String>,
    feed_language: Option<String>,
    content_html: Option<String>,
    post: Option<lector_core::event::PostInfo>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let picks = pick(&args)?;
    if picks.is_empty() {
        anyhow::bail!("the feed has no posts to convert");
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let allow = AllowList::parse(&args.fetch.allow_host.join(","))?;
    let rt = runtime()?;
    let outcomes = rt.block_on(convert(&args, allow, picks))?;
    let mut failed = false;
    for outcome in &outcomes {
        failed |= outcome.state != ConversionState::Completed.as_str();
        if args.json {
            println!("{}", serde_json::to_string(outcome)?);
        } else {
            let title = outcome.title.as_deref().unwrap_or("(untitled)");
            match (&outcome.audio, &outcome.error) {
                (Some(audio), _) => println!(
                    "{}  completed  {:>7.1} s  {}  {title}",
                    outcome.conversion_id.as_deref().unwrap_or("-"),
                    outcome.duration_seconds.unwrap_or_default(),
                    audio.display()
                ),
                (None, error) => println!(
                    "{}  {}  {title}: {}",
                    outcome.conversion_id.as_deref().unwrap_or("-"),
                    outcome.state,
                    error.as_deref().unwrap_or("no reason recorded")
                ),
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The posts the arguments name.
fn pick(args: &Args) -> anyhow::Result<Vec<Pick>> {
    let loaded = load(&args.source, Resource::Feed, &args.fetch)?;
    let source_url = match &loaded.url {
        Some(url) => url.clone(),
        None => {
            let path = std::fs::canonicalize(&args.source)
                .with_context(|| format!("cannot read {}", args.source))?;
            Url::from_file_path(&path)
                .map_err(|()| anyhow::anyhow!("{} has no file address", path.display()))?
        }
    };
    match parse_feed(&loaded.body, Some(&source_url), loaded.charset.as_deref()) {
        Ok(feed) => pick_posts(args, &feed, &source_url),
        // A feed that is broken beyond repair is an error, not a page to narrate.
        Err(error @ FeedError::Malformed(_)) => {
            Err(anyhow::anyhow!("{source}: {error}", source = args.source))
        }
        Err(feed_error) => {
            // Not a feed: one post. A page from the web is fetched again by the workflow; a file
            // travels as the post's content, since the workflow only fetches http(s).
            let content_html = match loaded.url {
                Some(_) => None,
                None => Some(lector_pipeline::fetch::decode_html(&loaded.body, None)),
            };
            tracing::debug!(%feed_error, "not a feed; converting it as a post");
            Ok(vec![Pick {
                title: None,
                post_url: source_url,
                feed_url: None,
                feed_title: None,
                feed_language: None,
                content_html,
                post: None,
            }])
        }
    }
}

fn pick_posts(args: &Args, feed: &Feed, feed_url: &Url) -> anyhow::Result<Vec<Pick>> {
    let chosen: Vec<&Post> = if args.all {
        feed.posts.iter().collect()
    } else if let Some(n) = args.post {
        let post = feed
            .posts
            .get(n.checked_sub(1).context("posts are numbered from 1")?)
            .with_context(|| format!("the feed has {} posts; there is no post {n}", feed.posts.len()))?;
        vec![post]
    } else {
        // The latest by date, or the first listed when the feed gives no dates.
        let latest = feed.posts.iter().enumerate().max_by_key(|(i, p)| (p.published, std::cmp::Reverse(*i)));
        latest.map(|(_, p)| p).into_iter().collect()
    };
    chosen
        .into_iter()
        .map(|post| {
            let post_url = match &post.url {
                Some(url) => url.clone(),
                // A post without an address is known by the feed and its id.
                None if post.full_text => {
                    let mut url = feed_url.clone();
                    url.query_pairs_mut().append_pair("lector-post", &post.id);
                    url
                }
                None => anyhow::bail!("post '{}' has neither an address nor its text in the feed", post.id),
            };
            Ok(Pick {
                title: post.title.clone(),
                post_url,
                feed_url: Some(feed_url.clone()),
                feed_title: feed.title.clone(),
                feed_language: feed.language.clone(),
                content_html: post.content_html.clone().filter(|_| post.full_text),
                post: Some(lector_api::conversions::post_info(post)),
            })
        })
        .collect()
}

async fn convert(args: &Args, allow: AllowList, picks: Vec<Pick>) -> anyhow::Result<Vec<Outcome>> {
    let setup = args.voices.setup(&args.data.dir).await?;
    let local = LocalOptions { voice: setup.voice.clone(), ..LocalOptions::new(allow) };
    let system = LocalSystem::start(&args.data.dir, local).await?;
    let engine = setup.default_engine;
    let voice = choose_voice(&*system.ports.voice, args.voice.as_deref(), engine).await?;
    let mut ids = Vec::new();
    for pick in &picks {
        let submitted = submit(
            system.events(),
            system.objects(),
            &*system.ports.clock,
            Submission {
                feed_url: pick.feed_url.clone(),
                feed_title: pick.feed_title.clone(),
                feed_language: pick.feed_language.clone(),
                title: pick.title.clone(),
                content_html: pick.content_html.clone(),
                post: pick.post.clone(),
                ..Submission::new(pick.post_url.clone(), voice.clone(), engine, "cli")
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(submitted.conversion_id);
    }
    let statuses = follow(&system, &ids, args).await?;
    let mut outcomes = Vec::new();
    for (id, status) in ids.iter().zip(statuses) {
        outcomes.push(outcome(&system, id, status, &args.out).await?);
    }
    system.shutdown().await;
    Ok(outcomes)
}

/// The voice to use: the one asked for, if the engine has it, else `auto` (the engine's voice
/// that speaks each article's language).
async fn choose_voice(
    voice: &dyn Voice,
    asked: Option<&str>,
    engine: VoiceEngine,
) -> anyhow::Result<VoiceId> {
    let Some(name) = asked.filter(|n| !VoiceId::new(*n).is_auto()) else { return Ok(VoiceId::auto()) };
    let voices = voice.voices().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    voices
        .iter()
        .find(|v| v.id.as_str().eq_ignore_ascii_case(name) && v.engines.contains(&engine))
        .map(|v| v.id.clone())
        .with_context(|| {
            format!("the {engine} engine has no voice '{name}'; `GET /voices` of `lector serve` lists them")
        })
}

/// Wait until every conversion is completed or failed, with a progress bar each.
async fn follow(
    system: &LocalSystem,
    ids: &[ConversionId],
    args: &Args,
) -> anyhow::Result<Vec<Option<ConversionStatus>>> {
    let bars = MultiProgress::new();
    if args.json {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} {msg}")
        .context("progress bar template")?
        .progress_chars("=> ");
    let progress: Vec<ProgressBar> = ids
        .iter()
        .map(|id| {
            let bar = bars.add(ProgressBar::new(1).with_style(style.clone()));
            bar.set_prefix(id.as_str()[..8].to_owned());
            bar
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let mut statuses: Vec<Option<ConversionStatus>> = vec![None; ids.len()];
    loop {
        let mut open = 0;
        for (i, id) in ids.iter().enumerate() {
            if statuses[i].as_ref().is_some_and(is_final) {
                continue;
            }
            let events = system.events().read_stream(&id.stream(), 0).await?;
            let status = ConversionStatus::fold(&events)?;
            if let Some(s) = &status {
                let bar = &progress[i];
                bar.set_length(u64::from(s.progress.chunks_total.max(1)));
                bar.set_position(u64::from(s.progress.chunks_done));
                bar.set_message(format!("{:?} {}", s.stage, s.title.as_deref().unwrap_or("")).to_lowercase());
                if is_final(s) {
                    bar.finish();
                } else {
                    open += 1;
                }
            } else {
                open += 1;
            }
            statuses[i] = status;
        }
        if open == 0 {
            return Ok(statuses);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("gave up after {} s; the conversions carry on at the next start", args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_final(s: &ConversionStatus) -> bool {
    matches!(s.state, ConversionState::Completed | ConversionState::Failed) && s.stage != Stage::Queued
}

async fn outcome(
    system: &LocalSystem,
    id: &ConversionId,
    status: Option<ConversionStatus>,
    out: &Path,
) -> anyhow::Result<Outcome> {
    let Some(status) = status else {
        return Ok(Outcome {
            conversion_id: Some(id.to_string()),
            title: None,
            state: "unknown".into(),
            audio: None,
            duration_seconds: None,
            error: Some("the conversion was not recorded".into()),
        });
    };
    let audio = match (&status.audio_ref, status.state) {
        (Some(key), ConversionState::Completed) => {
            let path = out.join(file_name(&status));
            let bytes = system.objects().get(key).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            tokio::fs::write(&path, &bytes).await.with_context(|| format!("writing {}", path.display()))?;
            if let Some(timings) = &status.timings_ref {
                write_transcripts(system, timings, &path).await?;
            }
            Some(path)
        }
        _ => None,
    };
    Ok(Outcome {
        conversion_id: Some(id.to_string()),
        title: status.title.clone(),
        state: status.state.as_str().into(),
        audio,
        duration_seconds: status.duration_seconds,
        error: status.error.as_ref().map(|e| format!("{} in {}: {}", e.error, e.state, e.cause)),
    })
}

/// The transcripts and chapters beside the MP3 `audio`: `.vtt`, `.srt`, `.transcript.json`
/// (Podcasting 2.0) and `.chapters.json`, from the timings of its sentences.
async fn write_transcripts(system: &LocalSystem, timings: &ObjectKey, audio: &Path) -> anyhow::Result<()> {
    let bytes = system.objects().get(timings).await.map_err(|e| anyhow::anyhow!("{timings}: {e}"))?;
    let timeline = Timeline::from_json(&bytes).with_context(|| format!("reading {timings}"))?;
    let files = [
        ("vtt", timeline.to_webvtt()),
        ("srt", timeline.to_srt()),
        ("transcript.json", timeline.to_json_transcript()),
        ("chapters.json", timeline.to_json_chapters()),
    ];
    for (extension, text) in files {
        let path = audio.with_extension(extension);
        let text = text.with_context(|| format!("making {}", path.display()))?;
        tokio::fs::write(&path, text).await.with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `<title slug>-<id prefix>.mp3`.
fn file_name(status: &ConversionStatus) -> String {
    let slug: String = status
        .title
        .as_deref()
        .unwrap_or("post")
        .chars()
        .map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug: String = slug.chars().take(60).collect();
    let slug = if slug.is_empty() { "post".to_owned() } else { slug };
    format!("{slug}-{}.mp3", &status.conversion_id.as_str()[..8])
}
