// Drives Lector's web page in Debian's headless Chromium the way a person would, and saves a screenshot at each step.
//
//   node tests/browser/page.mjs BASE_URL FEED_URL SCREENSHOT_DIR [FAILING_POST_URL]
//
// BASE_URL is a running `lector serve`; FEED_URL a feed whose first two posts convert; the
// optional FAILING_POST_URL is a post of that feed whose conversion must fail, and the page must
// say why. Exits non-zero with the failed step's name and reason on the first failure.

import { mkdtemp, mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.LECTOR_CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 15_000;
const CONVERSION_TIMEOUT_MS = 90_000;

const [base, feedUrl, shotsDir, failingPostUrl] = process.argv.slice(2);
if (!base || !feedUrl || !shotsDir) {
  console.error('usage: node page.mjs BASE_URL FEED_URL SCREENSHOT_DIR [FAILING_POST_URL]');
  process.exit(2);
}
const baseUrl = base.replace(/\/+$/, '');

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
  const file = path.join(shotsDir, `${String(shotNumber).padStart(2, '0')}-${name}.png`);
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
    const page = context.pages()[0] || (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    page.setDefaultTimeout(STEP_TIMEOUT_MS);

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
    if (failingPostUrl) await failingConversion(page);
    await phone(context, page);

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
  check((await focused(page)).id === 'conversions-heading', 'focus does not move to the conversions');
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
    const link = document.querySelector('a[href]:not([href$="/audio"])');
    return {
      title: document.querySelector('h1').textContent.trim(),
      text: document.body.innerText,
      duration: audio.duration,
      link: link ? link.href : null,
      scripts: document.scripts.length,
      placeholders: document.documentElement.outerHTML.includes('{{'),
    };
  });
  check(facts.title.length > 0, 'the embed page has no title');
  check(facts.duration > 0, `the embed player has duration ${facts.duration}`);
  check(/Length \d+:\d\d/.test(facts.text), `the embed page shows no length: '${facts.text}'`);
  check(facts.link && /^http/.test(facts.link), 'the embed page does not link to the post');
  check(!facts.placeholders, 'the embed page still has {{placeholders}}');
  check(facts.scripts === 0, 'the embed page runs scripts');
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

main().catch((error) => {
  const reason = error instanceof CheckFailed ? error.message : error.stack || String(error);
  console.error(`FAILED at step '${currentStep}': ${reason}`);
  process.exit(1);
});
