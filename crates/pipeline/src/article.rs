//! Articles: the readable text of a page (title, byline, language, and the body as blocks),
//! extracted with `dom_smoothie`; "no article here" is a named error.

use dom_smoothie::{Config, Readability, ReadabilityError, TextMode};
use lector_core::{ErrorKind, StepError};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::document::{Document, HtmlError, HtmlLimits, collapse_ws, parse_html};

/// The readable part of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub title: String,
    pub byline: Option<String>,
    /// BCP 47 language the page declares.
    pub language: Option<String>,
    pub document: Document,
    /// Words that will be read (code excluded).
    pub words: usize,
    /// The page's own summary (its description metadata, else the first lines), plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// When the page says it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<chrono::DateTime<chrono::Utc>>,
}

impl Article {
    /// The text in its plain form (headings, items and code marked; see [`Document::to_text`]).
    pub fn text(&self) -> String {
        self.document.to_text()
    }

    /// An article from HTML the feed carried (the whole post): no extraction needed, the
    /// feed's title is the title.
    pub fn from_feed_content(
        html: &str,
        title: Option<&str>,
        language: Option<&str>,
    ) -> Result<Self, ArticleError> {
        let document = Document::try_from_html(html).map_err(too_complex)?;
        let words = document.words();
        if words == 0 {
            return Err(ArticleError::NoArticle("the feed's content has no text".into()));
        }
        Ok(Self {
            title: title.map(collapse_ws).unwrap_or_default(),
            byline: None,
            language: language.map(str::to_string),
            document,
            words,
            summary: None,
            published: None,
        })
    }
}

/// Why a page gave no article.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArticleError {
    /// The page has no readable article (a list, a login page, an empty shell).
    #[error("no article here: {0}")]
    NoArticle(String),
    /// The page is too large, too deeply nested or too slow to read safely.
    #[error("page too complex: {0}")]
    TooComplex(String),
}

impl ArticleError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArticleError::NoArticle(_) => ErrorKind::NoArticle,
            ArticleError::TooComplex(_) => ErrorKind::TooLarge,
        }
    }
}

impl From<ArticleError> for StepError {
    fn from(e: ArticleError) -> Self {
        StepError::new(e.kind(), e.to_string())
    }
}

/// Fetches a page with the guards of `fetcher` and extracts its article: the FetchArticle
/// step's work when the feed did not carry the whole post. Transient failures are returned
/// (as [`lector_core::ErrorKind::Transient`]) for the workflow to retry.
pub async fn fetch_article(fetcher: &crate::fetch::Fetcher, url: &str) -> Result<Article, StepError> {
    let page = fetcher.fetch(url, crate::fetch::Resource::Page).await?;
    let html = crate::fetch::decode_html(&page.body, page.charset.as_deref());
    Ok(extract_article(&html, Some(&page.url))?)
}

/// Below this many words a page must also look like an article to count as one.
const MIN_WORDS_UNLESS_READABLE: usize = 100;

/// Extracts the article of a page. `url` (the page's address) resolves relative links and
/// helps pick the title.
///
/// The page is read within the default [`HtmlLimits`] (nesting depth, elements, parse time):
/// beyond them it is refused as [`ArticleError::TooComplex`] at once. The extraction that
/// follows works on a tree those limits bound.
pub fn extract_article(html: &str, url: Option<&Url>) -> Result<Article, ArticleError> {
    let limits = HtmlLimits::default();
    let dom = parse_html(html, &limits).map_err(too_complex)?;
    let config = Config {
        text_mode: TextMode::Formatted,
        max_elements_to_parse: limits.max_elements,
        ..Config::default()
    };
    // The parts marked for skipping go before extraction, which may unwrap their elements.
    dom.select(crate::document::SKIP_SELECTOR).remove();
    let mut reader =
        Readability::with_document(dom, url.map(Url::as_str), Some(config)).map_err(map_error)?;
    // Must be asked before parsing, which changes the document.
    let readable = reader.is_probably_readable();
    let parsed = reader.parse().map_err(map_error)?;
    let document = Document::try_from_html(&parsed.content).map_err(too_complex)?;
    let words = document.words();
    if words == 0 {
        return Err(ArticleError::NoArticle("the page has no readable text".into()));
    }
    if !readable && words < MIN_WORDS_UNLESS_READABLE {
        return Err(ArticleError::NoArticle(format!(
            "the page does not look like an article ({words} words)"
        )));
    }
    let title = collapse_ws(&parsed.title);
    Ok(Article {
        title,
        byline: parsed.byline.map(|b| collapse_ws(&b)).filter(|b| !b.is_empty()),
        language: parsed.lang.map(|l| l.trim().to_string()).filter(|l| !l.is_empty()),
        document,
        words,
        summary: parsed.excerpt.map(|e| collapse_ws(&e)).filter(|e| !e.is_empty()),
        published: parsed.published_time.as_deref().and_then(crate::feed::parse_date),
    })
}

