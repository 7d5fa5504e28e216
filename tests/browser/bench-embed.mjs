// The embed's weight and its time to first play in headless Chromium, against the embed before the
// read-along player (tests/browser/bench/embed-baseline.html, a plain <audio>) as the baseline,
// both measured in this one run on the same narration.
//
//   node tests/browser/bench-embed.mjs [LECTOR_BINARY] [ROUNDS]
//
// LECTOR_BINARY defaults to $CARGO_TARGET_DIR/debug/lector (or target/debug/lector). It starts
// `lector serve` on a fresh data folder, narrates a post of 19 sentences under 4 headings from a
// loopback feed, then:
// - weight: the bytes of `GET /embed/{id}` (HTML with its script and style inline), split into its
//   parts, raw and gzipped, against the baseline template filled with the same values;
// - time to first play: from the start of navigation to the audio's first `playing` event, the
//   page calling play() as soon as its DOM is parsed (Chromium started with
//   --autoplay-policy=no-user-gesture-required), each load in a fresh browser context (a cold
//   cache). Both pages are served by one loopback server of this script, so that only the
//   pages differ; the embed as `lector serve` answers it is measured too. Rounds alternate the
//   pages; the medians are compared.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const target = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
const lectorBin = process.argv[2] || path.join(target, 'debug', 'lector');
const rounds = Number(process.argv[3] || 15);
const CHROMIUM = process.env.LECTOR_CHROMIUM || '/usr/bin/chromium';

const PARTS = [
  ['The harbour', ['The keeper walked down to the harbour at dawn.', 'Gulls circled over the empty boats.', 'A cold wind came in from the sea.', 'Nets lay drying on the stones.', 'A bell rang somewhere behind the sheds.']],
  ['The storm', ['By noon the sky had turned the colour of slate.', 'The first drops fell on the lamp room windows.', 'He lit the great lamp and waited.', 'Waves broke over the end of the pier.', 'The wind tore at the shutters all afternoon.']],
  ['The ship', ['Near midnight a light showed to the south.', 'It rose and fell with the swell.', 'He signalled with the lamp three times.', 'The ship turned slowly towards the harbour mouth.', 'By dawn it lay at anchor in the still water.']],
  ['The morning', ['The keeper climbed down the long stair.', 'The harbour master was already on the quay.', 'They spoke for a while about the night.', 'Then the keeper went home and slept until noon.']],
];

function escape(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function feedXml(postUrl) {
  const html = PARTS.map(([h, sentences]) => `<h2>${h}</h2><p>${sentences.join(' ')}</p>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Coast notes</title>
<link>http://127.0.0.1/</link><description>benchmark feed</description>
<item><title>The lighthouse keeper</title><link>${postUrl}</link><guid>${postUrl}</guid>
<content:encoded><![CDATA[${html}]]></content:encoded></item></channel></rss>`;
}

const pages = new Map(); // path → html, served by this script's server
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/feed.xml') {
    res.writeHead(200, { 'content-type': 'application/rss+xml; charset=utf-8' });
    res.end(feedXml(`http://127.0.0.1:${server.address().port}/posts/lighthouse`));
  } else if (pages.has(url.pathname)) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(pages.get(url.pathname));
  } else {
    res.writeHead(404);
    res.end();
  }
});

