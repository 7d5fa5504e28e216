// Drives Lector's web page in Debian's headless Chromium the way a person would, and saves a screenshot at each step.
//
//   node tests/browser/page.mjs PHASE CONFIG_JSON
//
// PHASE `main` starts from an empty `lector serve`: token, errors, preview, conversion, playback,
// download, embedding, the podcast feed, a failed post, the read-along player on the page and in
// the embed, subscriptions, the library across reloads, dark mode and a phone. PHASE `revision`
// runs after it, once the read-along post was edited (and the voice slowed): a new browser finds
// the library as the server keeps it, and the edited post, converted again, keeps its previous
// audio playing until the revision is complete.
//
// CONFIG_JSON: {base, feed_url, failing_post_url, read_along_feed_url, read_along_post_url,
// read_along_feed_title, edited_sentences, flaky_feed_url, flaky_break_url, shots}: `base` is the
// running `lector serve`, `feed_url` a feed whose first two posts convert and whose
// `failing_post_url` fails, the read-along feed carries its post whole with two headings, and the
// flaky feed answers until `flaky_break_url` is fetched, then HTTP 500. Exits non-zero with the failed step's name and
// reason on the first failure.

import { mkdtemp, mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.LECTOR_CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 15_000;
const CONVERSION_TIMEOUT_MS = 90_000;

const [phase, configText] = process.argv.slice(2);
let config = null;
try {
  config = JSON.parse(configText || '');
} catch {
  config = null;
}
if (!['main', 'revision'].includes(phase) || !config || !config.base || !config.feed_url || !config.shots) {
  console.error('usage: node page.mjs main|revision CONFIG_JSON');
  process.exit(2);
}
const baseUrl = config.base.replace(/\/+$/, '');
const feedUrl = config.feed_url;
const shotsDir = config.shots;
const failingPostUrl = config.failing_post_url;

let currentStep = 'starting';
const started = Date.now();
function step(name) {
  currentStep = name;
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${name}`);
}

class CheckFailed extends Error {}
function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

let shotNumber = 0;
async function shot(page, name, options = {}) {
  shotNumber += 1;
  const prefix = phase === 'main' ? '' : `${phase}-`;
  const file = path.join(shotsDir, `${prefix}${String(shotNumber).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, ...options });
  const { size } = await stat(file);
  check(size > 0, `the screenshot ${file} is empty`);
  console.log(`  screenshot ${file}`);
}

// Every address the page touches must be this machine: the page works offline.
function isLocal(url) {
  try {
    const u = new URL(url);
    if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
    return ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}

async function main() {
  await mkdir(shotsDir, { recursive: true });
  const profile = await mkdtemp(path.join(tmpdir(), 'lector-chromium-'));
  const pageErrors = [];
  const outside = [];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
    viewport: { width: 1100, height: 900 },
    permissions: ['clipboard-read', 'clipboard-write'],
    acceptDownloads: true,
    locale: 'en-US',
  });
  try {
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isLocal(url)) return route.continue();
      outside.push(url);
      return route.abort('blockedbyclient');
    });
    context.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(`${p.url()}: ${e.message}`)));
    // Records the Media Session's action handlers, so the lock-screen controls can be pressed.
    await context.addInitScript(() => {
      window.__mediaActions = {};
      const session = navigator.mediaSession;
      if (session && session.setActionHandler) {
        const original = session.setActionHandler.bind(session);
        session.setActionHandler = (action, handler) => {
          window.__mediaActions[action] = handler;
          return original(action, handler);
        };
      }
    });
    const page = context.pages()[0] || (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    page.setDefaultTimeout(STEP_TIMEOUT_MS);

    if (phase === 'main') {
      await openPage(page);
      if (process.env.LECTOR_API_TOKEN) await askForToken(page, process.env.LECTOR_API_TOKEN);
      await errorPaths(page);
      await sampleFeed(page);
      const posts = await keyboardPreviewAndConvert(page);
      await watchToCompletion(page, posts);
      await playAndSeek(page);
      await download(page);
      const embed = await copyEmbed(page);
      await embedPage(context, embed);
      await podcast(context, page, posts);
      await failingConversion(page);
      const readAlong = await convertReadAlong(page);
      await readAlongOnThePage(page, readAlong);
      await readAlongInTheEmbed(context, readAlong);
      const subscription = await subscriptionFlow(page);
      await libraryAfterReload(page, readAlong, subscription);
      await unsubscribeFlow(page, subscription);
      await failingSubscription(page);
      await darkMode(context, page, readAlong);
      await phone(context, page);
    } else {
      await revision(page);
    }

    step('no page errors and nothing fetched from outside this machine');
    check(pageErrors.length === 0, `the page threw: ${pageErrors.join('; ')}`);
    check(outside.length === 0, `the page asked for outside resources: ${outside.join(', ')}`);
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
  console.log(`all browser checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function openPage(page) {
  step('open the page');
  await page.goto(`${baseUrl}/`);
  await page.waitForFunction(() => !document.querySelector('#voice').disabled);
  const facts = await page.evaluate(() => {
    const unlabeled = [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => el.offsetParent !== null)
      .filter((el) => {
        if (el.tagName === 'BUTTON') return !el.textContent.trim() && !el.getAttribute('aria-label');
        return el.labels.length === 0 && !el.getAttribute('aria-label');
      })
      .map((el) => el.id || el.outerHTML.slice(0, 60));
    return {
      lang: document.documentElement.lang,
      h1: document.querySelectorAll('h1').length,
      h2: document.querySelectorAll('h2').length,
      unlabeled,
      voices: document.querySelector('#voice').options.length,
      voice: document.querySelector('#voice').value,
      engine: document.querySelector('#engine').value,
      live: document.querySelector('#error').getAttribute('aria-live'),
    };
  });
  check(facts.lang === 'en', `<html lang> is '${facts.lang}'`);
  check(facts.h1 === 1 && facts.h2 >= 3, `headings: ${facts.h1} h1 and ${facts.h2} h2`);
  check(facts.unlabeled.length === 0, `controls without a label: ${facts.unlabeled.join(', ')}`);
  check(facts.voices > 0 && facts.voice, 'the voice list is empty or nothing is chosen');
  check(facts.engine, 'no engine is chosen');
  check(facts.live === 'assertive', 'the error region is not an aria-live region');
  await page.waitForFunction(() => !/Loading/.test(document.querySelector('#library-status').textContent));
  await page.waitForFunction(() => !/Loading/.test(document.querySelector('#subscriptions-status').textContent));
  const empty = await page.evaluate(() => ({
    library: document.querySelector('#library-status').textContent,
    subscriptions: document.querySelector('#subscriptions-status').textContent,
    rows: document.querySelectorAll('#conversions .conversion, #subscriptions .subscription').length,
  }));
  check(empty.rows === 0, `a new server's page lists ${empty.rows} rows`);
  check(/Nothing narrated yet/.test(empty.library), `the empty library says '${empty.library}'`);
  check(/No subscriptions yet/.test(empty.subscriptions), `no subscriptions, and the page says '${empty.subscriptions}'`);
  await checkContrast(page, 'on the first view');
  await shot(page, 'open');
}

// With a token configured, writes are refused until the page is given it.
async function askForToken(page, token) {
  step('a server that needs a token: the page asks for it, keeps it and sends it');
  const attempt = async () => {
    await page.evaluate(() => {
      document.querySelector('#error').hidden = true;
    });
    await page.click('#preview-button');
    return errorText(page);
  };
  await page.fill('#feed-url', feedUrl);
  const missing = await attempt();
  check(/Authorization: Bearer/.test(missing) && /access token/.test(missing), `without a token the page says '${missing}'`);
  check(await page.$eval('#token-box', (d) => d.open), 'the token field is not opened after a 401');
  check((await focused(page)).id === 'token', 'focus does not move to the token field after a 401');

  await page.keyboard.type('not-the-token');
  await page.keyboard.press('Enter');
  const wrong = await attempt();
  check(wrong !== missing && /not valid/.test(wrong), `with a wrong token the page says '${wrong}'`);

  await page.fill('#token', token);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /saved/i.test(document.querySelector('#token-status').textContent));
  const stored = await page.evaluate(() => localStorage.getItem('lector.token'));
  check(stored === token, 'the token is not kept in localStorage');
  await shot(page, 'token');
  await page.click('#preview-button');
  await page.waitForSelector('#posts .post', { state: 'visible', timeout: 60_000 });
  check(await page.isHidden('#error'), 'an error is still shown once the token is right');
  console.log(`  no token: ${missing}\n  wrong token: ${wrong}`);
}

async function errorText(page) {
  await page.waitForFunction(() => {
    const box = document.querySelector('#error');
    return !box.hidden && box.textContent.trim().length > 0;
  });
  return (await page.textContent('#error')).trim();
}

