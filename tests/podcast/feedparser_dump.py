"""Reads a podcast feed with Python's feedparser and prints what it saw as one JSON object, in
the shape partytime.mjs prints, for crates/pipeline/tests/podcast_parsers.rs to compare with
what was rendered.

    .tools/venv/bin/python tests/podcast/feedparser_dump.py FEED.xml

feedparser keeps one dict per unknown namespaced element, so of several <podcast:transcript>
tags of an item it reports the last one only; `transcripts` holds what it reports.
"""

import calendar
import json
import sys

import feedparser


def main(path):
    with open(path, "rb") as f:
        parsed = feedparser.parse(f.read())
    if parsed.bozo:
        print(f"feedparser found {path} malformed: {parsed.bozo_exception}", file=sys.stderr)
        return 1
    feed = parsed.feed
    links = feed.get("links", [])
    self_link = next((l.get("href") for l in links if l.get("rel") == "self"), None)
    owner = feed.get("publisher_detail") or {}
    items = []
    for entry in parsed.entries:
        enclosures = [l for l in entry.get("links", []) if l.get("rel") == "enclosure"]
        transcript = entry.get("podcast_transcript")
        chapters = entry.get("podcast_chapters")
        published = entry.get("published_parsed")
        items.append(
            {
                "title": entry.get("title"),
                "guid": entry.get("id"),
                "link": entry.get("link"),
                "published": calendar.timegm(published) if published else None,
                "summary": entry.get("summary"),
                "enclosures": [
                    {"url": e.get("href"), "length": int(e.get("length", "0")), "type": e.get("type")}
                    for e in enclosures
                ],
                "duration": entry.get("itunes_duration"),
                "transcripts": [{"url": transcript.get("url"), "type": transcript.get("type")}] if transcript else [],
                "chapters": {"url": chapters.get("url"), "type": chapters.get("type")} if chapters else None,
            }
        )
    print(
        json.dumps(
            {
                "parser": "feedparser " + feedparser.__version__,
                "title": feed.get("title"),
                "description": feed.get("subtitle"),
                "link": feed.get("link"),
                "language": feed.get("language"),
                "image": (feed.get("image") or {}).get("href"),
                "categories": [t.get("term") for t in feed.get("tags", [])],
                "owner": {"name": owner.get("name"), "email": owner.get("email")} if owner.get("email") else None,
                "self": self_link,
                "guid": feed.get("podcast_guid"),
                "items": items,
            }
        )
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: feedparser_dump.py FEED.xml", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
