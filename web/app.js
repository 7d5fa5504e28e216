// Lector's web page: preview a feed, convert posts, follow each conversion live, play and share the audio.
'use strict';

(() => {
  const TOKEN_KEY = 'lector.token';
  const POLL_MS = 1000;
  const MAX_BACKOFF_MS = 15000;
  const MAX_POLLS_IN_FLIGHT = 4;
  const FINAL = new Set(['completed', 'failed']);

  const STAGES = {
    queued: 'Waiting to start',
    fetching_article: 'Fetching the article',
    preparing_speech: 'Preparing the narration',
    synthesizing: 'Speaking',
    stitching: 'Joining the audio',
    completed: 'Ready to play',
    failed: 'Failed',
  };

  // The workflow's state names, as a failed conversion reports them.
  const STEP_WORDS = {
    FetchArticle: 'fetching the article',
    PrepareSpeech: 'preparing the narration',
    SynthesizeChunks: 'speaking',
    SynthesizeChunk: 'speaking',
    StitchAudio: 'joining the audio',
  };

  const $ = (selector, root = document) => root.querySelector(selector);

  // The API is beside the page unless the page is told otherwise (a CDN-hosted page, say).
  function apiBase() {
    const meta = $('meta[name="lector-api"]');
    const configured = (window.LECTOR_API || (meta && meta.content) || '').trim();
    const base = new URL(configured || './', document.baseURI);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    base.search = '';
    base.hash = '';
    return base;
  }
  const API = apiBase();

  function apiUrl(path) {
    if (/^https?:\/\//i.test(path)) return path;
    return new URL(path.replace(/^\/+/, ''), API).toString();
  }

  // Addresses from feeds are untrusted: only web addresses become links.
  function webHref(value) {
    if (!value) return null;
    try {
      const url = new URL(value, API);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.toString() : null;
    } catch {
      return null;
    }
  }

  // Storage can be refused (private windows, policies); the page still works without it.
  const tokenStore = {
    get() {
      try {
        return localStorage.getItem(TOKEN_KEY) || '';
      } catch {
        return '';
      }
    },
    set(value) {
      try {
        if (value) localStorage.setItem(TOKEN_KEY, value);
        else localStorage.removeItem(TOKEN_KEY);
        return true;
      } catch {
        return false;
      }
    },
  };

  class ApiError extends Error {
    constructor(message, { http = 0, status = null, data = null, network = false } = {}) {
      super(message);
      this.http = http;
      this.status = status;
      this.data = data;
      this.network = network;
    }
  }

  // One API call: the envelope back, or an ApiError whose message is the envelope's words.
  async function call(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const token = tokenStore.get();
    if (token && method !== 'GET') headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(apiUrl(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(
        `Could not reach the Lector service at ${API.origin}. Check the connection and try again.`,
        { network: true },
      );
    }
    let envelope = null;
    try {
      envelope = await response.json();
    } catch {
      envelope = null;
    }
    if (!envelope || typeof envelope.status !== 'string') {
      const code = response.statusText ? `${response.status} ${response.statusText}` : `${response.status}`;
      throw new ApiError(`The service answered ${code} with no message to show.`, { http: response.status });
    }
    if (!response.ok) {
      throw new ApiError(envelope.message || `The service refused the request (${envelope.status}).`, {
        http: response.status,
        status: envelope.status,
        data: envelope.data,
      });
    }
    return envelope;
  }

  // ---- messages ------------------------------------------------------------------------------

  const errorBox = $('#error');
  const notice = $('#notice');

  function showError(message, details = []) {
    errorBox.replaceChildren();
    const p = document.createElement('p');
    p.textContent = message;
    errorBox.append(p);
    if (details.length) {
      const ul = document.createElement('ul');
      for (const d of details) {
        const li = document.createElement('li');
        li.textContent = d;
        ul.append(li);
      }
      errorBox.append(ul);
    }
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.replaceChildren();
  }

  function say(message) {
    notice.textContent = message;
  }

  // 401/403 mean the token is missing or wrong: open the token field for the user.
  function reportApiError(error, doing) {
    if (error.http === 401 || error.http === 403) {
      const box = $('#token-box');
      box.open = true;
      showError(`${doing}: ${error.message}. Enter the access token under “Access” and try again.`);
      $('#token').focus();
      return;
    }
    showError(`${doing}: ${error.message}`);
  }

  // ---- formatting ----------------------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);

  function plural(n, one, many) {
    return `${numberFormat.format(n)} ${n === 1 ? one : many}`;
  }

  function formatCost(usd) {
    if (usd === null || usd === undefined) return null;
    if (usd === 0) return 'free';
    if (usd < 0.01) return `about $${usd.toFixed(3)}`;
    return `about $${usd.toFixed(2)}`;
  }

  function formatDate(iso) {
    if (!iso) return null;
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return null;
    return date.toLocaleDateString(document.documentElement.lang || undefined, {
      year: 'numeric',
      month: 'short',
      day: 'numeric',
    });
  }

  function formatDuration(seconds) {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return null;
    const total = Math.max(0, Math.round(seconds));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
  }

  function fileName(title) {
    const slug = (title || 'narration')
      .normalize('NFKD')
      .replace(/[^\w\s-]/g, '')
      .trim()
      .replace(/\s+/g, '-')
      .toLowerCase()
      .slice(0, 80);
    return `${slug || 'narration'}.mp3`;
  }

  // ---- voices --------------------------------------------------------------------------------

  const voiceSelect = $('#voice');
  const engineSelect = $('#engine');
  let voices = [];
  let defaultEngine = null;

  function option(value, text, selected = false) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    o.selected = selected;
    return o;
  }

  function fillEngines() {
    const voice = voices.find((v) => v.id === voiceSelect.value);
    const engines = voice ? voice.engines : defaultEngine ? [defaultEngine] : [];
    const current = engineSelect.value || defaultEngine;
    engineSelect.replaceChildren(
      ...engines.map((e) => option(e, e, e === current)),
    );
    if (!engines.includes(current) && engines.length) engineSelect.value = engines[0];
    engineSelect.disabled = engines.length === 0;
  }

  async function loadVoices() {
    try {
      const { data } = await call('GET', 'voices');
      voices = Array.isArray(data.voices) ? data.voices : [];
      defaultEngine = data.default_engine || null;
      voiceSelect.replaceChildren(
        ...voices.map((v) => {
          const about = [v.language, v.gender].filter(Boolean).join(', ');
          return option(v.id, about ? `${v.name} (${about})` : v.name, v.id === data.default_voice);
        }),
      );
      if (!voices.length) voiceSelect.append(option('', 'The service’s default voice', true));
      voiceSelect.disabled = false;
      fillEngines();
    } catch (error) {
      voiceSelect.replaceChildren(option('', 'The service’s default voice', true));
      engineSelect.replaceChildren(option('', 'The service’s default engine', true));
      voiceSelect.disabled = false;
      engineSelect.disabled = false;
      reportApiError(error, 'Could not list the voices');
    }
  }

  function chosenVoice() {
    const out = {};
    if (voiceSelect.value) out.voice = voiceSelect.value;
    if (engineSelect.value) out.engine = engineSelect.value;
    return out;
  }

  // ---- preview -------------------------------------------------------------------------------

  const feedForm = $('#feed-form');
  const feedInput = $('#feed-url');
  const previewButton = $('#preview-button');
  const postsSection = $('#posts-section');
  const postsList = $('#posts');
  const selectAll = $('#select-all');
  const convertButton = $('#convert-button');
  const summary = $('#selection-summary');

  let preview = null; // the last preview's data
  let previewing = 0; // a counter, so a slow old answer never replaces a newer one

  function busy(button, on, label) {
    button.disabled = on;
    button.setAttribute('aria-busy', on ? 'true' : 'false');
    if (label) button.textContent = label;
  }

  async function runPreview({ keepSelection = false, focus = true } = {}) {
    const url = feedInput.value.trim();
    if (!url) {
      showError('Enter the address of a feed first.');
      feedInput.setAttribute('aria-invalid', 'true');
      feedInput.focus();
      return;
    }
    const kept = keepSelection ? new Set(selectedPosts().map((p) => p.url)) : new Set();
    const mine = ++previewing;
    clearError();
    feedInput.removeAttribute('aria-invalid');
    busy(previewButton, true, 'Reading…');
    say('Reading the feed and measuring its posts…');
    try {
      const envelope = await call('POST', 'feeds/preview', { url, ...chosenVoice() });
      if (mine !== previewing) return;
      preview = envelope.data;
      renderPreview(kept);
      const title = preview.feed.title ? `“${preview.feed.title}”` : 'the feed';
      say(`Found ${plural(preview.posts.length, 'post', 'posts')} in ${title}.`);
      postsSection.hidden = false;
      if (focus) $('#posts-heading').focus();
    } catch (error) {
      if (mine !== previewing) return;
      say('');
      if (error.http === 400) feedInput.setAttribute('aria-invalid', 'true');
      reportApiError(error, 'Could not read that feed');
      if (!(error.http === 401 || error.http === 403)) feedInput.focus();
    } finally {
      if (mine === previewing) busy(previewButton, false, 'Show posts');
    }
  }

  function renderFeedInfo(feed) {
    const box = $('#feed-info');
    box.replaceChildren();
    const title = document.createElement('p');
    title.className = 'feed-title';
    const link = webHref(feed.link);
    if (link) {
      const a = document.createElement('a');
      a.href = link;
      a.rel = 'noopener';
      a.textContent = feed.title || link;
      title.append(a);
    } else {
      title.textContent = feed.title || feed.feed_url;
    }
    box.append(title);
    if (feed.description) {
      const d = document.createElement('p');
      d.className = 'hint';
      d.textContent = feed.description;
      box.append(d);
    }
  }

  function postState(state) {
    switch (state) {
      case 'completed':
        return 'Already converted with this voice: converting again shows it at once.';
      case 'processing':
      case 'requested':
        return 'Being converted with this voice right now.';
      case 'failed':
        return 'An earlier conversion with this voice failed: converting again shows why.';
      default:
        return '';
    }
  }

  function renderPreview(kept) {
    renderFeedInfo(preview.feed);
    const template = $('#post-template');
    postsList.replaceChildren();
    preview.posts.forEach((post, i) => {
      const li = template.content.firstElementChild.cloneNode(true);
      const check = $('.post-check', li);
      const label = $('.post-title', li);
      const id = `post-${i}`;
      check.id = id;
      check.value = String(i);
      label.htmlFor = id;
      label.textContent = post.title || post.url || 'Untitled post';
      const usable = Boolean(webHref(post.url));
      check.disabled = !usable;
      check.checked = usable && kept.has(post.url);

      const meta = [];
      const date = formatDate(post.published);
      if (date) meta.push(date);
      // A feed that carries only a summary gives no word count (0): the length is in characters.
      if (post.words > 0) meta.push(plural(post.words, 'word', 'words'));
      if (typeof post.characters === 'number') {
        meta.push(plural(post.characters, 'character', 'characters'));
        meta.push(`cost ${formatCost(post.estimated_cost_usd) ?? 'unknown'}`);
      } else {
        meta.push(post.measure_error ? `not measured: ${post.measure_error}` : 'length not measured');
      }
      if (!usable) meta.push('no web address, so it cannot be converted');
      $('.post-meta', li).textContent = meta.join(' · ');
      const state = $('.post-state', li);
      state.textContent = postState(post.state);
      state.hidden = !state.textContent;
      if (post.state) li.dataset.state = post.state;
      if (post.url) li.dataset.url = post.url;
      check.setAttribute('aria-describedby', state.hidden ? `${id}-meta` : `${id}-meta ${id}-state`);
      $('.post-meta', li).id = `${id}-meta`;
      state.id = `${id}-state`;
      postsList.append(li);
    });
    updateSelection();
  }

  function selectedPosts() {
    if (!preview) return [];
    return [...postsList.querySelectorAll('.post-check:checked')].map((c) => preview.posts[Number(c.value)]);
  }

  function updateSelection() {
    const checks = [...postsList.querySelectorAll('.post-check:not(:disabled)')];
    const chosen = checks.filter((c) => c.checked).length;
    selectAll.checked = checks.length > 0 && chosen === checks.length;
    selectAll.indeterminate = chosen > 0 && chosen < checks.length;
    selectAll.disabled = checks.length === 0;
    convertButton.disabled = chosen === 0;
    convertButton.textContent = chosen ? `Convert ${plural(chosen, 'post', 'posts')}` : 'Convert selected posts';
    const costs = selectedPosts().map((p) => p.estimated_cost_usd);
    let text = `${chosen} of ${plural(checks.length, 'post', 'posts')} selected`;
    if (chosen) {
      const known = costs.filter((c) => typeof c === 'number');
      const total = known.reduce((a, b) => a + b, 0);
      text += known.length === costs.length ? `, estimated cost ${formatCost(total)}` : ', cost not known for every post';
    }
    summary.textContent = `${text}.`;
  }

  // ---- conversions ---------------------------------------------------------------------------

  const conversionsSection = $('#conversions-section');
  const conversionsList = $('#conversions');
  const rows = new Map(); // conversion id → row

  function rowFor(id, title, statusUrl) {
    let row = rows.get(id);
    if (row) return row;
    const li = $('#conversion-template').content.firstElementChild.cloneNode(true);
    li.dataset.conversionId = id;
    row = {
      id,
      el: li,
      title: title || 'Narrated post',
      statusUrl: statusUrl || `conversions/${id}`,
      active: false,
      polling: false,
      due: 0,
      failures: 0,
      data: null,
      doneShown: false,
      failShown: false,
    };
    const embedId = `embed-${id}`;
    $('.conversion-embed-code', li).id = embedId;
    $('.conversion-embed label', li).htmlFor = embedId;
    $('.conversion-copy', li).addEventListener('click', () => copyEmbed(row));
    $('.conversion-title', li).textContent = row.title;
    $('.conversion-progress', li).setAttribute('aria-label', `Progress of “${row.title}”`);
    setStage(row, 'Submitted');
    rows.set(id, row);
    conversionsList.append(li);
    conversionsSection.hidden = false;
    return row;
  }

  function setStage(row, text) {
    $('.conversion-stage', row.el).textContent = text;
  }

  // Rows are polled about once a second each, but never more than a few requests at a time,
  // so a batch of a hundred posts does not flood the API.
  let inFlight = 0;
  let pumpTimer = null;

  function startPolling(row, delay = 0) {
    row.active = true;
    row.due = Date.now() + delay;
    pump();
  }

  function pump() {
    clearTimeout(pumpTimer);
    const waiting = [...rows.values()].filter((r) => r.active && !r.polling).sort((a, b) => a.due - b.due);
    const now = Date.now();
    for (const row of waiting) {
      if (inFlight >= MAX_POLLS_IN_FLIGHT || row.due > now) break;
      row.polling = true;
      inFlight += 1;
      poll(row).finally(() => {
        row.polling = false;
        inFlight -= 1;
        pump();
      });
    }
    const next = waiting.find((r) => !r.polling);
    if (next && inFlight < MAX_POLLS_IN_FLIGHT) pumpTimer = setTimeout(pump, Math.max(0, next.due - Date.now()));
  }

  async function poll(row) {
    try {
      const { data } = await call('GET', row.statusUrl);
      row.failures = 0;
      update(row, data);
      row.active = !FINAL.has(data.state);
      row.due = Date.now() + POLL_MS;
    } catch (error) {
      if (error.http === 404 || error.http === 400) {
        row.active = false;
        setStage(row, 'Unknown conversion');
        showError(`“${row.title}”: ${error.message}`);
        return;
      }
      row.failures += 1;
      const wait = Math.min(POLL_MS * 2 ** row.failures, MAX_BACKOFF_MS);
      setStage(row, `Lost touch with the service (${error.message}). Trying again in ${Math.round(wait / 1000)} s…`);
      row.due = Date.now() + wait;
    }
  }

  function stageText(c) {
    const words = STAGES[c.stage] || c.stage;
    const { chunks_done: done = 0, chunks_total: total = 0 } = c.progress || {};
    if (c.stage === 'synthesizing' && total > 0) return `${words}: ${done} of ${plural(total, 'part', 'parts')} done`;
    return words;
  }

  function update(row, c) {
    row.data = c;
    if (c.title) row.title = c.title;
    const li = row.el;
    li.dataset.state = c.state;
    li.dataset.stage = c.stage;
    $('.conversion-title', li).textContent = row.title;
    setStage(row, stageText(c));

    const bar = $('.conversion-progress', li);
    const { chunks_done: done = 0, chunks_total: total = 0 } = c.progress || {};
    bar.setAttribute('aria-label', `Progress of “${row.title}”`);
    if (c.state === 'completed') {
      bar.max = Math.max(total, 1);
      bar.value = bar.max;
    } else if (total > 0) {
      bar.max = total;
      bar.value = done;
    } else if (c.state === 'processing') {
      bar.removeAttribute('value'); // not known yet: an indeterminate bar
    } else {
      bar.max = 1;
      bar.value = 0;
    }

    if (c.state === 'completed' && !row.doneShown) showDone(row, c);
    if (c.state === 'failed' && !row.failShown) showFailure(row, c);
  }

  function showDone(row, c) {
    row.doneShown = true;
    const li = row.el;
    const audioUrl = webHref(c.audio_url);
    const audio = $('.conversion-audio', li);
    audio.setAttribute('aria-label', `Narration of “${row.title}”`);
    if (audioUrl) audio.src = audioUrl;
    const download = $('.conversion-download', li);
    if (audioUrl) download.href = audioUrl;
    download.download = fileName(row.title);
    download.setAttribute('aria-label', `Download the MP3 of “${row.title}”`);
    const length = formatDuration(c.duration_seconds);
    $('.conversion-duration', li).textContent = length ? `Length ${length}` : '';
    const copy = $('.conversion-copy', li);
    copy.setAttribute('aria-label', `Copy the embed code of “${row.title}”`);
    copy.hidden = !c.embed_html;
    $('.conversion-embed', li).hidden = !c.embed_html;
    $('.conversion-embed-code', li).value = c.embed_html || '';
    const subscribe = $('.conversion-subscribe', li);
    const podcast = webHref(c.podcast_url);
    subscribe.hidden = !podcast;
    if (podcast) {
      subscribe.href = podcast;
      subscribe.setAttribute('aria-label', 'Subscribe to the podcast of this feed');
    }
    $('.conversion-done', li).hidden = false;
    say(`“${row.title}” is ready to play.`);
  }

  function showFailure(row, c) {
    row.failShown = true;
    const e = c.error || {};
    const step = STEP_WORDS[e.state] || e.state;
    const parts = [];
    if (e.error) parts.push(e.error);
    if (e.cause) parts.push(e.cause);
    const why = parts.join(': ') || 'no reason was recorded';
    const text = step ? `Failed while ${step}. ${why}` : `Failed. ${why}`;
    const box = $('.conversion-error', row.el);
    box.textContent = text;
    box.hidden = false;
    $('.conversion-progress', row.el).hidden = true;
    showError(`“${row.title}” could not be converted. ${why}`);
  }

  async function copyEmbed(row) {
    const code = (row.data && row.data.embed_html) || '';
    const li = row.el;
    const confirm = $('.conversion-copied', li);
    const area = $('.conversion-embed-code', li);
    let copied = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(code);
        copied = true;
      } catch {
        copied = false;
      }
    }
    if (!copied) {
      // Older browsers and plain-http pages: copy from the selected text field.
      $('.conversion-embed', li).open = true;
      area.focus();
      area.select();
      try {
        copied = document.execCommand('copy');
      } catch {
        copied = false;
      }
    }
    confirm.textContent = '';
    // A fresh text node, so screen readers announce a second copy too.
    requestAnimationFrame(() => {
      confirm.textContent = copied
        ? 'Embed code copied. Paste it into your page.'
        : 'Could not copy by itself: the embed code is selected below, copy it with Ctrl+C (⌘C on a Mac).';
      confirm.dataset.copied = copied ? 'true' : 'false';
    });
  }

  async function convert(event) {
    event.preventDefault();
    const posts = selectedPosts();
    if (!posts.length) {
      showError('Select at least one post to convert.');
      return;
    }
    clearError();
    busy(convertButton, true, 'Submitting…');
    say(`Submitting ${plural(posts.length, 'post', 'posts')}…`);
    const titles = new Map(posts.map((p) => [p.url, p.title]));
    let answer;
    try {
      answer = await call('POST', 'conversions/batch', {
        feed_url: preview.feed.feed_url,
        ...chosenVoice(),
        posts: posts.map((p) => (p.title ? { url: p.url, title: p.title } : { url: p.url })),
      });
    } catch (error) {
      answer = null;
      const items = error.data && Array.isArray(error.data.conversions) ? error.data.conversions : [];
      const refused = items
        .filter((i) => i.error)
        .map((i) => `${titles.get(i.url) || i.url}: ${i.error}`);
      if (refused.length) showError(`Could not convert: ${error.message}`, refused);
      else reportApiError(error, 'Could not submit the posts');
      say('');
    } finally {
      updateSelection();
      convertButton.setAttribute('aria-busy', 'false');
    }
    if (!answer) return;
    const items = Array.isArray(answer.data.conversions) ? answer.data.conversions : [];
    const refused = [];
    for (const item of items) {
      if (!item.conversion_id) {
        refused.push(`${titles.get(item.url) || item.url}: ${item.error || 'refused'}`);
        continue;
      }
      const row = rowFor(item.conversion_id, titles.get(item.url), item.status_url);
      startPolling(row);
    }
    if (refused.length) showError('Some posts could not be converted:', refused);
    say(`${answer.message}. Progress shows below.`);
    $('#conversions-heading').focus();
  }

  // ---- token ---------------------------------------------------------------------------------

  function setupToken() {
    const input = $('#token');
    const status = $('#token-status');
    input.value = tokenStore.get();
    if (input.value) status.textContent = 'A token is saved in this browser.';
    $('#token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = input.value.trim();
      const kept = tokenStore.set(value);
      if (!kept) status.textContent = 'This browser does not let the page keep the token.';
      else status.textContent = value ? 'Token saved. Try again.' : 'Token removed.';
      if (value) clearError();
    });
    $('#token-forget').addEventListener('click', () => {
      tokenStore.set('');
      input.value = '';
      status.textContent = 'Token removed from this browser.';
    });
  }

  // ---- sample feed ---------------------------------------------------------------------------

  // `lector serve` offers a sample feed that converts offline; show it where it exists.
  async function offerSample() {
    const url = apiUrl('sample/feed.xml');
    try {
      const response = await fetch(url, { method: 'HEAD', cache: 'no-store' });
      if (!response.ok) return;
    } catch {
      return;
    }
    $('#sample-row').hidden = false;
    $('#sample-button').addEventListener('click', () => {
      feedInput.value = url;
      runPreview();
    });
  }

  // ---- wiring --------------------------------------------------------------------------------

  feedForm.addEventListener('submit', (event) => {
    event.preventDefault();
    runPreview();
  });
  feedInput.addEventListener('input', () => feedInput.removeAttribute('aria-invalid'));
  voiceSelect.addEventListener('change', () => {
    fillEngines();
    if (preview) runPreview({ keepSelection: true, focus: false });
  });
  engineSelect.addEventListener('change', () => {
    if (preview) runPreview({ keepSelection: true, focus: false });
  });
  postsList.addEventListener('change', updateSelection);
  selectAll.addEventListener('change', () => {
    for (const c of postsList.querySelectorAll('.post-check:not(:disabled)')) c.checked = selectAll.checked;
    updateSelection();
  });
  $('#posts-form').addEventListener('submit', convert);

  setupToken();
  loadVoices();
  offerSample();
})();