async function errorPaths(page) {
  step('error path: an address that is not a web address');
  await page.goto(`${baseUrl}/`);
  await page.waitForFunction(() => !document.querySelector('#voice').disabled);
  await page.fill('#feed-url', 'not a web address');
  await page.click('#preview-button');
  const bad = await errorText(page);
  check(/could not read that feed/i.test(bad) && bad.length > 30, `the message for a bad address is '${bad}'`);
  check((await page.getAttribute('#feed-url', 'aria-invalid')) === 'true', 'the bad address is not marked invalid');

  step('error path: a page that is not a feed');
  await page.evaluate(() => {
    document.querySelector('#error').hidden = true;
  });
  await page.fill('#feed-url', `${baseUrl}/`);
  await page.click('#preview-button');
  const notFeed = await errorText(page);
  check(notFeed !== bad, 'the message did not change for a different error');
  check(/feed/i.test(notFeed), `the message for a page that is not a feed does not say so: '${notFeed}'`);
  check(await page.isHidden('#posts-section'), 'posts are shown for a page that is not a feed');
  console.log(`  bad address: ${bad}\n  not a feed: ${notFeed}`);
  await shot(page, 'error-not-a-feed');

  step('error path: the network is down');
  await page.evaluate(() => {
    document.querySelector('#error').hidden = true;
  });
  await page.context().setOffline(true);
  await page.fill('#feed-url', feedUrl);
  await page.click('#preview-button');
  const offline = await errorText(page);
  await page.context().setOffline(false);
  check(/could not reach the lector service/i.test(offline), `with no network the page says '${offline}'`);
  console.log(`  no network: ${offline}`);
}

// WCAG AA: 4.5:1 for text (3:1 from 18.66 px bold or 24 px), against the first opaque background.
async function checkContrast(page, where) {
  const poor = await page.evaluate(() => {
    const parse = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r, g, b, a };
    };
    const lum = ({ r, g, b }) => {
      const f = (v) => {
        const x = v / 255;
        return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0.5) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      if (!node.textContent.trim() || seen.has(el) || !el.offsetParent) continue;
      seen.add(el);
      if (el.closest('[disabled], .visually-hidden, option')) continue;
      const style = getComputedStyle(el);
      const fg = parse(style.color);
      const bg = background(el);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) out.push(`'${node.textContent.trim().slice(0, 30)}' ${ratio.toFixed(2)}:1`);
    }
    return out;
  });
  check(poor.length === 0, `text with too little contrast ${where}: ${poor.join('; ')}`);
}

async function sampleFeed(page) {
  step('the sample feed lector serve offers previews in one click');
  await page.goto(`${baseUrl}/`);
  await page.click('#sample-button');
  await page.waitForSelector('#posts .post', { state: 'visible', timeout: 30_000 });
  const value = await page.inputValue('#feed-url');
  check(value === `${baseUrl}/sample/feed.xml`, `the sample button filled in '${value}'`);
  const titles = await page.$$eval('#posts .post-title', (t) => t.map((x) => x.textContent));
  check(titles.length >= 2, `the sample feed shows ${titles.length} posts`);
  const meta = await page.textContent('#posts .post .post-meta');
  check(/\d words · [\d,]+ characters · cost/.test(meta), `a sample post (carried whole) shows '${meta}'`);
}

// Reads which element has focus and whether a focus ring is drawn around it.
async function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    const style = el ? getComputedStyle(el) : null;
    return {
      id: el ? el.id : '',
      tag: el ? el.tagName : '',
      ring: style ? style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0 : false,
    };
  });
}

async function tabTo(page, id, maxTabs = 40) {
  for (let i = 0; i < maxTabs; i += 1) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    if (f.id === id) {
      check(f.ring, `#${id} has focus but no visible focus ring`);
      return;
    }
  }
  throw new CheckFailed(`#${id} cannot be reached with the Tab key`);
}

async function keyboardPreviewAndConvert(page) {
  step('keyboard only: paste the feed, preview, pick two posts, convert');
  await page.goto(`${baseUrl}/`);
  await page.waitForFunction(() => !document.querySelector('#voice').disabled);
  await tabTo(page, 'feed-url');
  await page.evaluate((text) => navigator.clipboard.writeText(text), feedUrl);
  await page.keyboard.press('Control+V');
  const pasted = await page.inputValue('#feed-url');
  check(pasted === feedUrl, `pasting the feed address gave '${pasted}'`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#posts .post', { state: 'visible', timeout: 60_000 });
  check((await focused(page)).id === 'posts-heading', 'focus does not move to the posts once they are shown');

  const posts = await page.$$eval('#posts .post', (items) =>
    items.map((li) => ({
      title: li.querySelector('.post-title').textContent,
      meta: li.querySelector('.post-meta').textContent,
      disabled: li.querySelector('.post-check').disabled,
    })),
  );
  check(posts.length >= 2, `the preview shows ${posts.length} posts`);
  for (const post of posts.slice(0, 2)) {
    check(!post.disabled, `'${post.title}' cannot be selected`);
    check(/\d[\d,]* characters?/.test(post.meta), `'${post.title}' shows no length in characters: ${post.meta}`);
    check(/cost (free|about \$\d)/.test(post.meta), `'${post.title}' shows no cost estimate: ${post.meta}`);
  }
  console.log(posts.map((p) => `  ${p.title}: ${p.meta}`).join('\n'));
  await shot(page, 'preview');

  await tabTo(page, 'select-all');
  await tabTo(page, 'post-0', 3);
  await page.keyboard.press('Space');
  await tabTo(page, 'post-1', 3);
  await page.keyboard.press('Space');
  const summary = await page.textContent('#selection-summary');
  check(/^2 of \d+ posts selected/.test(summary), `the selection summary says '${summary}'`);
  await tabTo(page, 'convert-button', 10);
  await shot(page, 'selected');

  // Record every stage the rows show, to prove progress is followed live.
  await page.evaluate(() => {
    window.__stages = [];
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.attributeName === 'data-stage') window.__stages.push(r.oldValue, r.target.dataset.stage);
      }
    }).observe(document.querySelector('#conversions'), {
      attributes: true,
      attributeOldValue: true,
      subtree: true,
      attributeFilter: ['data-stage'],
    });
  });
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#conversions .conversion').length === 2);
  check((await focused(page)).id === 'library-heading', 'focus does not move to the library');
  return posts.slice(0, 2).map((p) => p.title);
}

async function watchToCompletion(page, titles) {
  step('both conversions show progress and reach completed');
  const rowsNow = await page.$$eval('#conversions .conversion', (rows) =>
    rows.map((r) => ({
      stage: r.querySelector('.conversion-stage').textContent,
      hasProgress: Boolean(r.querySelector('progress.conversion-progress')),
    })),
  );
  check(rowsNow.every((r) => r.stage && r.hasProgress), 'a row shows no stage or no progress bar');
  await shot(page, 'converting');
  try {
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('#conversions .conversion')];
        return rows.length === 2 && rows.every((r) => ['completed', 'failed'].includes(r.dataset.state));
      },
      null,
      { timeout: CONVERSION_TIMEOUT_MS, polling: 250 },
    );
  } catch (e) {
    const states = await page.$$eval('#conversions .conversion', (rows) =>
      rows.map((r) => `${r.dataset.state}/${r.querySelector('.conversion-stage').textContent}`),
    );
    throw new CheckFailed(`conversions not final after ${CONVERSION_TIMEOUT_MS / 1000} s: ${states.join(', ')}`);
  }
  const rows = await page.$$eval('#conversions .conversion', (list) =>
    list.map((r) => {
      const bar = r.querySelector('progress');
      return {
        title: r.querySelector('.conversion-title').textContent,
        state: r.dataset.state,
        stage: r.querySelector('.conversion-stage').textContent,
        error: r.querySelector('.conversion-error').textContent,
        value: bar.value,
        max: bar.max,
      };
    }),
  );
  for (const r of rows) {
    check(r.state === 'completed', `'${r.title}' ended ${r.state}: ${r.error}`);
    check(r.value === r.max && r.max >= 1, `'${r.title}' completed with its progress at ${r.value}/${r.max}`);
    check(r.stage === 'Ready to play', `'${r.title}' completed but says '${r.stage}'`);
  }
  check(rows.every((r) => r.title.trim().length > 0), `a row has no title (posts ${titles.join(', ')})`);
  const stages = (await page.evaluate(() => window.__stages)).filter(Boolean);
  console.log(`  stages seen: ${[...new Set(stages)].join(" → ")} (${stages.length} changes)`);
  check(stages.some((s) => s !== 'completed'), `no stage before completed was ever shown: ${stages.join(', ')}`);
  const live = await page.textContent('#notice');
  check(/ready to play/.test(live), `the live notice does not announce completion: '${live}'`);
  await checkContrast(page, 'with the players shown');
  await shot(page, 'completed');
}

