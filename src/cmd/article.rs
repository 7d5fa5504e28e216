//! `lector article <url|file> [--json]`: print the readable text of a post.

use std::process::ExitCode;

use anyhow::Context;
use lector_pipeline::article::extract_article;
use lector_pipeline::fetch::{Resource, decode_html};
use serde::Serialize;

use super::feed::{FetchArgs, emit, load};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The post's address (http or https), or an HTML file.
    pub source: String,
    /// Print JSON: {title, byline, language, text, words}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Serialize)]
struct ArticleView<'a> {
    title: &'a str,
    byline: Option<&'a str>,
    language: Option<&'a str>,
    text: String,
    words: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.source, Resource::Page, &args.fetch)?;
    let html = decode_html(&loaded.body, loaded.charset.as_deref());
    let article = extract_article(&html, loaded.url.as_ref()).with_context(|| args.source.clone())?;
    let v = ArticleView {
        title: &article.title,
        byline: article.byline.as_deref(),
        language: article.language.as_deref(),
        text: article.text(),
        words: article.words,
    };
    if args.json {
        return emit(&serde_json::to_string_pretty(&v)?);
    }
    let facts: Vec<String> =
        [v.byline.map(str::to_string), v.language.map(str::to_string), Some(format!("{} words", v.words))]
            .into_iter()
            .flatten()
            .collect();
    emit(&format!("{}\n{}\n\n{}", v.title, facts.join(" · "), v.text))
}
