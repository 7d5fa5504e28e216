//! Article extraction on real pages (testdata/corpus/articles, from Readability.js's test
//! suite) against Readability.js's own output: title agreement and text similarity.

use std::collections::HashMap;
use std::path::PathBuf;

use lector_pipeline::article::{ArticleError, extract_article};
use lector_pipeline::document::Document;
use url::Url;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/articles")
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Bag-of-words F1 between two texts: 1.0 when they hold the same words as often.
fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for w in &a {
        *counts.entry(w).or_default() += 1;
    }
    let mut common = 0;
    for w in &b {
        if let Some(n) = counts.get_mut(w.as_str())
            && *n > 0
        {
            *n -= 1;
            common += 1;
        }
    }
    2.0 * common as f64 / (a.len() + b.len()) as f64
}

fn visible_text(html: &str) -> String {
    Document::from_html(html).blocks.iter().map(|b| b.text().to_string()).collect::<Vec<_>>().join("\n")
}

struct Outcome {
    name: String,
    readerable: bool,
    title_agrees: bool,
    byline_agrees: bool,
    language_agrees: bool,
    similarity: Option<f64>,
    error: Option<ArticleError>,
}

fn run_corpus() -> Vec<Outcome> {
    let mut names: Vec<_> = std::fs::read_dir(corpus()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let dir = corpus().join(&name);
            let source = std::fs::read(dir.join("source.html")).unwrap();
            let html = lector_pipeline::fetch::decode_html(&source, None);
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("expected-metadata.json")).unwrap()).unwrap();
            let expected_text = visible_text(&std::fs::read_to_string(dir.join("expected.html")).unwrap());
            let url = Url::parse("http://fakehost/test/page.html").unwrap();
            let name = name.to_string_lossy().into_owned();
            let readerable = meta["readerable"].as_bool().unwrap_or(true);
            match extract_article(&html, Some(&url)) {
                Ok(a) => {
                    let want =
                        meta["title"].as_str().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
                    Outcome {
                        name,
                        readerable,
                        title_agrees: a.title == want,
                        byline_agrees: a.byline.as_deref()
                            == meta["byline"]
                                .as_str()
                                .map(|b| b.split_whitespace().collect::<Vec<_>>().join(" "))
                                .as_deref(),
                        language_agrees: a.language.as_deref() == meta["lang"].as_str(),
                        similarity: Some(similarity(&expected_text, &visible_text_of(&a.document))),
                        error: None,
                    }
                }
                Err(e) => Outcome {
                    name,
                    readerable,
                    title_agrees: false,
                    byline_agrees: false,
                    language_agrees: false,
                    similarity: None,
                    error: Some(e),
                },
            }
        })
        .collect()
}

fn visible_text_of(doc: &Document) -> String {
    doc.blocks.iter().map(|b| b.text().to_string()).collect::<Vec<_>>().join("\n")
}

/// Figures on the 61 pages: the 57 pages Readability.js calls readerable are all extracted with
/// Readability.js's title and, but for one, the same visible text; the 4 it does not call
/// readerable (test fixtures of 1 to 36 words) are each refused as "no article here".
///
/// Known disagreements: `mercurial` (0.944): dom_smoothie keeps a table of contents that
/// Readability.js drops. Bylines: on 5 pages dom_smoothie finds a byline where the
/// Readability.js that made the fixtures found none or another one (`blogger`, `buzzfeed-1`,
/// `links-in-tables`, `telegraph`, and `liberation-1`, where it names the agency "AFP").
#[test]
fn titles_and_text_agree_with_readability_js() {
    let outcomes = run_corpus();
    for o in &outcomes {
        println!(
            "{:40} readerable={} title={} byline={} lang={} similarity={:?} error={:?}",
            o.name, o.readerable, o.title_agrees, o.byline_agrees, o.language_agrees, o.similarity, o.error
        );
    }
    let (readerable, not): (Vec<&Outcome>, Vec<&Outcome>) = outcomes.iter().partition(|o| o.readerable);
    assert_eq!((readerable.len(), not.len()), (57, 4));
    assert!(
        not.iter().all(|o| matches!(o.error, Some(ArticleError::NoArticle(_)))),
        "a non-article was read"
    );
    assert!(readerable.iter().all(|o| o.error.is_none()), "an article was refused");
    let titles = readerable.iter().filter(|o| o.title_agrees).count();
    let bylines = readerable.iter().filter(|o| o.byline_agrees).count();
    let languages = readerable.iter().filter(|o| o.language_agrees).count();
    let sims: Vec<f64> = readerable.iter().filter_map(|o| o.similarity).collect();
    let mean = sims.iter().sum::<f64>() / sims.len() as f64;
    let min = sims.iter().copied().fold(1.0, f64::min);
    let near_same = sims.iter().filter(|&&s| s >= 0.99).count();
    println!(
        "titles {titles}/57, bylines {bylines}/57, languages {languages}/57, text ≥ 0.99 on {near_same}/57, mean {mean:.4}, min {min:.3}"
    );
    assert_eq!(titles, 57);
    assert_eq!(languages, 57);
    assert_eq!(bylines, 52);
    assert_eq!(near_same, 56);
    assert!(min >= 0.94, "min similarity {min}");
    assert!(mean >= 0.998, "mean similarity {mean}");
}