async function playAndSeek(page) {
  step('each player loads, plays and seeks');
  const results = await page.$$eval('#conversions audio', async (players) => {
    const once = (el, event, ms) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
        el.addEventListener(event, () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
    const out = [];
    for (const audio of players) {
      try {
        if (audio.readyState < 1) {
          audio.load();
          await once(audio, 'loadedmetadata', 10000);
        }
        const duration = audio.duration;
        audio.muted = true;
        await audio.play();
        await new Promise((r) => setTimeout(r, 400));
        const played = audio.currentTime;
        audio.pause();
        const target = Math.min(duration * 0.6, duration - 0.5);
        const seeked = once(audio, 'seeked', 10000);
        audio.currentTime = target;
        await seeked;
        out.push({ src: audio.currentSrc, duration, played, target, now: audio.currentTime, error: null });
      } catch (e) {
        out.push({ src: audio.currentSrc, error: `${e.message} (media error ${audio.error && audio.error.code})` });
      }
    }
    return out;
  });
  check(results.length === 2, `${results.length} players on the page`);
  for (const r of results) {
    check(!r.error, `${r.src}: ${r.error}`);
    check(r.duration > 0 && Number.isFinite(r.duration), `${r.src}: duration ${r.duration}`);
    check(r.played > 0, `${r.src}: did not play (currentTime ${r.played})`);
    check(Math.abs(r.now - r.target) < 0.5, `${r.src}: seeking to ${r.target} landed at ${r.now}`);
    console.log(`  ${r.src}: ${r.duration.toFixed(2)} s, played to ${r.played.toFixed(2)}, seeked to ${r.now.toFixed(2)}`);
  }
}

async function download(page) {
  step('the download link answers 200 audio/mpeg and downloads an MP3');
  const link = page.locator('#conversions .conversion').first().locator('a.conversion-download');
  const href = await link.getAttribute('href');
  check(href, 'the download link has no address');
  const response = await fetch(new URL(href, baseUrl));
  check(response.status === 200, `GET ${href} answered ${response.status}`);
  const type = response.headers.get('content-type') || '';
  check(type.startsWith('audio/mpeg'), `GET ${href} is '${type}'`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const mp3 = (bytes[0] === 0x49 && bytes[1] === 0x44 && bytes[2] === 0x33) || (bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0);
  check(bytes.length > 1000 && mp3, `GET ${href}: ${bytes.length} bytes that do not start like an MP3`);

  const [file] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const name = file.suggestedFilename();
  check(name.endsWith('.mp3'), `the download is named '${name}'`);
  const saved = await stat(await file.path());
  check(saved.size === bytes.length, `the downloaded file has ${saved.size} bytes, the audio ${bytes.length}`);
  console.log(`  ${name}: ${saved.size} bytes`);
}

async function copyEmbed(page) {
  step('copy the embed code');
  const row = page.locator('#conversions .conversion').first();
  await row.locator('button.conversion-copy').focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    (id) => /copied/i.test(document.querySelector(`[data-conversion-id="${id}"] .conversion-copied`).textContent),
    await row.getAttribute('data-conversion-id'),
  );
  const confirmation = await row.locator('.conversion-copied').textContent();
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  const shown = await row.locator('textarea.conversion-embed-code').inputValue();
  check(clipboard === shown, `the clipboard holds '${clipboard}', the page shows '${shown}'`);
  check(/^<iframe [^>]*src="[^"]+\/embed\/[0-9a-f]{20}"/.test(clipboard), `the embed code is '${clipboard}'`);
  console.log(`  ${confirmation}\n  ${clipboard}`);
  await row.locator('details.conversion-embed summary').click();
  await shot(page, 'embed-copied');
  return clipboard;
}

async function embedPage(context, embedHtml) {
  step('the embed page plays, standalone and inside an iframe');
  const src = embedHtml.match(/src="([^"]+)"/)[1].replace(/&amp;/g, '&');
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const answer = await page.goto(src);
  check(answer.status() === 200, `GET ${src} answered ${answer.status()}`);
  const facts = await page.evaluate(async () => {
    const audio = document.querySelector('audio');
    if (audio.readyState < 1) {
      await new Promise((resolve) => {
        audio.addEventListener('loadedmetadata', resolve, { once: true });
        setTimeout(resolve, 10000);
      });
    }
    const link = document.querySelector('.meta a[href]');
    return {
      title: document.querySelector('h1').textContent.trim(),
      text: document.body.innerText,
      duration: audio.duration,
      link: link ? link.href : null,
      scripts: document.scripts.length,
      external: document.querySelectorAll('script[src], link[rel="stylesheet"]').length,
      placeholders: document.documentElement.outerHTML.includes('{{'),
    };
  });
  check(facts.title.length > 0, 'the embed page has no title');
  check(facts.duration > 0, `the embed player has duration ${facts.duration}`);
  check(/Length \d+:\d\d/.test(facts.text), `the embed page shows no length: '${facts.text}'`);
  check(facts.link && /^http/.test(facts.link), 'the embed page does not link to the post');
  check(!facts.placeholders, 'the embed page still has {{placeholders}}');
  check(facts.scripts === 1, `the embed page runs ${facts.scripts} scripts, not its one inline player`);
  check(facts.external === 0, `the embed page loads ${facts.external} files besides its audio and text`);
  await shot(page, 'embed-page', { fullPage: false });

  await page.setViewportSize({ width: 640, height: 220 });
  await page.setContent(`<!doctype html><html lang="en"><body style="margin:8px">${embedHtml}</body></html>`);
  const frame = await (await page.waitForSelector('iframe')).contentFrame();
  await frame.waitForSelector('audio');
  const framed = await frame.evaluate(() => {
    const audio = document.querySelector('audio');
    return { src: audio.currentSrc || audio.src, overflow: document.documentElement.scrollHeight > window.innerHeight };
  });
  check(framed.src.includes('/audio'), `the framed player has no audio: ${framed.src}`);
  check(!framed.overflow, 'the embed page does not fit its iframe');
  await shot(page, 'embed-in-iframe', { fullPage: false });
  await page.close();
}

async function podcast(context, page, titles) {
  step('the subscribe link answers an RSS feed listing both episodes');
  const href = await page.locator('#conversions .conversion a.conversion-subscribe').first().getAttribute('href');
  check(href && /\/feeds\/[0-9a-f]{16}\/podcast\.xml$/.test(href), `the subscribe link is '${href}'`);
  const response = await fetch(href);
  check(response.status === 200, `GET ${href} answered ${response.status}`);
  const type = response.headers.get('content-type') || '';
  check(/xml/.test(type), `GET ${href} is '${type}'`);
  const xml = await response.text();
  check(/<rss[\s>]/.test(xml), 'the podcast is not RSS');
  const items = xml.match(/<item>[\s\S]*?<\/item>/g) || [];
  check(items.length === 2, `the podcast lists ${items.length} episodes`);
  for (const item of items) {
    check(/<enclosure [^>]*type="audio\/mpeg"/.test(item), `an episode has no MP3 enclosure: ${item.slice(0, 200)}`);
  }
  const rowsAudio = await page.$$eval('#conversions audio', (a) => a.map((x) => x.getAttribute('src')));
  for (const audio of rowsAudio) {
    check(xml.includes(audio.replace(/&/g, '&amp;')), `the podcast does not carry ${audio}`);
  }
  const view = await context.newPage();
  await view.goto(href);
  await shot(view, 'podcast');
  await view.close();
  console.log(`  ${items.length} episodes for ${titles.join(', ')}`);
}

async function failingConversion(page) {
  step('a post that cannot be converted says why');
  await page.evaluate(() => {
    document.querySelector('#error').hidden = true;
  });
  const index = await page.$$eval(
    '#posts .post',
    (posts, url) => posts.findIndex((li) => li.dataset.url === url),
    failingPostUrl,
  );
  check(index >= 0, `the preview does not list ${failingPostUrl}`);
  await page.uncheck('#post-0');
  await page.uncheck('#post-1');
  await page.check(`#post-${index}`);
  await page.click('#convert-button');
  await page.waitForFunction(() => document.querySelectorAll('#conversions .conversion').length === 3);
  const message = await errorText(page).catch(() => '');
  await page.waitForFunction(
    () => [...document.querySelectorAll('#conversions .conversion')].some((r) => r.dataset.state === 'failed'),
    null,
    { timeout: CONVERSION_TIMEOUT_MS },
  );
  const alert = (await page.textContent('#error')).trim();
  const rowError = await page.textContent('#conversions .conversion[data-state="failed"] .conversion-error');
  check(/Lector\.\w+/.test(rowError) && rowError.length > 40, `the failed row says '${rowError}'`);
  check(/could not be converted/.test(alert) && /Lector\.\w+/.test(alert), `the alert says '${alert}' (${message})`);
  console.log(`  ${rowError}`);
  await checkContrast(page, 'with an error shown');
  await shot(page, 'failed');
}

