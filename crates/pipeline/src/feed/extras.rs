//! What polling needs from a feed that feed-rs does not read, found by a second, shallow pass:
//! the syndication module's `sy:updatePeriod`/`sy:updateFrequency`, `itunes:explicit` either
//! way (feed-rs keeps only a `true`), and a JSON Feed's `feed_url` and `hubs`. The XML pass also
//! bounds how deep elements nest before feed-rs reads them.

use std::time::Duration;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Elements nested deeper than this make the feed malformed: no feed needs it, and it bounds
/// the work (and the stack) a hostile document can ask for.
pub(super) const MAX_DEPTH: usize = 512;

const SYNDICATION: &[u8] = b"http://purl.org/rss/1.0/modules/syndication/";
const ITUNES: &[u8] = b"http://www.itunes.com/dtds/podcast-1.0.dtd";

/// What the extra pass found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Extras {
    pub update_period: Option<Duration>,
    pub explicit: Option<bool>,
    /// JSON Feed only: `feed_url` and the first of `hubs`.
    pub self_url: Option<String>,
    pub hub: Option<String>,
}

/// Why the extra pass refuses a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TooDeep;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Period,
    Frequency,
    Explicit,
}

/// Reads the feed-level extras of an XML feed. A syntax error ends the pass quietly (feed-rs
/// reports it); only nesting beyond [`MAX_DEPTH`] is an error.
pub(super) fn scan_xml(text: &str) -> Result<Extras, TooDeep> {
    let mut reader = quick_xml::NsReader::from_str(text);
    let mut depth = 0usize;
    // Depth of the item or entry being skipped over, if inside one.
    let mut in_item: Option<usize> = None;
    let mut capture: Option<(Field, usize, String)> = None;
    let (mut period, mut frequency, mut explicit) = (None, None, None);
    loop {
        match reader.read_resolved_event() {
            Ok((ns, Event::Start(e))) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep);
                }
                let local = e.local_name();
                if in_item.is_none() && matches!(local.as_ref(), b"item" | b"entry") && depth > 1 {
                    in_item = Some(depth);
                }
                if in_item.is_none() && capture.is_none() {
                    let field = match (&ns, local.as_ref()) {
                        (ResolveResult::Bound(n), b"updatePeriod") if n.as_ref() == SYNDICATION => {
                            Some(Field::Period)
                        }
                        (ResolveResult::Bound(n), b"updateFrequency") if n.as_ref() == SYNDICATION => {
                            Some(Field::Frequency)
                        }
                        // Written `DTDs/Podcast` as often as not.
                        (ResolveResult::Bound(n), b"explicit") if n.as_ref().eq_ignore_ascii_case(ITUNES) => {
                            Some(Field::Explicit)
                        }
                        _ => None,
                    };
                    capture = field.map(|f| (f, depth, String::new()));
                }
            }
            Ok((_, Event::Text(t))) => {
                if let Some((_, _, buf)) = capture.as_mut() {
                    buf.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Ok((_, Event::CData(t))) => {
                if let Some((_, _, buf)) = capture.as_mut() {
                    buf.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Ok((_, Event::End(_))) => {
                if let Some((field, _, value)) = capture.take_if(|(_, at, _)| *at == depth) {
                    let value = value.trim().to_ascii_lowercase();
                    match field {
                        Field::Period => period = Some(value),
                        Field::Frequency => frequency = Some(value),
                        Field::Explicit => explicit = explicit_value(&value),
                    }
                }
                if in_item == Some(depth) {
                    in_item = None;
                }
                depth = depth.saturating_sub(1);
            }
            Ok((_, Event::Eof)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(Extras {
        update_period: syndication_period(period.as_deref(), frequency.as_deref()),
        explicit,
        self_url: None,
        hub: None,
    })
}

/// `itunes:explicit`: Apple's `true`/`false`, and the older `yes`/`explicit` and `no`/`clean`.
fn explicit_value(value: &str) -> Option<bool> {
    match value {
        "true" | "yes" | "explicit" => Some(true),
        "false" | "no" | "clean" => Some(false),
        _ => None,
    }
}

/// The syndication module's period divided by its frequency: `hourly` and `2` is every 30
/// minutes. Either alone takes the other's default (`daily`, `1`); neither is `None`, and so
/// is a period the module does not name.
pub(super) fn syndication_period(period: Option<&str>, frequency: Option<&str>) -> Option<Duration> {
    if period.is_none() && frequency.is_none() {
        return None;
    }
    const HOUR: u64 = 60 * 60;
    let seconds = match period.unwrap_or("daily") {
        "hourly" => HOUR,
        "daily" => 24 * HOUR,
        "weekly" => 7 * 24 * HOUR,
        "monthly" => 30 * 24 * HOUR,
        "yearly" => 365 * 24 * HOUR,
        _ => return None,
    };
    let times = frequency.and_then(|f| f.trim().parse::<u64>().ok()).filter(|&f| f > 0).unwrap_or(1);
    Some(Duration::from_secs(seconds / times))
}

/// A JSON Feed's `feed_url` and first hub; anything unreadable is simply absent (feed-rs
/// reports a broken document).
pub(super) fn scan_json(text: &str) -> Extras {
    #[derive(serde::Deserialize)]
    struct Hub {
        url: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Top {
        feed_url: Option<String>,
        #[serde(default)]
        hubs: Vec<Hub>,
    }
    match serde_json::from_str::<Top>(text) {
        Ok(top) => Extras {
            self_url: top.feed_url,
            hub: top.hubs.into_iter().find_map(|h| h.url),
            ..Extras::default()
        },
        Err(_) => Extras::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syndication_periods_divide_by_their_frequency() {
        let minutes = |p, f| syndication_period(p, f).map(|d| d.as_secs() / 60);
        assert_eq!(minutes(Some("hourly"), Some("2")), Some(30));
        assert_eq!(minutes(Some("daily"), None), Some(24 * 60));
        assert_eq!(minutes(None, Some("4")), Some(6 * 60));
        assert_eq!(minutes(Some("weekly"), Some("0")), Some(7 * 24 * 60));
        assert_eq!(minutes(Some("monthly"), Some("x")), Some(30 * 24 * 60));
        assert_eq!(minutes(Some("yearly"), Some("365")), Some(24 * 60));
        assert_eq!(minutes(Some("fortnightly"), None), None);
        assert_eq!(minutes(None, None), None);
    }

    #[test]
    fn only_feed_level_elements_count_and_by_namespace() {
        let xml = r#"<rss version="2.0" xmlns:s="http://purl.org/rss/1.0/modules/syndication/"
            xmlns:it="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:sy="http://example.test/not-sy">
            <channel><sy:updatePeriod>yearly</sy:updatePeriod><s:updatePeriod> Hourly </s:updatePeriod>
            <item><s:updateFrequency>60</s:updateFrequency><it:explicit>yes</it:explicit></item>
            <s:updateFrequency>4</s:updateFrequency><it:explicit>Clean</it:explicit></channel></rss>"#;
        let extras = scan_xml(xml).unwrap();
        assert_eq!(extras.update_period, Some(Duration::from_secs(15 * 60)));
        assert_eq!(extras.explicit, Some(false));
    }
}
