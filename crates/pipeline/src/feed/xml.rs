//! The streaming XML reader behind RSS 0.9x/2.0, RSS 1.0 (RDF) and Atom 0.3/1.0: one pass of
//! `quick-xml` events over the decoded text, keeping only the fields a feed's posts need and
//! borrowing them from the text wherever no entity or second text piece forces a copy.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use url::Url;

use super::{EntryParts, FeedParts, LinkPart, parse_date};

/// Elements nested deeper than this make the feed malformed: no feed needs it, and it bounds
/// the work a hostile document can ask for.
pub(super) const MAX_DEPTH: usize = 512;

/// Why the strict read failed; the text is what `classify_failure` looks at.
#[derive(Debug)]
pub(super) struct XmlError(pub(super) String);

impl From<quick_xml::Error> for XmlError {
    fn from(e: quick_xml::Error) -> Self {
        XmlError(format!("unable to parse XML: {e}"))
    }
}

/// Namespaces told apart by URI, never by prefix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ns {
    /// No namespace (the root's default: RSS for `rss`/`RDF`, Atom for `feed`), or RSS 1.0's.
    Rss,
    Atom,
    Content,
    Dc,
    Other,
}

fn namespace(uri: &[u8]) -> Ns {
    match uri {
        b"http://purl.org/rss/1.0/" => Ns::Rss,
        // Atom 0.3 reads as Atom 1.0 does; its renamed elements are matched by name below.
        b"http://www.w3.org/2005/Atom" | b"http://purl.org/atom/ns#" => Ns::Atom,
        b"http://purl.org/rss/1.0/modules/content/" => Ns::Content,
        b"http://purl.org/dc/elements/1.1/" => Ns::Dc,
        _ => Ns::Other,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Rss0,
    Rss1,
    Rss2,
    Atom,
}

/// The element whose direct children are being read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    Root,
    Channel,
    Item,
    Entry,
    /// An Atom `author`, whose `name` child is the post's author.
    Person,
}

/// How a captured element's content becomes a string.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Want {
    /// The text before the first child element, if any (feed-rs's `child_as_text`).
    Text,
    /// Atom `text`/`html`: that text, else the children written out as markup.
    Sloppy,
    /// Atom `xhtml`: the children as markup, without a single wrapping `div`.
    Xhtml,
}

/// Where a captured string goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    FeedTitle,
    FeedLink,
    FeedDescription,
    FeedLanguage {
        lowercase: bool,
    },
    Title,
    Link,
    Summary,
    /// RSS 1.0 `dc:description`, used only when there is no `description`.
    SummaryFallback,
    /// RSS 2.0 `guid` (trimmed; an empty one is none).
    Guid,
    /// Atom `id`.
    Id,
    /// A date that replaces the last one even when it does not parse (RSS).
    Published,
    Updated,
    /// A date set only when the element has text (Atom).
    PublishedIfText,
    UpdatedIfText,
    /// `content:encoded` in RSS 2.0: kept as it is, an empty one is none.
    ContentRaw,
    /// Content whose surrounding whitespace is trimmed (RSS 1.0, Atom text constructs).
    ContentTrimmed,
    /// `author` or `dc:creator`: a name, perhaps with an e-mail address.
    Author,
    /// An Atom author's `name`.
    PersonName,
}

/// An element whose content is being gathered.
struct Capture<'a> {
    /// Depth of the captured element itself.
    depth: usize,
    want: Want,
    target: Target,
    /// No event inside the element has been seen yet.
    first: bool,
    /// The text found before the first child (for `Text` and `Sloppy`).
    text: Option<Cow<'a, str>>,
    /// The children written as markup (for `Sloppy` without leading text, and `Xhtml`).
    markup: Option<String>,
    /// Xhtml: no top-level element or text has ruled out a single wrapping `div` yet.
    first_element: bool,
    div_open: Option<usize>,
    div_close: Option<usize>,
}

/// The text between two pieces of markup: borrowed when it is one piece.
#[derive(Default)]
struct Run<'a>(Option<Cow<'a, str>>);