fn too_complex(e: HtmlError) -> ArticleError {
    ArticleError::TooComplex(e.to_string())
}

fn map_error(e: ReadabilityError) -> ArticleError {
    match e {
        ReadabilityError::GrabFailed => ArticleError::NoArticle("no content block stands out".into()),
        ReadabilityError::TooManyElements(found, max) => {
            ArticleError::TooComplex(format!("{found} elements, more than {max}"))
        }
        // The URL is ours and absolute; an extractor that disagrees is told nothing useful.
        ReadabilityError::BadDocumentURL => {
            ArticleError::NoArticle("the page address is not absolute".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Block;

    fn page(body: &str) -> String {
        format!(
            "<html lang=\"en\"><head><title>How Lector Reads Posts</title><meta name=\"author\" content=\"Ada\"></head><body>\
             <nav><a href=\"/\">Home</a><a href=\"/about\">About</a></nav>{body}<footer>© Site</footer></body></html>"
        )
    }

    #[test]
    fn an_article_keeps_headings_paragraphs_and_code_apart() {
        let para = "This is a sentence of a real article with enough words to be read. ".repeat(8);
        let html = page(&format!(
            "<article><h1>How Lector Reads Posts</h1><p>{para}</p><h2>Part two</h2><p>{para}</p><pre>let x = 1;</pre><ul><li>first point</li></ul></article>"
        ));
        let url = Url::parse("https://blog.test/a-post").unwrap();
        let a = extract_article(&html, Some(&url)).unwrap();
        assert_eq!(a.title, "How Lector Reads Posts");
        assert_eq!(a.byline.as_deref(), Some("Ada"));
        assert_eq!(a.language.as_deref(), Some("en"));
        assert!(
            a.document.blocks.iter().any(|b| matches!(b, Block::Heading { text, .. } if text == "Part two"))
        );
        assert!(a.document.blocks.iter().any(|b| matches!(b, Block::Code { .. })));
        assert!(
            a.document
                .blocks
                .iter()
                .any(|b| matches!(b, Block::ListItem { text, .. } if text == "first point"))
        );
        assert!(!a.text().contains("Home"), "navigation kept: {}", a.text());
        assert!(a.words > 200);
    }

    #[test]
    fn parts_of_a_page_marked_for_skipping_are_not_read() {
        let para = "This is a sentence of a real article with enough words to be read. ".repeat(8);
        let html = page(&format!(
            "<article><h1>Skipping</h1><p>{para}</p><p data-lector-skip>Sponsored words here.</p>\
             <p>{para}</p><div class=\"box lector-skip\"><p>Boxed words here.</p></div><p>{para}</p></article>"
        ));
        let a = extract_article(&html, None).unwrap();
        assert!(a.text().contains("real article"), "{}", a.text());
        assert!(!a.text().contains("Sponsored"), "{}", a.text());
        assert!(!a.text().contains("Boxed"), "{}", a.text());
    }

    #[test]
    fn a_page_without_an_article_is_a_named_error() {
        let err = extract_article(&page("<div><a href=\"/x\">Login</a></div>"), None).unwrap_err();
        assert!(matches!(err, ArticleError::NoArticle(_)), "{err}");
        assert_eq!(err.kind(), ErrorKind::NoArticle);
        assert!(matches!(extract_article("", None), Err(ArticleError::NoArticle(_))));
    }

    #[test]
    fn feed_content_becomes_an_article_without_extraction() {
        let a = Article::from_feed_content("<p>Short but whole.</p>", Some("T"), Some("en")).unwrap();
        assert_eq!((a.title.as_str(), a.words), ("T", 3));
        assert!(Article::from_feed_content("<img src=x>", None, None).is_err());
    }
}
