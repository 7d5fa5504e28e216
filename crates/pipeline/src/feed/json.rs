//! JSON Feed 1.x read with serde into the same parts as the XML formats.

use std::borrow::Cow;

use serde::Deserialize;

use super::{EntryParts, FeedParts, LinkPart, parse_date};

#[derive(Deserialize)]
struct JsonFeed {
    version: String,
    title: String,
    home_page_url: Option<String>,
    feed_url: Option<String>,
    language: Option<String>,
    description: Option<String>,
    author: Option<JsonAuthor>,
    authors: Option<Vec<JsonAuthor>>,
    items: Vec<JsonItem>,
}

#[derive(Deserialize)]
struct JsonAuthor {
    name: Option<String>,
}

#[derive(Deserialize)]
struct JsonItem {
    id: Option<String>,
    url: Option<String>,
    external_url: Option<String>,
    title: Option<String>,
    content_html: Option<String>,
    content_text: Option<String>,
    summary: Option<String>,
    date_published: Option<String>,
    date_modified: Option<String>,
    author: Option<JsonAuthor>,
    authors: Option<Vec<JsonAuthor>>,
}

/// Names of `author` and `authors`, each once, in order.
fn names(author: Option<JsonAuthor>, authors: Option<Vec<JsonAuthor>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in author.into_iter().chain(authors.into_iter().flatten()) {
        if let Some(name) = a.name
            && !out.contains(&name)
        {
            out.push(name);
        }
    }
    out
}

/// Reads a JSON Feed; the error says why it is not one.
pub(super) fn read(text: &str) -> Result<FeedParts<'static>, String> {
    let jf: JsonFeed = serde_json::from_str(text).map_err(|e| format!("unable to parse JSON: {e}"))?;
    if !jf.version.starts_with("https://jsonfeed.org/version/1") {
        return Err(format!("unsupported JSON Feed version: {}", jf.version));
    }
    let link = |href: String| LinkPart { href: Cow::Owned(href), rel: None, base: None };
    let feed_authors = names(jf.author, jf.authors);
    let entries = jf
        .items
        .into_iter()
        .map(|ji| {
            let mut content = ji.content_html.map(|b| Cow::Owned(b.trim().to_string()));
            let mut summary = ji.summary.map(Cow::Owned);
            if let Some(text) = ji.content_text {
                // Plain text stands in for missing HTML, else for a missing summary.
                if content.is_none() {
                    content = Some(Cow::Owned(text.trim().to_string()));
                } else if summary.is_none() {
                    summary = Some(Cow::Owned(text.trim().to_string()));
                }
            }
            let mut authors = names(ji.author, ji.authors);
            if authors.is_empty() {
                authors.clone_from(&feed_authors);
            }
            EntryParts {
                id: ji.id.map(Cow::Owned),
                title: ji.title.map(Cow::Owned),
                links: ji.url.into_iter().chain(ji.external_url).map(link).collect(),
                published: ji.date_published.as_deref().and_then(parse_date),
                updated: ji.date_modified.as_deref().and_then(parse_date),
                authors: authors
                    .into_iter()
                    .filter_map(|a| super::xml::person_name(&a))
                    .map(Cow::Owned)
                    .collect(),
                content,
                summary,
            }
        })
        .collect();
    Ok(FeedParts {
        format: "json",
        title: Some(Cow::Owned(jf.title)),
        links: jf.home_page_url.into_iter().chain(jf.feed_url).map(link).collect(),
        description: jf.description.map(Cow::Owned),
        language: jf.language,
        entries,
    })
}