impl<'a> Run<'a> {
    fn push(&mut self, piece: Cow<'a, str>) {
        match &mut self.0 {
            None => self.0 = Some(piece),
            Some(text) => text.to_mut().push_str(&piece),
        }
    }

    fn push_char(&mut self, c: char) {
        match &mut self.0 {
            None => self.0 = Some(Cow::Owned(c.to_string())),
            Some(text) => text.to_mut().push(c),
        }
    }

    fn take(&mut self) -> Option<Cow<'a, str>> {
        self.0.take()
    }
}

struct Reader<'a> {
    input: &'a str,
    reader: quick_xml::Reader<&'a [u8]>,
    /// Namespace prefixes in force (`""` for the default), with the depth that bound them;
    /// `None` for a namespace undeclared with `xmlns=""`.
    bindings: Vec<(usize, Cow<'a, str>, Option<Ns>)>,
    format: Option<Format>,
    /// The namespace of elements with none.
    default_ns: Ns,
    depth: usize,
    /// Open elements whose children are read, with their depths.
    ctx: Vec<(usize, Ctx)>,
    /// `xml:base` in force, with the depth of the element that set it.
    bases: Vec<(usize, Url)>,
    /// The address relative links and `xml:base` resolve against when nothing nearer does.
    base: Option<&'a Url>,
    capture: Option<Capture<'a>>,
    /// Depth of a skipped subtree's root (an Atom `content` with `src`).
    skip_to: Option<usize>,
    run: Run<'a>,
    feed: FeedParts<'a>,
    entry: Option<EntryParts<'a>>,
    /// RSS 1.0 keeps only items with a link.
    entry_needs_link: bool,
    person_name: Option<Cow<'a, str>>,
    channel_seen: bool,
}

/// Reads an RSS or Atom document into the parts a feed is built from.
pub(super) fn read<'a>(input: &'a str, base: Option<&'a Url>) -> Result<FeedParts<'a>, XmlError> {
    if let Some(at) = control_char(input.as_bytes()) {
        return Err(XmlError(format!("control character not allowed in XML at byte {at}")));
    }
    let mut reader = quick_xml::Reader::from_str(input);
    reader.config_mut().expand_empty_elements = true;
    let mut r = Reader {
        input,
        reader,
        bindings: Vec::new(),
        format: None,
        default_ns: Ns::Rss,
        depth: 0,
        ctx: Vec::new(),
        bases: Vec::new(),
        base,
        capture: None,
        skip_to: None,
        run: Run::default(),
        feed: FeedParts::default(),
        entry: None,
        entry_needs_link: false,
        person_name: None,
        channel_seen: false,
    };
    r.run()?;
    Ok(r.feed)
}

/// The first byte that XML 1.0 does not allow anywhere (C0 controls but tab, CR and LF).
fn control_char(bytes: &[u8]) -> Option<usize> {
    // Whole blocks are tested without branching so the scan vectorises; the rare hit is then
    // located byte by byte.
    const BLOCK: usize = 64;
    let bad = |b: u8| b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r';
    for (i, block) in bytes.chunks(BLOCK).enumerate() {
        if block.iter().fold(false, |acc, &b| acc | bad(b)) {
            return block.iter().position(|&b| bad(b)).map(|p| i * BLOCK + p);
        }
    }
    None
}

