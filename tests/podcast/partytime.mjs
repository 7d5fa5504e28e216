// Reads a podcast feed with podcast-partytime (the Podcast Index's parser, Podcasting 2.0
// aware) and prints what it saw as one JSON object, in the shape feedparser_dump.py prints,
// for crates/pipeline/tests/podcast_parsers.rs to compare with what was rendered.
//
//   node tests/podcast/partytime.mjs FEED.xml
import { readFileSync } from "node:fs";
import pt from "podcast-partytime";

const path = process.argv[2];
if (!path) {
  console.error("usage: node partytime.mjs FEED.xml");
  process.exit(2);
}
const feed = pt.parseFeed(readFileSync(path, "utf8"), { allowMissingGuid: false });
if (!feed) {
  console.error(`podcast-partytime did not accept ${path} as a podcast feed`);
  process.exit(1);
}
const seconds = (date) => (date ? Math.round(new Date(date).getTime() / 1000) : null);
console.log(
  JSON.stringify({
    parser: "podcast-partytime",
    title: feed.title ?? null,
    description: feed.description ?? null,
    link: feed.link ?? null,
    language: feed.language ?? null,
    image: feed.itunesImage ?? null,
    categories: feed.itunesCategory ?? [],
    explicit: feed.explicit ?? null,
    author: feed.author ?? null,
    owner: feed.owner?.email ? { name: feed.owner.name ?? null, email: feed.owner.email } : null,
    self: feed.pubsub?.self ?? null,
    guid: feed.guid ?? null,
    locked: typeof feed.locked === "boolean" ? feed.locked : null,
    items: (feed.items ?? []).map((item) => ({
      title: item.title ?? null,
      guid: item.guid ?? null,
      link: item.link ?? null,
      published: seconds(item.pubDate),
      summary: item.description ?? null,
      enclosure: item.enclosure
        ? { url: item.enclosure.url, length: Number(item.enclosure.length), type: item.enclosure.type }
        : null,
      duration: typeof item.duration === "number" ? item.duration : null,
      transcripts: (item.podcastTranscripts ?? []).map((t) => ({ url: t.url, type: t.type })),
      chapters: item.podcastChapters ? { url: item.podcastChapters.url, type: item.podcastChapters.type } : null,
    })),
  }),
);