async function phone(context, page) {
  step('a 375 px wide phone: no horizontal scroll');
  await page.setViewportSize({ width: 375, height: 812 });
  await page.waitForTimeout(100);
  const wide = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: document.documentElement.clientWidth,
    culprits: [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
      .slice(0, 5)
      .map((el) => el.tagName + (el.id ? `#${el.id}` : el.className ? `.${el.className}` : '')),
  }));
  check(wide.scroll <= wide.width, `the page is ${wide.scroll} px wide in a ${wide.width} px window: ${wide.culprits.join(', ')}`);
  await shot(page, 'phone');

  const fresh = await context.newPage();
  await fresh.setViewportSize({ width: 375, height: 812 });
  await fresh.goto(`${baseUrl}/`);
  await fresh.fill('#feed-url', feedUrl);
  await fresh.click('#preview-button');
  await fresh.waitForSelector('#posts .post', { state: 'visible', timeout: 60_000 });
  const scroll = await fresh.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(scroll <= 0, `the preview on a phone scrolls sideways by ${scroll} px`);
  const converted = await fresh.$$eval('#posts .post[data-state="completed"] .post-state', (s) => s.map((x) => x.textContent));
  check(
    converted.length === 2 && converted.every((t) => /Already converted/.test(t)),
    `a new preview shows ${converted.length} posts as already converted: ${converted.join('; ')}`,
  );
  await shot(fresh, 'phone-preview');
  await fresh.close();
}

// ---- the read-along player ---------------------------------------------------------------------

// The sentence whose [start, end) holds t, by the millisecond: the rule of Rust's
// Timeline::segment_at, written again here (a linear scan) as the oracle for the page's.
const msOf = (t) => Math.round(t * 1000);
function holding(segments, t) {
  const at = msOf(t);
  return segments.findIndex((s) => msOf(s.start) <= at && at < msOf(s.end));
}

async function apiGet(pathOrUrl) {
  const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${baseUrl}${pathOrUrl}`;
  const response = await fetch(url);
  check(response.ok, `GET ${url} answered ${response.status}`);
  return response.json();
}

// The conversion's status and the timeline of its audio, from the API.
async function readAlongFacts(id) {
  const { data: status } = await apiGet(`/conversions/${id}`);
  check(status.timeline_url, `conversion ${id} has no timeline_url: ${JSON.stringify(status)}`);
  const timeline = await apiGet(status.timeline_url);
  return { id, status, timeline, segments: timeline.segments, chapters: timeline.chapters };
}

async function previewAndConvert(page, feed, postUrl) {
  await page.fill('#feed-url', feed);
  await page.click('#preview-button');
  await page.waitForSelector('#posts .post', { state: 'visible', timeout: 60_000 });
  const index = await page.$$eval('#posts .post', (posts, url) => posts.findIndex((li) => li.dataset.url === url), postUrl);
  check(index >= 0, `the preview of ${feed} does not list ${postUrl}`);
  for (const box of await page.$$('#posts .post-check:checked')) await box.uncheck();
  await page.check(`#post-${index}`);
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/conversions/batch') && r.request().method() === 'POST'),
    page.click('#convert-button'),
  ]);
  const body = await answer.json();
  const id = body.data && body.data.conversions && body.data.conversions[0] && body.data.conversions[0].conversion_id;
  check(id, `the batch answered ${JSON.stringify(body)}`);
  return { id, index };
}

async function waitState(page, id, states, timeout = CONVERSION_TIMEOUT_MS) {
  try {
    await page.waitForFunction(
      ({ id, states }) => {
        const row = document.querySelector(`#conversions [data-conversion-id="${id}"]`);
        return row && states.includes(row.dataset.state);
      },
      { id, states },
      { timeout, polling: 100 },
    );
  } catch {
    const now = await page.$eval(`#conversions [data-conversion-id="${id}"]`, (r) => `${r.dataset.state}: ${r.textContent.replace(/\s+/g, ' ').slice(0, 300)}`).catch(() => 'no row');
    throw new CheckFailed(`conversion ${id} is not ${states.join(' or ')} after ${timeout / 1000} s (${now})`);
  }
}

async function convertReadAlong(page) {
  step('a short post with two chapters, carried whole in its feed, converted from the page');
  await page.goto(`${baseUrl}/`);
  await page.waitForFunction(() => !document.querySelector('#voice').disabled);
  const { id } = await previewAndConvert(page, config.read_along_feed_url, config.read_along_post_url);
  await waitState(page, id, ['completed']);
  const facts = await readAlongFacts(id);
  check(facts.segments.length >= 8, `the read-along post has ${facts.segments.length} timed sentences`);
  check(facts.chapters.length === 2, `the read-along post has ${facts.chapters.length} chapters`);
  check(facts.status.feed_title === config.read_along_feed_title, `its feed title is '${facts.status.feed_title}'`);
  console.log(`  ${facts.segments.length} sentences, chapters ${facts.chapters.map((c) => `${c.start}s ${c.title}`).join(', ')}`);
  return facts;
}

// Plays `audio` (in the page or a frame) until it passes the second sentence's start, pauses, and
// reads the time and the highlighted sentences.
async function playPastSecondSentence(where, audioSelector, pane, segments) {
  const second = segments[1].start;
  await where.evaluate(async (sel) => {
    const audio = document.querySelector(sel);
    audio.muted = true;
    await audio.play();
  }, audioSelector);
  await where.waitForFunction(({ sel, second }) => document.querySelector(sel).currentTime > second + 0.05, { sel: audioSelector, second }, { timeout: 30_000, polling: 'raf' });
  return where.evaluate(async ({ sel, pane }) => {
    const audio = document.querySelector(sel);
    const paused = new Promise((resolve) => audio.addEventListener('pause', resolve, { once: true }));
    audio.pause();
    await paused;
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    const current = [...document.querySelectorAll(`${pane} .lp-s[aria-current]`)].map((s) => Number(s.dataset.i));
    return { t: audio.currentTime, current };
  }, { sel: audioSelector, pane });
}

function checkHighlight(where, reading, segments) {
  const expected = holding(segments, reading.t);
  check(expected >= 1, `${where}: at ${reading.t}s no sentence after the first holds the time`);
  check(
    reading.current.length === 1 && reading.current[0] === expected,
    `${where}: at ${reading.t.toFixed(3)}s sentence ${expected} [${segments[expected].start}, ${segments[expected].end}) holds the time, but the highlighted sentences are [${reading.current}]`,
  );
  console.log(`  ${where}: at ${reading.t.toFixed(3)} s sentence ${expected} [${segments[expected].start}, ${segments[expected].end}) is highlighted`);
}

// A click on sentence k: the audio seeks to its start and plays from there.
async function clickSeeks(where, audioSelector, sentenceSelector, segments, k) {
  await where.evaluate((sel) => {
    const audio = document.querySelector(sel);
    window.__seeked = new Promise((resolve) => audio.addEventListener('seeked', () => resolve(audio.currentTime), { once: true }));
  }, audioSelector);
  await where.click(sentenceSelector);
  const landed = await where.evaluate(() => window.__seeked);
  // It plays at once from there, so the time may be a few milliseconds on when 'seeked' fires.
  check(landed >= segments[k].start - 0.001 && landed - segments[k].start < 0.15 && holding(segments, landed) === k, `a click on sentence ${k} (start ${segments[k].start}s) seeked to ${landed}s`);
  const after = await where.evaluate(async ({ sel, sentence }) => {
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    const audio = document.querySelector(sel);
    const playing = !audio.paused;
    audio.pause();
    return { playing, current: document.querySelector(sentence).getAttribute('aria-current') };
  }, { sel: audioSelector, sentence: sentenceSelector });
  check(after.playing, `a click on sentence ${k} did not play from there`);
  check(after.current === 'true', `sentence ${k} is not highlighted once clicked`);
  console.log(`  a click on sentence ${k} seeked to ${landed.toFixed(3)} s (its start ${segments[k].start} s)`);
}