impl<'a> Reader<'a> {
    /// Bytes of an event as `str`. What the reader borrows lies inside the input, so it is
    /// found there by its address: no copy and no second UTF-8 check. Anything else is copied.
    fn str_of(&self, b: &[u8]) -> Result<Cow<'a, str>, XmlError> {
        let start = (b.as_ptr() as usize).wrapping_sub(self.input.as_ptr() as usize);
        if let Some(s) = self.input.get(start..start.wrapping_add(b.len())) {
            return Ok(Cow::Borrowed(s));
        }
        String::from_utf8(b.to_vec()).map(Cow::Owned).map_err(|_| XmlError("text is not UTF-8".into()))
    }

    fn collecting(&self) -> bool {
        self.capture.is_some()
    }

    fn run(&mut self) -> Result<(), XmlError> {
        loop {
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    return Err(XmlError(format!(
                        "unable to parse XML at byte {}: {e}",
                        self.reader.error_position()
                    )));
                }
            };
            match event {
                Event::Text(t) if self.collecting() => {
                    let s = self.str_of(&t)?;
                    self.run.push(s);
                }
                Event::CData(t) if self.collecting() => {
                    let s = self.str_of(&t)?;
                    self.run.push(s);
                }
                Event::GeneralRef(r) => {
                    // Character references and the five XML entities are resolved; any other
                    // entity (a DOCTYPE's, an HTML one) stays as written, never expanded.
                    if let Some(ch) = r.resolve_char_ref()? {
                        if self.collecting() {
                            self.run.push_char(ch);
                        }
                    } else if self.collecting() {
                        let name = self.str_of(&r)?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => self.run.push(Cow::Borrowed(s)),
                            None => self.run.push(Cow::Owned(format!("&{name};"))),
                        }
                    }
                }
                Event::Start(e) => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(XmlError(format!("elements nested deeper than {MAX_DEPTH}")));
                    }
                    self.start(&e)?;
                }
                Event::End(e) => {
                    let done = self.end(e.local_name().as_ref())?;
                    if done {
                        return Ok(());
                    }
                }
                Event::Eof => {
                    return Err(if self.format.is_none() {
                        XmlError("no root element".into())
                    } else {
                        XmlError("unexpected end of the document: elements left open".into())
                    });
                }
                _ => {}
            }
        }
    }

    fn start(&mut self, e: &BytesStart<'a>) -> Result<(), XmlError> {
        if self.capture.is_some() {
            let text = self.run.take();
            self.capture_text(text, self.depth - 1);
            self.capture_start(e);
            return Ok(());
        }
        self.run.take();
        if self.skip_to.is_some() {
            return Ok(());
        }
        if !e.attributes_raw().is_empty() {
            // Most elements declare neither; a substring search says so without parsing.
            let raw = self.str_of(e.attributes_raw())?;
            if raw.contains("xmlns") {
                self.bind(e)?;
            }
            if raw.contains("xml:base") {
                self.push_base(e)?;
            }
        }
        let ns = self.resolve(e);
        let local = e.local_name();
        let local = local.as_ref();
        if self.depth == 1 {
            return self.root(local, e);
        }
        let Some(&(ctx_depth, ctx)) = self.ctx.last() else { return Ok(()) };
        if self.depth != ctx_depth + 1 {
            return Ok(());
        }
        let format = self.format.unwrap_or(Format::Rss2);
        use Ns::*;
        match (format, ctx) {
            (Format::Rss2 | Format::Rss0, Ctx::Root) if local == b"channel" && !self.channel_seen => {
                self.channel_seen = true;
                self.ctx.push((self.depth, Ctx::Channel));
            }
            (Format::Rss2 | Format::Rss0, Ctx::Channel) => match (ns, local) {
                (Rss, b"title") => self.capture(Want::Text, Target::FeedTitle),
                (Rss, b"link") => self.capture(Want::Text, Target::FeedLink),
                (Atom, b"link") => self.atom_link(e, true)?,
                (Rss, b"description") => self.capture(Want::Text, Target::FeedDescription),
                (Rss, b"language") => self.capture(Want::Text, Target::FeedLanguage { lowercase: true }),
                (Rss, b"item") => self.open_entry(Ctx::Item, false),
                _ => {}
            },
            (Format::Rss2 | Format::Rss0, Ctx::Item) => match (ns, local) {
                (Rss, b"title") => self.capture(Want::Text, Target::Title),
                (Rss, b"link") => self.capture(Want::Text, Target::Link),
                (Rss, b"description") => self.capture(Want::Text, Target::Summary),
                (Rss, b"author") | (Dc, b"creator") => self.capture(Want::Text, Target::Author),
                (Rss, b"guid") => self.capture(Want::Text, Target::Guid),
                (Rss, b"pubDate") | (Dc, b"date") => self.capture(Want::Text, Target::Published),
                (Rss, b"updated") | (Atom, b"updated") => self.capture(Want::Text, Target::Updated),
                (Content, b"encoded") => self.capture(Want::Text, Target::ContentRaw),
                _ => {}
            },
            (Format::Rss1, Ctx::Root) => match (ns, local) {
                (Rss, b"channel") => self.ctx.push((self.depth, Ctx::Channel)),
                (Rss, b"item") => self.open_entry(Ctx::Item, true),
                _ => {}
            },
            (Format::Rss1, Ctx::Channel) => match (ns, local) {
                (Rss, b"title") => self.capture(Want::Text, Target::FeedTitle),
                (Rss, b"link") => self.capture(Want::Text, Target::FeedLink),
                (Rss, b"description") => self.capture(Want::Text, Target::FeedDescription),
                (Dc, b"language") => self.capture(Want::Text, Target::FeedLanguage { lowercase: false }),
                _ => {}
            },
            (Format::Rss1, Ctx::Item) => match (ns, local) {
                (Rss, b"title") => self.capture(Want::Text, Target::Title),
                (Rss, b"link") => self.capture(Want::Text, Target::Link),
                (Rss, b"description") => self.capture(Want::Text, Target::Summary),
                (Dc, b"description") => self.capture(Want::Text, Target::SummaryFallback),
                (Content, b"encoded") => self.capture(Want::Text, Target::ContentTrimmed),
                (Dc, b"creator") => self.capture(Want::Text, Target::Author),
                (Dc, b"date") => self.capture(Want::Text, Target::Published),
                _ => {}
            },
            (Format::Atom, Ctx::Root) => match (ns, local) {
                (Atom, b"title") => self.capture(text_construct(e), Target::FeedTitle),
                (Atom, b"link") => self.atom_link(e, true)?,
                (Atom, b"subtitle" | b"tagline") => self.capture(text_construct(e), Target::FeedDescription),
                (Atom, b"entry") => self.open_entry(Ctx::Entry, false),
                _ => {}
            },
            (Format::Atom, Ctx::Entry) => match (ns, local) {
                (Atom, b"id") => self.capture(Want::Text, Target::Id),
                (Atom, b"title") => self.capture(text_construct(e), Target::Title),
                (Atom, b"updated" | b"modified") => self.capture(Want::Text, Target::UpdatedIfText),
                (Atom, b"published" | b"pubDate" | b"issued") => {
                    self.capture(Want::Text, Target::PublishedIfText)
                }
                (Atom, b"author") => {
                    self.person_name = None;
                    self.ctx.push((self.depth, Ctx::Person));
                }
                (Atom, b"content") => self.atom_content(e)?,
                (Atom, b"link") => self.atom_link(e, false)?,
                (Atom, b"summary") => self.capture(text_construct(e), Target::Summary),
                _ => {}
            },
            (_, Ctx::Person) if local == b"name" => self.capture(Want::Text, Target::PersonName),
            _ => {}
        }
        Ok(())
    }

    /// Returns whether the document has been read as far as it needs to be.
    fn end(&mut self, local: &[u8]) -> Result<bool, XmlError> {
        let depth = self.depth;
        self.depth = depth.saturating_sub(1);
        while self.bases.last().is_some_and(|(d, _)| *d >= depth) {
            self.bases.pop();
        }
        while self.bindings.last().is_some_and(|(d, _, _)| *d >= depth) {
            self.bindings.pop();
        }
        if let Some(capture) = &self.capture {
            let captured = capture.depth == depth;
            let text = self.run.take();
            self.capture_text(text, depth);
            if captured {
                self.finish_capture();
            } else {
                self.capture_end(local, depth);
            }
            return Ok(false);
        }
        self.run.take();
        if let Some(skip) = self.skip_to {
            if skip == depth {
                self.skip_to = None;
            }
            return Ok(false);
        }
        if let Some(&(ctx_depth, ctx)) = self.ctx.last()
            && ctx_depth == depth
        {
            self.ctx.pop();
            match ctx {
                Ctx::Item | Ctx::Entry => {
                    self.close_entry();
                    // A lone Atom entry is the whole document.
                    return Ok(depth == 1);
                }
                Ctx::Person => {
                    if let (Some(name), Some(entry)) = (self.person_name.take(), self.entry.as_mut()) {
                        entry.authors.push(name);
                    }
                }
                // An RSS 2.0 document ends with its channel: what follows is never read.
                Ctx::Channel => return Ok(matches!(self.format, Some(Format::Rss2 | Format::Rss0))),
                Ctx::Root => {
                    if matches!(self.format, Some(Format::Rss2 | Format::Rss0)) {
                        return Err(XmlError("no root element: an rss element without a channel".into()));
                    }
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn root(&mut self, local: &[u8], e: &BytesStart<'a>) -> Result<(), XmlError> {
        let format = match local {
            b"feed" | b"entry" => Format::Atom,
            // feed-rs takes only versions 2.0, 0.91 and 0.92; any `rss` root is RSS here.
            b"rss" => match self.attr(e, b"version")? {
                Some(v) if v.starts_with("0.9") => Format::Rss0,
                _ => Format::Rss2,
            },
            b"RDF" => Format::Rss1,
            _ => return Err(XmlError("no root element".into())),
        };
        self.format = Some(format);
        self.feed.format = match format {
            Format::Rss0 => "rss0",
            Format::Rss1 => "rss1",
            Format::Rss2 => "rss2",
            Format::Atom => "atom",
        };
        self.default_ns = if format == Format::Atom { Ns::Atom } else { Ns::Rss };
        if local == b"entry" {
            // A lone Atom entry: a feed of one post.
            self.open_entry(Ctx::Entry, false);
            return Ok(());
        }
        if format == Format::Atom {
            self.feed.language = self.attr(e, b"xml:lang")?.map(Cow::into_owned);
        }
        self.ctx.push((self.depth, Ctx::Root));
        Ok(())
    }

    fn open_entry(&mut self, ctx: Ctx, needs_link: bool) {
        self.entry = Some(EntryParts::default());
        self.entry_needs_link = needs_link;
        self.ctx.push((self.depth, ctx));
    }

    fn close_entry(&mut self) {
        if let Some(entry) = self.entry.take()
            && (!self.entry_needs_link || !entry.links.is_empty())
        {
            self.feed.entries.push(entry);
        }
    }

    /// The first attribute named `name`, entities resolved (left as written when they do not).
    fn attr(&self, e: &BytesStart<'a>, name: &[u8]) -> Result<Option<Cow<'a, str>>, XmlError> {
        for a in e.attributes().flatten() {
            if a.key.as_ref() == name {
                return Ok(Some(self.attr_value(a.value)?));
            }
        }
        Ok(None)
    }

    fn attr_value(&self, raw: Cow<'_, [u8]>) -> Result<Cow<'a, str>, XmlError> {
        let raw = self.str_of(&raw)?;
        Ok(match quick_xml::escape::unescape(&raw) {
            Ok(Cow::Owned(s)) => Cow::Owned(s),
            _ => raw,
        })
    }

    /// Records the namespaces an element declares.
    fn bind(&mut self, e: &BytesStart<'a>) -> Result<(), XmlError> {
        for a in e.attributes().flatten() {
            let key = a.key.as_ref();
            let prefix = match key.strip_prefix(b"xmlns") {
                Some(b"") => Cow::Borrowed(""),
                Some(rest) if rest.first() == Some(&b':') => self.str_of(&rest[1..])?,
                _ => continue,
            };
            let ns = (!a.value.is_empty()).then(|| namespace(&a.value));
            self.bindings.push((self.depth, prefix, ns));
        }
        Ok(())
    }

    /// The namespace of an element, by the URI its prefix is bound to. An element with no
    /// prefix and no default namespace, or whose prefix was never declared, is in the root's.
    fn resolve(&self, e: &BytesStart<'a>) -> Ns {
        let name = e.name();
        let prefix: &[u8] = name.prefix().map_or(b"", |p| p.into_inner());
        self.bindings
            .iter()
            .rev()
            .find(|(_, p, _)| p.as_bytes() == prefix)
            .and_then(|(_, _, ns)| *ns)
            .unwrap_or(self.default_ns)
    }

    fn push_base(&mut self, e: &BytesStart<'a>) -> Result<(), XmlError> {
        let Some(value) = self.attr(e, b"xml:base")? else { return Ok(()) };
        let resolved = match Url::parse(&value) {
            Ok(u) => Some(u),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                self.bases.last().map(|(_, u)| u).or(self.base).and_then(|b| b.join(&value).ok())
            }
            // A broken `xml:base` is ignored rather than failing the feed.
            Err(_) => None,
        };
        if let Some(u) = resolved {
            self.bases.push((self.depth, u));
        }
        Ok(())
    }

    /// The `xml:base` in force, when an element set one.
    fn current_base(&self) -> Option<Url> {
        self.bases.last().map(|(_, u)| u.clone())
    }

    fn atom_link(&mut self, e: &BytesStart<'a>, feed_level: bool) -> Result<(), XmlError> {
        let mut href = None;
        let mut rel = None;
        for a in e.attributes().flatten() {
            match a.key.as_ref() {
                b"href" if href.is_none() => href = Some(self.attr_value(a.value)?),
                // The last `rel` counts, as in feed-rs.
                b"rel" => rel = Some(self.attr_value(a.value)?),
                _ => {}
            }
        }
        let Some(href) = href else { return Ok(()) };
        let link = LinkPart {
            href,
            rel: Some(rel.unwrap_or(Cow::Borrowed("alternate"))),
            base: self.current_base(),
        };
        if feed_level {
            self.feed.links.push(link);
        } else if let Some(entry) = self.entry.as_mut() {
            entry.links.push(link);
        }
        Ok(())
    }

    fn atom_content(&mut self, e: &BytesStart<'a>) -> Result<(), XmlError> {
        let kind = self.attr(e, b"type")?;
        if self.attr(e, b"src")?.is_some() {
            // Content elsewhere: the post's body is not in the feed.
            if let Some(entry) = self.entry.as_mut() {
                entry.content = None;
            }
            self.skip_to = Some(self.depth);
            return Ok(());
        }
        let (want, target) = match kind.as_deref() {
            None | Some("text" | "html" | "text/html") => (Want::Sloppy, Target::ContentTrimmed),
            Some("xhtml") => (Want::Xhtml, Target::ContentTrimmed),
            Some(t) if t.ends_with("+xml") || t.ends_with("/xml") => (Want::Sloppy, Target::ContentTrimmed),
            Some(_) => (Want::Text, Target::ContentRaw),
        };
        self.capture(want, target);
        Ok(())
    }

    fn capture(&mut self, want: Want, target: Target) {
        self.capture = Some(Capture {
            depth: self.depth,
            want,
            target,
            first: true,
            text: None,
            markup: if want == Want::Xhtml { Some(String::new()) } else { None },
            first_element: true,
            div_open: None,
            div_close: None,
        });
    }

    /// Text met inside the capture; `container` is the depth of the element holding it.
    fn capture_text(&mut self, text: Option<Cow<'a, str>>, container: usize) {
        let Some(c) = self.capture.as_mut() else { return };
        match (&mut c.markup, text) {
            (Some(buf), Some(text)) => {
                if c.want == Want::Xhtml
                    && container == c.depth
                    && text.bytes().any(|b| !b.is_ascii_whitespace())
                {
                    c.first_element = false;
                    c.div_open = None;
                    c.div_close = None;
                }
                escape_into(buf, &text);
            }
            (None, Some(text)) if c.first => c.text = Some(text),
            _ => {}
        }
    }

    /// A child element's start tag inside the capture (`self.depth` is the child's).
    fn capture_start(&mut self, e: &BytesStart<'a>) {
        let depth = self.depth;
        let Some(c) = self.capture.as_mut() else { return };
        let first = std::mem::replace(&mut c.first, false);
        match c.want {
            Want::Text => return,
            Want::Sloppy if first && c.text.is_none() => c.markup = Some(String::new()),
            _ => {}
        }
        let Some(buf) = c.markup.as_mut() else { return };
        let local = e.local_name();
        if c.want == Want::Xhtml && depth == c.depth + 1 {
            if c.first_element {
                if local.as_ref() != b"div" {
                    c.first_element = false;
                }
            } else {
                c.div_open = None;
                c.div_close = None;
            }
        }
        // As feed-rs writes a start tag: the local name, every attribute under its written name
        // with its value's entities resolved, and no escaping.
        buf.push('<');
        buf.push_str(&String::from_utf8_lossy(local.as_ref()));
        for a in e.attributes().flatten() {
            buf.push(' ');
            buf.push_str(&String::from_utf8_lossy(a.key.as_ref()));
            buf.push_str("=\"");
            let raw = String::from_utf8_lossy(&a.value);
            match quick_xml::escape::unescape(&raw) {
                Ok(v) => buf.push_str(&v),
                Err(_) => buf.push_str(&raw),
            }
            buf.push('"');
        }
        buf.push('>');
        if c.want == Want::Xhtml && c.first_element {
            c.first_element = false;
            c.div_open = Some(buf.len());
        }
    }

    /// A child element's end tag inside the capture.
    fn capture_end(&mut self, local: &[u8], closed_depth: usize) {
        let Some(c) = self.capture.as_mut() else { return };
        let Some(buf) = c.markup.as_mut() else { return };
        let close_start = buf.len();
        buf.push_str("</");
        buf.push_str(&String::from_utf8_lossy(local));
        buf.push('>');
        if c.want == Want::Xhtml && closed_depth == c.depth + 1 && c.div_open.is_some() {
            c.div_close = Some(close_start);
        }
    }

    fn finish_capture(&mut self) {
        let Some(c) = self.capture.take() else { return };
        let value: Option<Cow<'a, str>> = match c.want {
            Want::Text => c.text,
            Want::Sloppy => match (c.text, c.markup) {
                (Some(t), _) => Some(t),
                (None, Some(m)) => Some(Cow::Owned(m)),
                (None, None) => Some(Cow::Borrowed("")),
            },
            Want::Xhtml => {
                let mut buf = c.markup.unwrap_or_default();
                if let (Some(open), Some(close)) = (c.div_open, c.div_close) {
                    buf.truncate(close);
                    buf.drain(..open);
                }
                Some(Cow::Owned(buf))
            }
        };
        self.assign(c.target, value);
    }

    fn assign(&mut self, target: Target, value: Option<Cow<'a, str>>) {
        let date = |v: &Option<Cow<'a, str>>| v.as_deref().and_then(parse_date);
        match target {
            Target::FeedTitle => self.feed.title = value,
            Target::FeedDescription => self.feed.description = value,
            Target::FeedLanguage { lowercase } => {
                self.feed.language = value.map(|v| if lowercase { v.to_lowercase() } else { v.into_owned() })
            }
            Target::FeedLink => {
                if let Some(href) = value {
                    let base = self.current_base();
                    self.feed.links.push(LinkPart { href, rel: None, base });
                }
            }
            Target::PersonName => {
                if value.is_some() {
                    self.person_name = value;
                }
            }
            _ => {
                let base = if target == Target::Link { self.current_base() } else { None };
                let Some(entry) = self.entry.as_mut() else { return };
                match target {
                    Target::Title => entry.title = value,
                    Target::Link => {
                        if let Some(href) = value {
                            entry.links.push(LinkPart { href, rel: None, base });
                        }
                    }
                    Target::Summary => entry.summary = value,
                    Target::SummaryFallback if entry.summary.is_none() => entry.summary = value,
                    Target::Guid => {
                        if let Some(v) = value {
                            entry.id = Some(trim_cow(v));
                        }
                    }
                    Target::Id if value.is_some() => entry.id = value,
                    Target::Published => entry.published = date(&value),
                    Target::Updated => entry.updated = date(&value),
                    Target::PublishedIfText if value.is_some() => entry.published = date(&value),
                    Target::UpdatedIfText if value.is_some() => entry.updated = date(&value),
                    Target::ContentRaw => entry.content = value.filter(|v| !v.is_empty()),
                    Target::ContentTrimmed => entry.content = value.map(trim_cow),
                    Target::Author => {
                        if let Some(name) = value.as_deref().and_then(person_name) {
                            entry.authors.push(Cow::Owned(name));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Which text construct an Atom element is, by its `type`.
fn text_construct(e: &BytesStart<'_>) -> Want {
    for a in e.attributes().flatten() {
        if a.key.as_ref() == b"type" {
            return if a.value.as_ref() == b"xhtml" { Want::Xhtml } else { Want::Sloppy };
        }
    }
    Want::Sloppy
}

fn trim_cow(v: Cow<'_, str>) -> Cow<'_, str> {
    match v {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => {
            let t = s.trim();
            if t.len() == s.len() { Cow::Owned(s) } else { Cow::Owned(t.to_string()) }
        }
    }
}

/// Text escaped the way feed-rs writes it into markup (`<`, `&` and CR).
fn escape_into(buf: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let rep = match b {
            b'<' => "&lt;",
            b'&' => "&amp;",
            b'\r' => "&#13;",
            _ => continue,
        };
        buf.push_str(&text[last..i]);
        buf.push_str(rep);
        last = i + 1;
    }
    buf.push_str(&text[last..]);
}

/// The name in an RSS `author` or `dc:creator`: the text beside an e-mail address (the longer
/// side of it), or the whole text when there is no address.
pub(super) fn person_name(raw: &str) -> Option<String> {
    let Some((start, end)) = find_email(raw) else {
        let t = raw.trim();
        return Some(t.to_string());
    };
    let prefix = start;
    let suffix = raw.len() - end;
    let name = if prefix > suffix {
        // The character just before the address (a space or bracket) goes with it.
        let cut = raw[..start].char_indices().next_back().map_or(0, |(i, _)| i);
        &raw[..cut]
    } else if end < raw.len() {
        let skip = raw[end..].chars().next().map_or(0, char::len_utf8);
        &raw[end + skip..]
    } else {
        ""
    };
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The first e-mail address in `s` (`[mailto:]local@domain.tld` between word boundaries, as
/// feed-rs's regular expression has it), as a byte range.
fn find_email(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let local = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    let domain = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-');
    // Word characters as Unicode regular expressions see them, on either side of `i`.
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let word_before = |i: usize| s[..i].chars().next_back().is_some_and(word);
    let word_at = |i: usize| s[i..].chars().next().is_some_and(word);
    let boundary = |i: usize| word_before(i) != word_at(i);
    for (at, _) in s.match_indices('@') {
        let mut run = at;
        while run > 0 && local(b[run - 1]) {
            run -= 1;
        }
        let start = if s[..run].ends_with("mailto:") && boundary(run - "mailto:".len()) {
            run - "mailto:".len()
        } else {
            match (run..at).find(|&p| boundary(p)) {
                Some(p) => p,
                None => continue,
            }
        };
        let mut run_end = at + 1;
        while run_end < b.len() && domain(b[run_end]) {
            run_end += 1;
        }
        // The longest prefix of the domain run that ends in `.` and two or more letters, at a
        // word boundary.
        for end in (at + 2..=run_end).rev() {
            let dom = &b[at + 1..end];
            let letters = dom.iter().rev().take_while(|c| c.is_ascii_alphabetic()).count();
            if letters >= 2
                && dom.len() > letters + 1
                && dom[dom.len() - letters - 1] == b'.'
                && !word_at(end)
            {
                return Some((start, end));
            }
        }
    }
    None
}