async function startLector(data) {
  const child = spawn(lectorBin, ['serve', '--addr', '127.0.0.1:0', '--data', data], {
    env: { ...process.env, LECTOR_ALLOW_HOSTS: '127.0.0.1', RUST_LOG: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.on('error', (e) => {
    console.error(`cannot run ${lectorBin}: ${e.message} (build it: cargo build --bin lector)`);
    process.exit(2);
  });
  const lines = readline.createInterface({ input: child.stdout });
  const [first] = await once(lines, 'line');
  const base = first.replace(/^listening on /, '').trim();
  if (!/^http:\/\//.test(base)) throw new Error(`lector serve printed '${first}'`);
  return { child, base };
}

async function json(url, init) {
  const response = await fetch(url, init);
  const body = await response.json();
  if (!response.ok) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
  return body.data;
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const gz = (s) => gzipSync(Buffer.from(s), { level: constants.Z_DEFAULT_COMPRESSION }).length;
const kib = (n) => `${(n / 1024).toFixed(2)} KiB`;

async function main() {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const feedBase = `http://127.0.0.1:${server.address().port}`;
  const data = await mkdtemp(path.join(tmpdir(), 'lector-bench-embed-'));
  const { child, base } = await startLector(data);
  try {
    const submitted = await json(`${base}/conversions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${feedBase}/posts/lighthouse`, feed_url: `${feedBase}/feed.xml` }),
    });
    let status;
    for (let i = 0; i < 600; i += 1) {
      status = await json(`${base}/conversions/${submitted.conversion_id}`);
      if (status.state === 'completed' || status.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (status.state !== 'completed') throw new Error(`the narration did not complete: ${JSON.stringify(status)}`);
    const id = status.conversion_id;

    // ---- weight ----
    const embed = await (await fetch(`${base}/embed/${id}`)).text();
    const script = (embed.match(/<script>([\s\S]*?)<\/script>/) || ['', ''])[1];
    const style = (embed.match(/<style>([\s\S]*?)<\/style>/) || ['', ''])[1];
    const markup = embed.replace(script, '').replace(style, '');
    const template = await readFile(path.join(here, 'bench', 'embed-baseline.html'), 'utf8');
    const seconds = Math.round(status.duration_seconds);
    const baseline = template
      .replaceAll('{{title}}', escape(status.title))
      .replaceAll('{{audio_url}}', escape(status.audio_url))
      .replaceAll('{{post_url}}', escape(status.post_url))
      .replaceAll('{{duration}}', `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`);
    const timeline = await (await fetch(status.timeline_url)).text();
    const sizes = [
      ['baseline: the embed before the player (HTML, no script)', Buffer.byteLength(baseline), gz(baseline)],
      ['the embed now: all of it (HTML + JS + CSS)', Buffer.byteLength(embed), gz(embed)],
      ['  its markup', Buffer.byteLength(markup), gz(markup)],
      ['  its script (web/player.js)', Buffer.byteLength(script), gz(script)],
      ['  its style (web/player.css and its own)', Buffer.byteLength(style), gz(style)],
      ['the timeline it fetches (data, this post)', Buffer.byteLength(timeline), gz(timeline)],
    ];
    console.log(`narration ${id}: ${status.duration_seconds.toFixed(1)} s, ${JSON.parse(timeline).segments.length} sentences\n`);
    console.log('| what | bytes | gzip | gzip against the baseline |');
    console.log('|---|---:|---:|---:|');
    for (const [what, raw, zipped] of sizes) {
      console.log(`| ${what} | ${raw.toLocaleString('en')} (${kib(raw)}) | ${zipped.toLocaleString('en')} | ${(zipped / sizes[0][2]).toFixed(2)}× |`);
    }

    // ---- time to first play ----
    pages.set('/baseline', baseline);
    pages.set('/embed', embed);
    const targets = [
      ['baseline (plain <audio>), this script\'s server', `${feedBase}/baseline`],
      ['the embed now, this script\'s server', `${feedBase}/embed`],
      ['the embed now, as lector serve answers it', `${base}/embed/${id}`],
    ];
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
    });
    const times = targets.map(() => []);
    try {
      for (let round = 0; round < rounds + 1; round += 1) {
        for (let t = 0; t < targets.length; t += 1) {
          const context = await browser.newContext();
          await context.addInitScript(() => {
            document.addEventListener('playing', () => {
              if (window.__firstPlay === undefined) window.__firstPlay = performance.now();
            }, true);
            document.addEventListener('DOMContentLoaded', () => {
              const audio = document.querySelector('audio');
              audio.muted = true;
              audio.play();
            });
          });
          const page = await context.newPage();
          await page.goto(targets[t][1], { waitUntil: 'commit' });
          const ms = await page.waitForFunction(() => window.__firstPlay, null, { timeout: 30_000 }).then((h) => h.jsonValue());
          // The first round warms the server and the browser's own caches: it is not counted.
          if (round > 0) times[t].push(ms);
          await context.close();
        }
      }
    } finally {
      await browser.close();
    }
    const baselineMedian = median(times[0]);
    console.log(`\ntime to first play, navigation start → 'playing' (${rounds} rounds, alternating, cold cache each):\n`);
    console.log('| page | median | min | max | median against the baseline |');
    console.log('|---|---:|---:|---:|---:|');
    targets.forEach(([what], t) => {
      const v = times[t];
      console.log(`| ${what} | ${median(v).toFixed(1)} ms | ${Math.min(...v).toFixed(1)} ms | ${Math.max(...v).toFixed(1)} ms | ${(median(v) / baselineMedian).toFixed(2)}× |`);
    });
  } finally {
    child.kill('SIGTERM');
    server.close();
    await rm(data, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