async function readAlongOnThePage(page, ra) {
  const row = `#conversions [data-conversion-id="${ra.id}"]`;
  const audio = `${row} audio`;
  step('read along on the page: the text beside the audio, sentence by sentence, in chapters');
  await page.locator(row).scrollIntoViewIfNeeded();
  await page.waitForFunction(({ row, n }) => document.querySelectorAll(`${row} .lp-s`).length === n, { row, n: ra.segments.length });
  const shown = await page.evaluate((row) => ({
    sentences: [...document.querySelectorAll(`${row} .lp-s`)].map((s) => s.textContent),
    headings: [...document.querySelectorAll(`${row} .lp-text h4`)].map((h) => h.textContent),
    speeds: [...document.querySelectorAll(`${row} .lp-speed option`)].map((o) => Number(o.value)),
    speedLabel: document.querySelector(`${row} .lp-speed`).labels[0].textContent,
    chapters: [...document.querySelectorAll(`${row} .lp-chapter option`)].map((o) => o.textContent),
    summary: document.querySelector(`${row} .conversion-summary`).textContent,
    transcripts: [...document.querySelectorAll(`${row} .conversion-transcripts a:not([hidden])`)].map((a) => a.href),
    roles: [...document.querySelectorAll(`${row} .lp-s`)].every((s) => s.getAttribute('role') === 'button'),
    tabStops: document.querySelectorAll(`${row} .lp-s[tabindex="0"]`).length,
  }), row);
  check(shown.sentences.join('|') === ra.segments.map((s) => s.text).join('|'), `the text shown is not the timeline's: ${shown.sentences.join('|')}`);
  check(shown.headings.join('|') === ra.chapters.map((c) => c.title).join('|'), `the post's headings show as ${shown.headings.join('|')}`);
  check(shown.roles && shown.tabStops === 1, `sentences are not buttons with one tab stop (${shown.tabStops})`);
  check(JSON.stringify(shown.speeds) === JSON.stringify([0.75, 1, 1.25, 1.5, 1.75, 2]), `speeds offered: ${shown.speeds}`);
  check(shown.chapters.length === 2 && ra.chapters.every((c, i) => shown.chapters[i].includes(c.title)), `chapters offered: ${shown.chapters.join(', ')}`);
  check(/^Narrated \d+ sentences, [\d,]+ characters\.$/.test(shown.summary), `the row says what the speech cost as '${shown.summary}'`);
  check(shown.transcripts.length === 4, `the row links ${shown.transcripts.length} transcripts and chapters`);
  for (const href of shown.transcripts) {
    const r = await fetch(href);
    check(r.ok, `GET ${href} answered ${r.status}`);
  }

  step('play: the highlighted sentence is the one whose interval holds the time');
  checkHighlight('the page, paused past the second sentence', await playPastSecondSentence(page, audio, row, ra.segments), ra.segments);

  step('speed 2×, and the highlight follows the time while playing');
  await page.selectOption(`${row} .lp-speed`, '2');
  const rate = await page.$eval(audio, (a) => a.playbackRate);
  check(rate === 2, `speed 2× set the playback rate to ${rate}`);
  const samples = await page.evaluate(async ({ sel, row }) => {
    const audio = document.querySelector(sel);
    audio.currentTime = 0;
    await audio.play();
    const out = [];
    const until = performance.now() + 2500;
    await new Promise((resolve) => {
      const sample = () => {
        const current = document.querySelector(`${row} .lp-s[aria-current]`);
        out.push({ t: audio.currentTime, i: current ? Number(current.dataset.i) : -1 });
        if (performance.now() < until && !audio.ended) requestAnimationFrame(sample);
        else resolve();
      };
      requestAnimationFrame(sample);
    });
    audio.pause();
    return out;
  }, { sel: audio, row });
  // A frame may read the time a moment after the player did: off by one only at a boundary.
  const off = samples.filter((s) => {
    const expected = holding(ra.segments, s.t);
    if (s.i === expected) return false;
    const near = [s.i, expected].filter((i) => i >= 0).some((i) => Math.abs(ra.segments[i].start - s.t) < 0.1 || Math.abs(ra.segments[i].end - s.t) < 0.1);
    return !near;
  });
  const seen = [...new Set(samples.map((s) => s.i))];
  check(samples.length >= 20, `only ${samples.length} frames were sampled`);
  check(off.length === 0, `the highlight did not hold the time in ${off.length} of ${samples.length} frames: ${JSON.stringify(off.slice(0, 5))}`);
  check(seen.length >= 2 && seen.every((v, i) => i === 0 || v > seen[i - 1]), `the highlight moved through ${JSON.stringify(seen)}`);
  console.log(`  ${samples.length} frames from ${samples[0].t.toFixed(2)} to ${samples.at(-1).t.toFixed(2)} s: sentences ${seen.join(' → ')}`);
  await page.selectOption(`${row} .lp-speed`, '1');

  step('a click on a later sentence seeks to its start, and the text keeps it in view');
  // A small text box, so that keeping the sentence in view means scrolling it.
  await page.addStyleTag({ content: `${row} .lp-text { max-height: 4.5em !important; }` });
  await page.$eval(`${row} .lp-text`, (pane) => {
    pane.scrollTop = 0;
  });
  const last = ra.segments.length - 1;
  await page.$eval(audio, (a) => {
    a.currentTime = 0;
  });
  await page.$eval(audio, (a) => a.play());
  // Seek by the audio itself (as the native controls do): the text scrolls to the sentence.
  await page.$eval(audio, (a, t) => {
    a.currentTime = t;
  }, ra.segments[last].start + 0.01);
  await page.waitForFunction(({ row, last }) => {
    const pane = document.querySelector(`${row} .lp-text`);
    const s = document.querySelector(`${row} .lp-s[data-i="${last}"]`);
    return s.getAttribute('aria-current') === 'true' && pane.scrollTop > 0 && s.offsetTop >= pane.scrollTop && s.offsetTop + s.offsetHeight <= pane.scrollTop + pane.clientHeight + 1;
  }, { row, last }, { timeout: 5000 });
  await page.$eval(audio, (a) => a.pause());
  await clickSeeks(page, audio, `${row} .lp-s[data-i="${last - 1}"]`, ra.segments, last - 1);
  await page.addStyleTag({ content: `${row} .lp-text { max-height: 16rem !important; }` });

  step('chapters: choose one, previous and next');
  const chapterTime = async () => page.$eval(audio, (a) => a.currentTime);
  await page.selectOption(`${row} .lp-chapter`, '1');
  check(Math.abs((await chapterTime()) - ra.chapters[1].start) < 0.01, `choosing chapter 2 went to ${await chapterTime()}`);
  await page.click(`${row} .lp-prev`);
  check(Math.abs((await chapterTime()) - ra.chapters[0].start) < 0.01, `previous chapter went to ${await chapterTime()}`);
  await page.click(`${row} .lp-next`);
  check(Math.abs((await chapterTime()) - ra.chapters[1].start) < 0.01, `next chapter went to ${await chapterTime()}`);
  check(await page.$eval(`${row} .lp-next`, (b) => b.disabled), 'next chapter is offered from the last chapter');
  check((await page.$eval(`${row} .lp-chapter`, (s) => s.value)) === '1', 'the chapter list does not show the chapter playing');

  step('the Media Session: title, feed, cover and lock-screen controls');
  await page.$eval(audio, async (a) => {
    await a.play();
    a.pause();
  });
  const session = await page.evaluate(() => {
    const m = navigator.mediaSession.metadata;
    return {
      title: m && m.title,
      artist: m && m.artist,
      artwork: m ? m.artwork.map((a) => a.src) : [],
      actions: Object.keys(window.__mediaActions).filter((k) => window.__mediaActions[k]),
    };
  });
  check(session.title === ra.status.title, `the Media Session title is '${session.title}', not '${ra.status.title}'`);
  check(session.artist === config.read_along_feed_title, `the Media Session artist is '${session.artist}'`);
  check(session.artwork.length === 1 && session.artwork[0].endsWith(`/feeds/${ra.status.feed_id}/cover.png`), `the artwork is ${session.artwork}`);
  const cover = await fetch(session.artwork[0]);
  check(cover.ok && cover.headers.get('content-type') === 'image/png', `the artwork answers ${cover.status} ${cover.headers.get('content-type')}`);
  for (const action of ['play', 'pause', 'seekto', 'seekbackward', 'seekforward', 'previoustrack', 'nexttrack']) {
    check(session.actions.includes(action), `no Media Session handler for '${action}' (${session.actions})`);
  }
  const pressed = await page.evaluate(async (sel) => {
    const audio = document.querySelector(sel);
    const press = (action, details = {}) => {
      window.__mediaActions[action]({ action, ...details });
      return audio.currentTime;
    };
    return { seekto: press('seekto', { seekTime: 1.5 }), next: press('nexttrack'), previous: press('previoustrack') };
  }, audio);
  check(Math.abs(pressed.seekto - 1.5) < 0.01, `the lock screen's seek went to ${pressed.seekto}`);
  check(Math.abs(pressed.next - ra.chapters[1].start) < 0.01, `the lock screen's next went to ${pressed.next}`);
  check(Math.abs(pressed.previous - ra.chapters[0].start) < 0.01, `the lock screen's previous went to ${pressed.previous}`);
  console.log(`  '${session.title}' by '${session.artist}', ${session.actions.length} actions`);
  await checkContrast(page, 'with a sentence highlighted');
  await shot(page, 'read-along');

  step('keyboard: Tab reaches the text, arrows move between sentences, Enter listens from one');
  await page.focus(`${row} .lp-chapter`);
  let sentence = null;
  for (let i = 0; i < 4 && !sentence; i += 1) {
    await page.keyboard.press('Tab');
    sentence = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || !el.classList.contains('lp-s')) return null;
      const style = getComputedStyle(el);
      return { i: Number(el.dataset.i), ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0 };
    });
  }
  check(sentence, 'Tab from the chapters does not reach the text');
  check(sentence.ring, 'a focused sentence shows no focus ring');
  await page.keyboard.press('ArrowDown');
  const moved = await page.evaluate(() => Number(document.activeElement.dataset.i));
  check(moved === sentence.i + 1, `ArrowDown moved from sentence ${sentence.i} to ${moved}`);
  await page.evaluate((sel) => {
    const audio = document.querySelector(sel);
    window.__seeked = new Promise((resolve) => audio.addEventListener('seeked', () => resolve(audio.currentTime), { once: true }));
  }, audio);
  await page.keyboard.press('Enter');
  const landed = await page.evaluate(() => window.__seeked);
  check(landed >= ra.segments[moved].start - 0.001 && landed - ra.segments[moved].start < 0.15, `Enter on sentence ${moved} (start ${ra.segments[moved].start}) seeked to ${landed}`);
  await shot(page, 'read-along-keyboard');
  await page.$eval(audio, (a) => a.pause());
}

async function readAlongInTheEmbed(context, ra) {
  step('the embed reads along too: one request of HTML with its script and style inline');
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const answer = await page.goto(ra.status.embed_url);
  check(answer.status() === 200, `GET ${ra.status.embed_url} answered ${answer.status()}`);
  await page.waitForFunction((n) => document.querySelectorAll('.lp-s').length === n, ra.segments.length);
  const facts = await page.evaluate(() => ({
    src: document.querySelector('audio').getAttribute('src'),
    title: document.querySelector('h1').textContent,
    chapters: document.querySelectorAll('.lp-chapter option').length,
    speeds: document.querySelectorAll('.lp-speed option').length,
  }));
  check(facts.src.endsWith(`/conversions/${ra.id}/audio/r1.mp3`), `the embed plays ${facts.src}`);
  check(facts.title === ra.status.title, `the embed's title is '${facts.title}'`);
  check(facts.chapters === 2 && facts.speeds === 6, `the embed offers ${facts.chapters} chapters and ${facts.speeds} speeds`);
  checkHighlight('the embed, paused past the second sentence', await playPastSecondSentence(page, 'audio', 'main', ra.segments), ra.segments);
  const k = ra.segments.length - 2;
  await clickSeeks(page, 'audio', `.lp-s[data-i="${k}"]`, ra.segments, k);
  const session = await page.evaluate(() => navigator.mediaSession.metadata && navigator.mediaSession.metadata.artist);
  check(session === config.read_along_feed_title, `the embed's Media Session artist is '${session}'`);
  await shot(page, 'embed-read-along', { fullPage: false });

  step('the embed in its iframe: the text scrolls inside it; the old 130 px frame shows the player alone');
  await page.setViewportSize({ width: 700, height: 420 });
  await page.setContent(`<!doctype html><html lang="en"><body style="margin:8px">${ra.status.embed_html}</body></html>`);
  let frame = await (await page.waitForSelector('iframe')).contentFrame();
  await frame.waitForFunction((n) => document.querySelectorAll('.lp-s').length === n, ra.segments.length);
  const framed = await frame.evaluate(() => {
    const pane = document.querySelector('.lp-text');
    return {
      overflow: document.documentElement.scrollHeight > window.innerHeight,
      pane: pane.getBoundingClientRect().height,
      height: window.innerHeight,
    };
  });
  check(!framed.overflow, 'the embed does not fit its iframe');
  check(framed.pane >= 100, `the text gets ${framed.pane} px of a ${framed.height} px iframe`);
  // Following the audio scrolls the text, never the page that frames it.
  await page.evaluate(() => {
    document.body.style.paddingBottom = '2000px';
    window.scrollTo(0, 0);
  });
  await frame.evaluate(async (t) => {
    const audio = document.querySelector('audio');
    audio.muted = true;
    await audio.play();
    audio.currentTime = t;
  }, ra.segments.at(-1).start + 0.01);
  await frame.waitForFunction((i) => document.querySelector(`.lp-s[data-i="${i}"]`).getAttribute('aria-current') === 'true', ra.segments.length - 1);
  await frame.evaluate(() => document.querySelector('audio').pause());
  const hostScroll = await page.evaluate(() => window.scrollY);
  check(hostScroll === 0, `following the audio scrolled the framing page to ${hostScroll}`);
  await shot(page, 'embed-read-along-in-iframe', { fullPage: false });

  await page.setContent(`<!doctype html><html lang="en"><body style="margin:8px">${ra.status.embed_html.replace('height="360"', 'height="130"')}</body></html>`);
  frame = await (await page.waitForSelector('iframe')).contentFrame();
  await frame.waitForSelector('audio');
  const compact = await frame.evaluate(() => ({
    overflow: document.documentElement.scrollHeight > window.innerHeight,
    text: getComputedStyle(document.querySelector('.lp-text')).display,
    audio: document.querySelector('audio').getBoundingClientRect().height,
  }));
  check(!compact.overflow && compact.text === 'none' && compact.audio > 0, `a 130 px frame: ${JSON.stringify(compact)}`);
  await shot(page, 'embed-compact', { fullPage: false });
  await page.close();
}

// ---- subscriptions -------------------------------------------------------------------------------

async function subscriptionFacts(page, row) {
  return page.$eval(row, (li) => ({
    state: li.dataset.state,
    lastPoll: li.dataset.lastPoll,
    nextPoll: li.dataset.nextPoll,
    title: li.querySelector('.subscription-title').textContent,
    badge: li.querySelector('.badge').textContent,
    last: li.querySelector('.subscription-last').textContent,
    next: li.querySelector('.subscription-next').textContent,
    nextTime: (li.querySelector('.subscription-next time') || {}).dateTime || '',
    visible: [...li.querySelectorAll('.actions button')].filter((b) => !b.hidden).map((b) => b.textContent.trim()),
  }));
}

async function waitSubscription(page, row, test, what, timeout = 40_000) {
  try {
    await page.waitForFunction(test, row, { timeout, polling: 200 });
  } catch {
    throw new CheckFailed(`the subscription did not show ${what} within ${timeout / 1000} s: ${JSON.stringify(await subscriptionFacts(page, row))}`);
  }
}

async function subscriptionFlow(page) {
  step('subscribe from the page: the subscription lists its state, last and next poll');
  await page.goto(`${baseUrl}/`);
  await page.waitForFunction(() => !document.querySelector('#voice').disabled);
  await page.fill('#feed-url', config.read_along_feed_url);
  await page.click('#subscribe-button');
  await page.waitForSelector('#subscriptions .subscription');
  const feedId = await page.getAttribute('#subscriptions .subscription', 'data-feed-id');
  const row = `#subscriptions .subscription[data-feed-id="${feedId}"]`;
  const notice = await page.textContent('#notice');
  check(/Subscribed to/.test(notice), `after subscribing the page says '${notice}'`);
  await waitSubscription(page, row, (r) => document.querySelector(r).dataset.lastPoll !== '', 'its first poll');
  let facts = await subscriptionFacts(page, row);
  const { data: api } = await apiGet(`/feeds/${feedId}`);
  check(facts.state === 'active' && facts.badge === 'Active', `a new subscription shows ${facts.state} '${facts.badge}'`);
  check(facts.title === config.read_along_feed_title, `the subscription is titled '${facts.title}'`);
  check(/HTTP 200/.test(facts.last), `the last poll shows '${facts.last}'`);
  check(facts.nextTime && facts.nextTime === api.next_poll_at && Date.parse(facts.nextTime) > Date.now(), `the next poll shows '${facts.next}' (${facts.nextTime}; the API says ${api.next_poll_at})`);
  check(/^in /.test(facts.next), `the next poll reads '${facts.next}'`);
  check(['Pause', 'Poll now', 'Show its narrations', 'Unsubscribe'].every((b) => facts.visible.includes(b)) && !facts.visible.includes('Resume'), `an active subscription offers ${facts.visible}`);
  console.log(`  last poll: ${facts.last}\n  next poll: ${facts.next}`);
  await checkContrast(page, 'with a subscription listed');
  await shot(page, 'subscribed');

  step('pause and resume');
  await page.click(`${row} .subscription-pause`);
  await waitSubscription(page, row, (r) => document.querySelector(r).dataset.state === 'paused', 'paused');
  facts = await subscriptionFacts(page, row);
  check(facts.badge === 'Paused' && facts.next === 'None while paused', `a paused subscription shows '${facts.badge}', next poll '${facts.next}'`);
  check(facts.visible.includes('Resume') && !facts.visible.includes('Pause') && !facts.visible.includes('Poll now'), `a paused subscription offers ${facts.visible}`);
  check(await page.evaluate(() => document.activeElement.classList.contains('subscription-resume')), 'focus does not move to Resume');
  check((await apiGet(`/feeds/${feedId}`)).data.state === 'paused', 'the API does not say paused');
  await shot(page, 'subscription-paused');
  const beforeResume = facts.lastPoll;
  await page.keyboard.press('Enter');
  await waitSubscription(page, row, (r) => document.querySelector(r).dataset.state === 'active', 'resumed');
  check((await apiGet(`/feeds/${feedId}`)).data.state === 'active', 'the API does not say active after resuming');
  // A resumed subscription is due at once: the poller takes it.
  await page.waitForFunction(({ r, before }) => document.querySelector(r).dataset.lastPoll !== before, { r: row, before: beforeResume }, { timeout: 40_000 });

  step('poll now');
  const before = (await subscriptionFacts(page, row)).lastPoll;
  await page.click(`${row} .subscription-poll`);
  await page.waitForFunction(({ r, before }) => document.querySelector(r).dataset.lastPoll !== before, { r: row, before }, { timeout: 40_000 });
  facts = await subscriptionFacts(page, row);
  check(Date.parse(facts.lastPoll) > Date.parse(before), `poll now: the last poll went from ${before} to ${facts.lastPoll}`);
  check((await apiGet(`/feeds/${feedId}`)).data.last_poll_at === facts.lastPoll, 'the page and the API disagree on the last poll');
  await page.waitForFunction(() => /polled/.test(document.querySelector('#notice').textContent));
  console.log(`  polled at ${before}, then ${facts.lastPoll}`);
  return { feedId, row };
}

async function unsubscribeFlow(page, subscription) {
  step('unsubscribe: asked first; the subscription ends, its narrations stay');
  await page.goto(`${baseUrl}/`);
  const { row, feedId } = subscription;
  await page.waitForSelector(row);
  let asked = '';
  page.once('dialog', (dialog) => {
    asked = dialog.message();
    dialog.accept();
  });
  await page.click(`${row} .subscription-unsubscribe`);
  await waitSubscription(page, row, (r) => document.querySelector(r).dataset.state === 'unsubscribed', 'unsubscribed');
  const facts = await subscriptionFacts(page, row);
  check(/narrations and podcast feed stay/.test(asked), `the confirmation asked '${asked}'`);
  check(facts.badge === 'Unsubscribed' && facts.visible.join() === 'Show its narrations', `an ended subscription shows '${facts.badge}' and offers ${facts.visible}`);
  check((await apiGet(`/feeds/${feedId}`)).data.state === 'unsubscribed', 'the API does not say unsubscribed');
  await libraryIds(page, 4);
  await shot(page, 'unsubscribed');
}

async function failingSubscription(page) {
  step('a subscription whose feed starts failing shows it: failing, the error, a retry as its next poll');
  await page.goto(`${baseUrl}/`);
  await page.waitForFunction(() => !document.querySelector('#voice').disabled);
  await page.fill('#feed-url', config.flaky_feed_url);
  await page.click('#subscribe-button');
  await page.waitForFunction(() => /Subscribed to/.test(document.querySelector('#notice').textContent));
  const feedId = (await apiGet('/feeds?limit=50')).data.feeds.find((f) => f.url === config.flaky_feed_url)?.feed_id;
  check(feedId, `no subscription to ${config.flaky_feed_url} in GET /feeds`);
  const row = `#subscriptions .subscription[data-feed-id="${feedId}"]`;
  await waitSubscription(page, row, (r) => document.querySelector(r).dataset.lastPoll !== '', 'its first poll');
  check((await subscriptionFacts(page, row)).state === 'active', 'the flaky feed is not active after its first poll');
  check(await page.isHidden(`${row} .subscription-error`), 'an active subscription shows an error');

  const broken = await fetch(config.flaky_break_url);
  check(broken.ok, `breaking the flaky feed answered ${broken.status}`);
  const before = (await subscriptionFacts(page, row)).lastPoll;
  await page.click(`${row} .subscription-poll`);
  await waitSubscription(page, row, (r) => document.querySelector(r).dataset.state === 'failing', 'failing');
  const facts = await subscriptionFacts(page, row);
  const error = await page.textContent(`${row} .subscription-error`);
  const { data: api } = await apiGet(`/feeds/${feedId}`);
  check(facts.lastPoll !== before, `the failed poll is not shown as the last poll (${before} → ${facts.lastPoll})`);
  check(facts.badge.startsWith('Failing'), `a failing subscription's badge reads '${facts.badge}'`);
  check(await page.isVisible(`${row} .subscription-error`), 'a failing subscription hides its error');
  check(api.state === 'failing' && api.last_error && error.includes(api.last_error.error), `the page shows '${error}', the API's error is ${JSON.stringify(api.last_error)}`);
  check(/500/.test(error) || /500/.test(facts.last), `neither the error '${error}' nor the last poll '${facts.last}' names the HTTP 500`);
  check(api.next_poll_reason === 'retry' && facts.nextTime === api.next_poll_at && /a retry after the failure/.test(facts.next), `a failing subscription's next poll reads '${facts.next}' (the API: ${api.next_poll_at}, ${api.next_poll_reason})`);
  check(['Pause', 'Poll now', 'Unsubscribe'].every((b) => facts.visible.includes(b)), `a failing subscription offers ${facts.visible}`);
  console.log(`  ${facts.badge}: ${error}\n  next poll: ${facts.next}`);

  page.once('dialog', (dialog) => dialog.accept());
  await page.click(`${row} .subscription-unsubscribe`);
  await waitSubscription(page, row, (r) => document.querySelector(r).dataset.state === 'unsubscribed', 'unsubscribed');
  check(await page.isHidden(`${row} .subscription-error`), 'an unsubscribed feed still shows its last error');
}

// ---- the library ---------------------------------------------------------------------------------

async function libraryIds(page, count) {
  try {
    await page.waitForFunction((n) => document.querySelectorAll('#conversions .conversion').length === n && !/Loading/.test(document.querySelector('#library-status').textContent), count, { timeout: 20_000 });
  } catch {
    const shown = await page.$$eval('#conversions .conversion', (r) => r.length);
    throw new CheckFailed(`the library shows ${shown} narrations, not ${count}`);
  }
  return page.$$eval('#conversions .conversion', (rows) => rows.map((r) => ({ id: r.dataset.conversionId, state: r.dataset.state })));
}

async function libraryAfterReload(page, ra, subscription) {
  step('a reload shows the library: every narration, newest first, and the subscription');
  const { data } = await apiGet('/conversions?limit=100');
  const all = data.conversions.map((c) => c.conversion_id);
  check(all.length === 4, `the server has ${all.length} conversions`);
  await page.reload();
  const rows = await libraryIds(page, 4);
  check(rows.map((r) => r.id).join() === all.join(), `the library lists ${rows.map((r) => r.id)}, the server ${all}`);
  check(rows[0].id === ra.id, 'the newest conversion is not listed first');
  await page.waitForSelector(subscription.row);
  check((await page.getAttribute(subscription.row, 'data-state')) === 'active', 'the subscription is not listed as active after a reload');
  const readAlong = `#conversions [data-conversion-id="${ra.id}"]`;
  await page.locator(readAlong).scrollIntoViewIfNeeded();
  await page.waitForFunction(({ sel, n }) => document.querySelectorAll(`${sel} .lp-s`).length === n, { sel: readAlong, n: ra.segments.length });
  const row = await page.$eval(readAlong, (li) => ({
    player: !li.querySelector('.conversion-player').hidden,
    download: li.querySelector('.conversion-download').href,
    embed: li.querySelector('.conversion-embed-code').value,
    transcript: li.querySelector('.conversion-vtt').href,
  }));
  check(row.player && row.download.endsWith('/audio/r1.mp3') && /<iframe /.test(row.embed) && row.transcript.endsWith('/transcript.vtt'), `a listed narration shows ${JSON.stringify(row)}`);
  await shot(page, 'library-reloaded');

  step('filters: by state and by feed, in the address, kept by a reload');
  await page.selectOption('#filter-state', 'failed');
  let shown = await libraryIds(page, 1);
  check(shown[0].state === 'failed', `filtered by 'failed', the library shows ${JSON.stringify(shown)}`);
  check(new URL(page.url()).searchParams.get('state') === 'failed', `the address is ${page.url()}`);
  await page.reload();
  shown = await libraryIds(page, 1);
  check((await page.inputValue('#filter-state')) === 'failed' && shown[0].state === 'failed', 'a reload lost the state filter');
  await page.selectOption('#filter-state', '');
  await libraryIds(page, 4);
  await page.selectOption('#filter-feed', config.read_along_feed_url);
  shown = await libraryIds(page, 1);
  check(shown[0].id === ra.id, `filtered by the read-along feed, the library shows ${JSON.stringify(shown)}`);
  check(new URL(page.url()).searchParams.get('feed') === config.read_along_feed_url, `the address is ${page.url()}`);
  await page.reload();
  shown = await libraryIds(page, 1);
  check((await page.inputValue('#filter-feed')) === config.read_along_feed_url && shown[0].id === ra.id, 'a reload lost the feed filter');
  await shot(page, 'library-filtered');

  step('pages: Load more brings the next page, and focus goes to it');
  await page.goto(`${baseUrl}/?limit=2`);
  shown = await libraryIds(page, 2);
  check(await page.isVisible('#load-more'), 'no Load more under the first page');
  await page.click('#load-more');
  shown = await libraryIds(page, 4);
  check(shown.map((r) => r.id).join() === all.join(), `two pages list ${shown.map((r) => r.id)}, the server ${all}`);
  check(await page.isHidden('#load-more'), 'Load more is still offered after the last page');
  const focus = await page.evaluate(() => document.activeElement.closest('.conversion') && document.activeElement.closest('.conversion').dataset.conversionId);
  check(focus === all[2], `after Load more the focus is on ${focus}, not the first new narration`);
  await shot(page, 'library-paged');
}

// ---- dark ----------------------------------------------------------------------------------------

async function darkMode(context, page, ra) {
  step('dark: the page and the embed follow the system, and every text keeps its contrast');
  await page.goto(`${baseUrl}/`);
  await page.emulateMedia({ colorScheme: 'dark' });
  const row = `#conversions [data-conversion-id="${ra.id}"]`;
  await page.locator(row).scrollIntoViewIfNeeded();
  await page.waitForFunction((sel) => document.querySelectorAll(`${sel} .lp-s`).length > 2, row);
  await page.$eval(`${row} audio`, (a, t) => {
    a.currentTime = t;
  }, ra.segments[2].start + 0.01);
  await page.waitForSelector(`${row} .lp-s[aria-current]`);
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(background === 'rgb(17, 20, 24)', `the dark page's background is ${background}`);
  await checkContrast(page, 'in dark mode');
  await shot(page, 'dark');
  const embed = await context.newPage();
  await embed.emulateMedia({ colorScheme: 'dark' });
  await embed.goto(ra.status.embed_url);
  await embed.waitForSelector('.lp-s');
  await embed.$eval('audio', (a, t) => {
    a.currentTime = t;
  }, ra.segments[1].start + 0.01);
  await embed.waitForSelector('.lp-s[aria-current]');
  const embedBackground = await embed.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(embedBackground === 'rgb(27, 32, 39)', `the dark embed's background is ${embedBackground}`);
  await checkContrast(embed, 'in the dark embed');
  await shot(embed, 'dark-embed', { fullPage: false });
  await embed.close();
  await page.emulateMedia({ colorScheme: 'light' });
}

// ---- a revision, in a new browser -----------------------------------------------------------------

async function revision(page) {
  step('a new browser: the library is as the server keeps it');
  await page.goto(`${baseUrl}/`);
  await page.evaluate((token) => localStorage.setItem('lector.token', token), process.env.LECTOR_API_TOKEN || '');
  await page.reload();
  const { data } = await apiGet(`/conversions?feed_url=${encodeURIComponent(config.read_along_feed_url)}`);
  check(data.conversions.length === 1, `the read-along feed has ${data.conversions.length} conversions`);
  const id = data.conversions[0].conversion_id;
  const before = await readAlongFacts(id);
  const row = `#conversions [data-conversion-id="${id}"]`;
  await libraryIds(page, 4);
  check((await page.getAttribute(row, 'data-state')) === 'completed', 'the read-along post is not listed as completed');
  check((await page.getAttribute(`${row} audio`, 'src')).endsWith('/audio/r1.mp3'), 'the listed narration does not play revision 1');
  await shot(page, 'library');

  step('the edited post converted again: the previous narration plays while the revision is made');
  await page.waitForFunction(() => !document.querySelector('#voice').disabled);
  await page.evaluate((sel) => {
    window.__revision = [];
    const li = document.querySelector(sel);
    new MutationObserver(() => {
      const audio = li.querySelector('audio');
      window.__revision.push({
        state: li.dataset.state,
        player: !li.querySelector('.conversion-player').hidden,
        src: audio.getAttribute('src'),
      });
    }).observe(li, { attributes: true, attributeFilter: ['data-state'] });
  }, row);
  const { index } = await previewAndConvert(page, config.read_along_feed_url, config.read_along_post_url);
  const said = await page.textContent(`#post-${index}-state`);
  check(/Already converted/.test(said), `the edited post's preview says '${said}'`);
  await waitState(page, id, ['requested', 'processing'], 10_000);
  const during = await page.evaluate(async (sel) => {
    const li = document.querySelector(sel);
    const audio = li.querySelector('audio');
    audio.muted = true;
    audio.currentTime = 0;
    await audio.play();
    await new Promise((resolve) => setTimeout(resolve, 400));
    const played = audio.currentTime;
    audio.pause();
    return {
      state: li.dataset.state,
      stage: li.querySelector('.conversion-stage').textContent,
      player: !li.querySelector('.conversion-player').hidden,
      src: audio.getAttribute('src'),
      played,
      text: [...li.querySelectorAll('.lp-s')].map((s) => s.textContent).join(' '),
    };
  }, row);
  check(during.state !== 'completed', `the revision was over before it could be watched (${during.state})`);
  check(during.player && during.src.endsWith('/audio/r1.mp3') && during.played > 0, `while revising, the previous audio is not playable: ${JSON.stringify(during)}`);
  check(/Re-narrating the edited post \(revision 2\)/.test(during.stage) && /previous narration plays/.test(during.stage), `while revising the row says '${during.stage}'`);
  check(during.text === before.segments.map((s) => s.text).join(' '), 'while revising the text is not the previous narration\'s');
  console.log(`  while revising: '${during.stage}', ${during.src} played to ${during.played.toFixed(2)} s`);
  await shot(page, 'revising');

  step('the revision completes: new audio, its text, and what it cost');
  await waitState(page, id, ['completed']);
  const after = await readAlongFacts(id);
  const edited = config.edited_sentences;
  await page.waitForFunction(({ sel, n }) => document.querySelector(`${sel} audio`).getAttribute('src').endsWith('/audio/r2.mp3') && document.querySelectorAll(`${sel} .lp-s`).length === n, { sel: row, n: after.segments.length });
  const done = await page.evaluate((sel) => {
    const li = document.querySelector(sel);
    return {
      summary: li.querySelector('.conversion-summary').textContent,
      text: [...li.querySelectorAll('.lp-s')].map((s) => s.textContent),
      download: li.querySelector('.conversion-download').href,
      notice: document.querySelector('#notice').textContent,
    };
  }, row);
  check(done.text.join('|') === after.segments.map((s) => s.text).join('|'), `the text shown is not revision 2's: ${done.text.join('|')}`);
  check(edited.every((e) => done.text.includes(e)), `the edited sentences are not shown: ${done.text.join('|')}`);
  const cost = new RegExp(`^Re-narrated ${edited.length} of ${after.segments.length} sentences, [\\d,]+ of [\\d,]+ characters\\.$`);
  check(cost.test(done.summary), `the revision's cost reads '${done.summary}'`);
  check(done.download.endsWith('/audio/r2.mp3'), `the download is ${done.download}`);
  check(/new narration is ready/.test(done.notice), `the live notice says '${done.notice}'`);
  const seen = await page.evaluate(() => window.__revision);
  const unplayable = seen.filter((s) => s.state !== 'completed' && (!s.player || !s.src));
  check(seen.some((s) => s.state !== 'completed') && unplayable.length === 0, `the row's states while revising: ${JSON.stringify(seen)}`);
  console.log(`  ${done.summary}`);
  await shot(page, 'revised');
}

main().catch((error) => {
  const reason = error instanceof CheckFailed ? error.message : error.stack || String(error);
  console.error(`FAILED at step '${currentStep}': ${reason}`);
  process.exit(1);
});
