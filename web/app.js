// Lector's web page: preview a feed, convert posts or subscribe to it, follow each conversion live,
// and the library of what the server has, each narration with its read-along player (player.js).
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
      // `auto` reads each post with the voice that speaks its language: the usual choice, so
      // offered first, and chosen when it is the service's default.
      const auto = String(data.default_voice || '').toLowerCase() === 'auto';
      voiceSelect.replaceChildren(
        option('auto', 'Automatic (by each post’s language)', auto),
        ...voices.map((v) => {
          const about = [v.language, v.gender].filter(Boolean).join(', ');
          return option(v.id, about ? `${v.name} (${about})` : v.name, v.id === data.default_voice);
        }),
      );
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
      rememberFeed(preview.feed.feed_url, preview.feed.title);
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
        return 'Already converted with this voice: converting again re-narrates only what changed, if anything did.';
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

  // ---- the library: what the server has, newest first -----------------------------------------

  const conversionsList = $('#conversions');
  const libraryStatus = $('#library-status');
  const loadMoreButton = $('#load-more');
  const filterFeed = $('#filter-feed');
  const filterState = $('#filter-state');
  const rows = new Map(); // conversion id → row

  // Filters live in the page's address, so a reload or a shared link keeps them.
  const pageParams = new URLSearchParams(window.location.search);
  const PAGE_SIZE = (() => {
    const n = Number(pageParams.get('limit'));
    return Number.isInteger(n) && n >= 1 && n <= 100 ? n : 20;
  })();
  const STATES = new Set(['requested', 'processing', 'completed', 'failed']);
  const filters = {
    feed: webHref(pageParams.get('feed')) ? pageParams.get('feed') : '',
    state: STATES.has(pageParams.get('state')) ? pageParams.get('state') : '',
  };
  let libraryCursor = null;
  let libraryGeneration = 0; // a new list (filters changed) makes older answers moot

  const knownFeeds = new Map(); // feed address → its title, for the feed filter

  function rememberFeed(url, title) {
    if (!url) return;
    const label = knownFeeds.get(url);
    if (label && (label !== url || !title)) return;
    knownFeeds.set(url, title || url);
    renderFeedFilter();
  }

  function renderFeedFilter() {
    if (filters.feed && !knownFeeds.has(filters.feed)) knownFeeds.set(filters.feed, filters.feed);
    const feeds = [...knownFeeds].sort((a, b) => a[1].localeCompare(b[1]));
    filterFeed.replaceChildren(
      option('', 'Every feed', !filters.feed),
      ...feeds.map(([url, label]) => option(url, label, url === filters.feed)),
    );
  }

  function showFilters() {
    renderFeedFilter();
    filterState.value = filters.state;
  }

  function applyFilters() {
    filters.feed = filterFeed.value;
    filters.state = filterState.value;
    const address = new URL(window.location.href);
    for (const [key, value] of [['feed', filters.feed], ['state', filters.state]]) {
      if (value) address.searchParams.set(key, value);
      else address.searchParams.delete(key);
    }
    window.history.replaceState(null, '', address);
    loadLibrary();
  }

  function libraryQuery(cursor) {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (filters.feed) q.set('feed_url', filters.feed);
    if (filters.state) q.set('state', filters.state);
    if (cursor) q.set('cursor', cursor);
    return `conversions?${q}`;
  }

  function librarySummary() {
    const filtered = filters.feed || filters.state;
    if (rows.size === 0) {
      return filtered
        ? 'No narrations match these filters.'
        : 'Nothing narrated yet: choose a feed above, pick posts and convert them, or subscribe to it.';
    }
    const more = libraryCursor ? ', more below' : '';
    return `${plural(rows.size, 'narration', 'narrations')} shown${filtered ? ' (filtered)' : ''}${more}, newest first.`;
  }

  // The first page of the list (filters changed, or the page opened), or the next page.
  async function loadLibrary({ more = false } = {}) {
    const generation = more ? libraryGeneration : ++libraryGeneration;
    if (!more) {
      rows.clear();
      conversionsList.replaceChildren();
      libraryCursor = null;
      loadMoreButton.hidden = true;
      libraryStatus.textContent = 'Loading the library…';
    } else {
      busy(loadMoreButton, true, 'Loading…');
    }
    try {
      const { data } = await call('GET', libraryQuery(more ? libraryCursor : null));
      if (generation !== libraryGeneration) return;
      const added = [];
      for (const c of Array.isArray(data.conversions) ? data.conversions : []) {
        if (rows.has(c.conversion_id)) continue;
        added.push(show(c, 'end'));
      }
      libraryCursor = data.next_cursor || null;
      loadMoreButton.hidden = !libraryCursor;
      libraryStatus.textContent = librarySummary();
      // Keyboard users carry on from the first of the rows just added.
      if (more && added[0]) $('.conversion-title', added[0].el).focus();
    } catch (error) {
      if (generation !== libraryGeneration) return;
      libraryStatus.textContent = `The library could not be loaded: ${error.message}`;
    } finally {
      if (more) busy(loadMoreButton, false, 'Load more');
    }
  }

  // Conversions started since the list was loaded (by a subscription, say) go on top.
  async function refreshLibraryHead() {
    const generation = libraryGeneration;
    try {
      const { data } = await call('GET', libraryQuery(null));
      if (generation !== libraryGeneration) return;
      const fresh = (Array.isArray(data.conversions) ? data.conversions : []).filter((c) => !rows.has(c.conversion_id));
      for (const c of fresh.reverse()) show(c, 'start');
      if (fresh.length) {
        libraryStatus.textContent = librarySummary();
        say(`${plural(fresh.length, 'new narration', 'new narrations')} in the library.`);
      }
    } catch {
      // the next refresh tries again
    }
  }

  // A row for a conversion the list gave, kept up to date until it is final.
  function show(c, where) {
    const row = rowFor(c.conversion_id, c.title, c.status_url, where);
    update(row, c);
    if (!FINAL.has(c.state)) {
      row.watched = true;
      startPolling(row, POLL_MS);
    }
    return row;
  }

  function rowFor(id, title, statusUrl, where = 'start') {
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
      watched: false,
      player: null,
    };
    const embedId = `embed-${id}`;
    $('.conversion-embed-code', li).id = embedId;
    $('.conversion-embed label', li).htmlFor = embedId;
    $('.conversion-copy', li).addEventListener('click', () => copyEmbed(row));
    $('.conversion-title', li).textContent = row.title;
    $('.conversion-progress', li).setAttribute('aria-label', `Progress of “${row.title}”`);
    setStage(row, 'Submitted');
    rows.set(id, row);
    if (where === 'end') conversionsList.append(li);
    else conversionsList.prepend(li);
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

  // What a row says of its progress. A revision being made keeps the previous audio playing.
  function stageText(c, playable) {
    const words = STAGES[c.stage] || c.stage;
    const { chunks_done: done = 0, chunks_total: total = 0 } = c.progress || {};
    const progress = c.stage === 'synthesizing' && total > 0 ? `${words}: ${done} of ${plural(total, 'part', 'parts')} done` : words;
    if (playable && !FINAL.has(c.state)) {
      return `Re-narrating the edited post (revision ${c.revision}): ${progress.toLowerCase()}. The previous narration plays meanwhile.`;
    }
    return progress;
  }

  function sentence(text) {
    return text ? `${text.charAt(0).toUpperCase()}${text.slice(1)}.` : '';
  }

  function audioAddress(c) {
    return webHref(c.revision_audio_url) || webHref(c.audio_url);
  }

  // The timeline of the audio served, with its revision in the query: the address is cached, and
  // one revision's text must never come with another's audio.
  function timelineAddress(c) {
    const base = webHref(c.timeline_url);
    if (!base) return '';
    const url = new URL(base);
    if (c.audio_revision) url.searchParams.set('r', String(c.audio_revision));
    return url.toString();
  }

  function link(el, href, label) {
    const url = webHref(href);
    el.hidden = !url;
    if (url) el.href = url;
    else el.removeAttribute('href');
    if (label) el.setAttribute('aria-label', label);
    return Boolean(url);
  }

  function update(row, c) {
    const before = row.data;
    row.data = c;
    if (c.title) row.title = c.title;
    const li = row.el;
    li.dataset.state = c.state;
    li.dataset.stage = c.stage;
    $('.conversion-title', li).textContent = row.title;
    rememberFeed(c.feed_url, c.feed_title);

    const meta = [];
    if (c.feed_title || c.feed_url) meta.push(c.feed_title || c.feed_url);
    const date = formatDate(c.published_at || c.created_at);
    if (date) meta.push(date);
    const length = formatDuration(c.duration_seconds);
    if (length) meta.push(`length ${length}`);
    $('.conversion-meta', li).textContent = meta.join(' · ');

    const src = audioAddress(c);
    setStage(row, stageText(c, Boolean(src)));

    const bar = $('.conversion-progress', li);
    const { chunks_done: done = 0, chunks_total: total = 0 } = c.progress || {};
    bar.setAttribute('aria-label', `Progress of “${row.title}”`);
    bar.hidden = FINAL.has(c.state);
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

    const summaryBox = $('.conversion-summary', li);
    summaryBox.textContent = sentence(c.synthesis_summary);
    summaryBox.hidden = !c.synthesis_summary;

    showPlayer(row, c, src);
    showLinks(row, c, src);
    if (c.state === 'failed') showFailure(row, c);
    else $('.conversion-error', li).hidden = true;

    // Said out loud only for what the reader watched change, not for what the list brought.
    const changed = !before || before.state !== c.state || before.audio_revision !== c.audio_revision;
    if (row.watched && changed && c.state === 'completed') {
      say(before && before.audio_revision && before.audio_revision !== c.audio_revision
        ? `“${row.title}”: the new narration is ready to play.`
        : `“${row.title}” is ready to play.`);
    }
    if (row.watched && changed && c.state === 'failed') {
      showError(`“${row.title}” could not be converted. ${failureReason(c)}`);
    }
  }

  function showPlayer(row, c, src) {
    const box = $('.conversion-player', row.el);
    box.hidden = !src;
    if (!src) return;
    const audio = $('audio', box);
    if (!row.player) {
      audio.setAttribute('aria-label', `Narration of “${row.title}”`);
      audio.src = src;
      if (window.LectorPlayer) {
        row.player = window.LectorPlayer.mount(box, {
          timeline: timelineAddress(c),
          title: row.title,
          artist: c.feed_title || '',
          artwork: c.feed_id ? apiUrl(`feeds/${encodeURIComponent(c.feed_id)}/cover.png`) : '',
          headingLevel: 4,
          lazy: true,
        });
      }
    } else {
      row.player.setSource(src, timelineAddress(c));
    }
  }

  function showLinks(row, c, src) {
    const li = row.el;
    $('.conversion-done', li).hidden = !src;
    if (!src) return;
    const download = $('.conversion-download', li);
    link(download, src, `Download the MP3 of “${row.title}”`);
    download.download = fileName(row.title);
    const copy = $('.conversion-copy', li);
    copy.setAttribute('aria-label', `Copy the embed code of “${row.title}”`);
    copy.hidden = !c.embed_html;
    $('.conversion-embed', li).hidden = !c.embed_html;
    $('.conversion-embed-code', li).value = c.embed_html || '';
    link($('.conversion-subscribe', li), c.podcast_url, `The podcast feed of “${c.feed_title || 'this feed'}”`);
    const transcripts = $('.conversion-transcripts', li);
    const any = [
      link($('.conversion-vtt', li), c.transcript_vtt_url, `WebVTT transcript of “${row.title}”`),
      link($('.conversion-srt', li), c.transcript_srt_url, `SRT transcript of “${row.title}”`),
      link($('.conversion-json', li), c.transcript_json_url, `JSON transcript of “${row.title}”`),
    ].some(Boolean);
    $('.conversion-chapters-link', li).hidden = !link($('.conversion-chapters', li), c.chapters_url, `Chapters of “${row.title}”`);
    transcripts.hidden = !any;
  }

  function failureReason(c) {
    const e = c.error || {};
    const parts = [];
    if (e.error) parts.push(e.error);
    if (e.cause) parts.push(e.cause);
    return parts.join(': ') || 'no reason was recorded';
  }

  function showFailure(row, c) {
    const e = c.error || {};
    const step = STEP_WORDS[e.state] || e.state;
    const why = failureReason(c);
    const box = $('.conversion-error', row.el);
    box.textContent = step ? `Failed while ${step}. ${why}` : `Failed. ${why}`;
    box.hidden = false;
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
    // Newest first, as the library lists them.
    for (const item of [...items].reverse()) {
      if (!item.conversion_id) {
        refused.push(`${titles.get(item.url) || item.url}: ${item.error || 'refused'}`);
        continue;
      }
      const row = rowFor(item.conversion_id, titles.get(item.url), item.status_url, 'start');
      // A row already listed moves to the top: it is what the reader is waiting for.
      conversionsList.prepend(row.el);
      row.watched = true;
      startPolling(row);
    }
    libraryStatus.textContent = librarySummary();
    if (refused.length) showError('Some posts could not be converted:', refused.reverse());
    say(`${answer.message}. Progress shows in the library.`);
    $('#library-heading').focus();
  }

  // ---- subscriptions -------------------------------------------------------------------------

  const subscriptionsList = $('#subscriptions');
  const subscriptionsStatus = $('#subscriptions-status');
  const subscriptionsMore = $('#subscriptions-more');
  const subscribeButton = $('#subscribe-button');
  const subscriptions = new Map(); // feed id → { el, data }
  let subscriptionsCursor = null;

  const FEED_STATES = {
    active: 'Active',
    failing: 'Failing: retried with backoff',
    paused: 'Paused',
    unsubscribed: 'Unsubscribed',
  };
  const NEXT_POLL_REASONS = {
    first_poll: 'its first poll',
    retry: 'a retry after the failure',
    interval: 'the interval',
    ttl: 'the feed’s ttl',
    syndication_period: 'the feed’s update period',
    max_age: 'the server’s max-age',
    expires: 'the server’s Expires',
    retry_after: 'the server’s Retry-After',
    max_delay: 'the longest wait',
  };

  // Each action's visible words begin its accessible name, which also names the feed.
  const SUBSCRIPTION_ACTIONS = [
    ['.subscription-pause', 'Pause'],
    ['.subscription-resume', 'Resume'],
    ['.subscription-poll', 'Poll now'],
    ['.subscription-show', 'Show its narrations'],
    ['.subscription-unsubscribe', 'Unsubscribe'],
  ];

  const relative = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, { numeric: 'auto' });

  function whenText(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return '';
    const seconds = (date.getTime() - Date.now()) / 1000;
    const abs = Math.abs(seconds);
    let rel;
    if (abs < 45) rel = seconds >= 0 ? 'in a few seconds' : 'a few seconds ago';
    else if (abs < 3600) rel = relative.format(Math.round(seconds / 60), 'minute');
    else if (abs < 86400) rel = relative.format(Math.round(seconds / 3600), 'hour');
    else rel = relative.format(Math.round(seconds / 86400), 'day');
    const at = date.toLocaleString(document.documentElement.lang || undefined, {
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
    });
    return `${rel} (${at})`;
  }

  function timeElement(iso, text) {
    const t = document.createElement('time');
    t.dateTime = iso;
    t.textContent = text;
    return t;
  }

  function subscriptionRow(view, where = 'end') {
    let sub = subscriptions.get(view.feed_id);
    if (!sub) {
      const li = $('#subscription-template').content.firstElementChild.cloneNode(true);
      li.dataset.feedId = view.feed_id;
      sub = { el: li, data: null };
      subscriptions.set(view.feed_id, sub);
      $('.subscription-pause', li).addEventListener('click', () => changeSubscription(sub, { paused: true }, 'paused'));
      $('.subscription-resume', li).addEventListener('click', () => changeSubscription(sub, { paused: false }, 'resumed'));
      $('.subscription-poll', li).addEventListener('click', () => pollNow(sub));
      $('.subscription-unsubscribe', li).addEventListener('click', () => unsubscribe(sub));
      lazyEditor(
        $('.subscription-pronunciations', li),
        () => `feeds/${encodeURIComponent(sub.data.feed_id)}/pronunciations`,
        () => `“${sub.data.title || sub.data.url}”`,
      );
      $('.subscription-show', li).addEventListener('click', () => {
        filters.feed = sub.data.url;
        showFilters();
        applyFilters();
        $('#library-heading').focus();
      });
    }
    if (where === 'start') subscriptionsList.prepend(sub.el);
    else if (!sub.el.isConnected) subscriptionsList.append(sub.el);
    renderSubscription(sub, view);
    return sub;
  }

  function renderSubscription(sub, view) {
    sub.data = view;
    const li = sub.el;
    const name = view.title || view.url;
    rememberFeed(view.url, view.title);
    li.dataset.state = view.state;
    li.dataset.lastPoll = view.last_poll_at || '';
    li.dataset.nextPoll = view.next_poll_at || '';
    $('.subscription-title', li).textContent = name;
    $('.subscription-url', li).textContent = view.title ? view.url : '';
    $('.subscription-url', li).hidden = !view.title;
    $('.badge', li).textContent = FEED_STATES[view.state] || view.state;
    $('.badge', li).dataset.state = view.state;
    const reason = view.state === 'paused' && view.paused_reason ? `(${view.paused_reason})` : '';
    $('.subscription-reason', li).textContent = reason;

    const last = $('.subscription-last', li);
    if (view.last_poll_at) {
      const status = view.last_status ? ` · HTTP ${view.last_status}` : '';
      const seen = ` · ${plural(view.posts_seen || 0, 'post', 'posts')} seen, ${plural(view.conversions_requested || 0, 'narration', 'narrations')} asked for`;
      last.replaceChildren(timeElement(view.last_poll_at, whenText(view.last_poll_at)), `${status}${seen}`);
    } else {
      last.replaceChildren(view.state === 'unsubscribed' ? 'Never polled' : 'Not polled yet: the first poll is under way');
    }
    const next = $('.subscription-next', li);
    const polled = view.state === 'active' || view.state === 'failing';
    if (polled && view.next_poll_at) {
      const why = NEXT_POLL_REASONS[view.next_poll_reason];
      const due = Date.parse(view.next_poll_at) <= Date.now();
      next.replaceChildren(timeElement(view.next_poll_at, due ? 'due now' : whenText(view.next_poll_at)), why ? `, by ${why}` : '');
    } else {
      next.replaceChildren(view.state === 'paused' ? 'None while paused' : 'None');
    }

    const error = $('.subscription-error', li);
    const e = view.last_error;
    const showErrorBox = e && (view.state === 'failing' || view.paused_automatically);
    error.hidden = !showErrorBox;
    if (showErrorBox) {
      const failures = view.consecutive_failures > 1 ? ` (${view.consecutive_failures} failures in a row)` : '';
      error.textContent = `The last poll failed${failures}: ${[e.error, e.cause].filter(Boolean).join(': ')}`;
    }

    $('.subscription-pause', li).hidden = !polled;
    $('.subscription-poll', li).hidden = !polled;
    $('.subscription-resume', li).hidden = view.state !== 'paused';
    $('.subscription-unsubscribe', li).hidden = view.state === 'unsubscribed';
    link($('.subscription-podcast', li), view.podcast_url, `The podcast feed of “${name}”`);
    for (const [selector, words] of SUBSCRIPTION_ACTIONS) $(selector, li).setAttribute('aria-label', `${words}: “${name}”`);
  }

  function subscriptionsSummary() {
    if (subscriptions.size === 0) return 'No subscriptions yet: enter a feed’s address above and press Subscribe.';
    const polled = [...subscriptions.values()].filter((s) => ['active', 'failing'].includes(s.data.state)).length;
    return `${plural(subscriptions.size, 'subscription', 'subscriptions')}, ${polled} polled.`;
  }

  async function loadSubscriptions({ more = false } = {}) {
    if (more) busy(subscriptionsMore, true, 'Loading…');
    try {
      const q = new URLSearchParams({ limit: '50' });
      if (more && subscriptionsCursor) q.set('cursor', subscriptionsCursor);
      const { data } = await call('GET', `feeds?${q}`);
      for (const view of Array.isArray(data.feeds) ? data.feeds : []) subscriptionRow(view);
      subscriptionsCursor = data.next_cursor || null;
      subscriptionsMore.hidden = !subscriptionsCursor;
      subscriptionsStatus.textContent = subscriptionsSummary();
    } catch (error) {
      subscriptionsStatus.textContent = `The subscriptions could not be loaded: ${error.message}`;
    } finally {
      if (more) busy(subscriptionsMore, false, 'Show more subscriptions');
    }
  }

  async function subscribe() {
    const url = feedInput.value.trim();
    if (!url) {
      showError('Enter the address of a feed to subscribe to.');
      feedInput.setAttribute('aria-invalid', 'true');
      feedInput.focus();
      return;
    }
    clearError();
    busy(subscribeButton, true, 'Subscribing…');
    say('Reading the feed to subscribe to it…');
    try {
      const { status, message, data } = await call('POST', 'feeds', { url, ...chosenVoice() });
      const sub = subscriptionRow(data, 'start');
      subscriptionsStatus.textContent = subscriptionsSummary();
      const name = data.title ? `“${data.title}”` : data.url;
      say(status === 'skipped'
        ? `Already subscribed to ${name}.`
        : `Subscribed to ${name}: new posts will be narrated as they appear.`);
      if (!data.last_poll_at) watchPoll(sub, '');
    } catch (error) {
      say('');
      if (error.http === 400) feedInput.setAttribute('aria-invalid', 'true');
      reportApiError(error, 'Could not subscribe');
    } finally {
      busy(subscribeButton, false, 'Subscribe');
    }
  }

  async function changeSubscription(sub, body, done) {
    const name = sub.data.title || sub.data.url;
    clearError();
    try {
      const { data } = await call('PATCH', `feeds/${encodeURIComponent(sub.data.feed_id)}`, body);
      renderSubscription(sub, data);
      subscriptionsStatus.textContent = subscriptionsSummary();
      say(`“${name}” ${done}.`);
      // The button pressed is gone: focus goes to the one that undoes it.
      $(body.paused ? '.subscription-resume' : '.subscription-pause', sub.el).focus();
      if (body.paused === false) watchPoll(sub, data.last_poll_at || '');
    } catch (error) {
      reportApiError(error, `Could not change “${name}”`);
    }
  }

  async function pollNow(sub) {
    const name = sub.data.title || sub.data.url;
    const before = sub.data.last_poll_at || '';
    clearError();
    const button = $('.subscription-poll', sub.el);
    busy(button, true, 'Polling…');
    try {
      await call('POST', `feeds/${encodeURIComponent(sub.data.feed_id)}/poll`);
      say(`Polling “${name}”…`);
      await watchPoll(sub, before);
      say(`“${name}” polled.`);
    } catch (error) {
      reportApiError(error, `Could not poll “${name}”`);
    } finally {
      busy(button, false, 'Poll now');
      if (!button.hidden) button.focus();
    }
  }

  // Follows a subscription until a poll newer than `before` is recorded (for 30 s at most), then
  // looks for the narrations it started.
  async function watchPoll(sub, before) {
    try {
      for (let i = 0; i < 30; i += 1) {
        await new Promise((r) => setTimeout(r, 1000));
        const { data } = await call('GET', `feeds/${encodeURIComponent(sub.data.feed_id)}`);
        renderSubscription(sub, data);
        if ((data.last_poll_at || '') !== before) break;
      }
      refreshLibraryHead();
    } catch {
      // the periodic refresh shows it later
    }
  }

  async function unsubscribe(sub) {
    const name = sub.data.title || sub.data.url;
    if (!window.confirm(`Unsubscribe from “${name}”? No more posts will be narrated; its narrations and podcast feed stay.`)) return;
    clearError();
    try {
      const { data } = await call('DELETE', `feeds/${encodeURIComponent(sub.data.feed_id)}`);
      renderSubscription(sub, data);
      subscriptionsStatus.textContent = subscriptionsSummary();
      say(`Unsubscribed from “${name}”.`);
      $('.subscription-title', sub.el).focus();
    } catch (error) {
      reportApiError(error, `Could not unsubscribe from “${name}”`);
    }
  }

  // While the page is shown: the subscriptions' polls and the narrations they start.
  const REFRESH_MS = 20000;
  function refreshPeriodically() {
    setInterval(() => {
      if (document.visibilityState !== 'visible') return;
      if (!subscriptionsCursor) loadSubscriptions();
      if ([...subscriptions.values()].some((s) => ['active', 'failing'].includes(s.data.state))) refreshLibraryHead();
    }, REFRESH_MS);
  }

  // ---- pronunciations ------------------------------------------------------------------------

  // The kinds of rule, each with the field that says how to read the match.
  const RULE_KINDS = {
    substitute: { label: 'Say instead', field: 'say', hint: 'The words to say, e.g. Kubernetes' },
    ipa: { label: 'Phonemes (IPA)', field: 'phonemes', hint: 'IPA, e.g. ˈlɛktɚ' },
    say_as: { label: 'Read as', field: 'interpret_as' },
  };
  const INTERPRET_AS = [
    ['characters', 'letter by letter'],
    ['date', 'a date'],
    ['number', 'a number'],
  ];

  // A table of rules read from and saved to `path` (`pronunciations` or
  // `feeds/{id}/pronunciations`), built in `host` the first time it is opened.
  function pronunciationEditor(host, path, name) {
    const box = $('#pronunciations-template').content.firstElementChild.cloneNode(true);
    const tbody = $('tbody', box);
    const errorArea = $('.pron-error', box);
    const status = $('.pron-status', box);
    const empty = $('.pron-empty', box);
    const addButton = $('.pron-add', box);
    const saveButton = $('.pron-save', box);
    $('caption', box).textContent = `Pronunciation rules for ${name}`;
    host.append(box);
    let loaded = false;

    function showProblem(message) {
      errorArea.textContent = message;
      errorArea.hidden = !message;
    }

    function numberRows() {
      [...tbody.rows].forEach((tr, i) => {
        const n = i + 1;
        $('.pron-kind', tr).setAttribute('aria-label', `Kind of rule ${n}`);
        $('.pron-match', tr).setAttribute('aria-label', `Word or phrase of rule ${n}`);
        $('.pron-value', tr).setAttribute('aria-label', `How to say rule ${n}`);
        $('.pron-remove', tr).setAttribute('aria-label', `Remove rule ${n}`);
      });
      empty.hidden = tbody.rows.length > 0;
    }

    // The value cell: a text field, or for `say_as` the choice of reading.
    function valueControl(kind, value) {
      let control;
      if (kind === 'say_as') {
        control = document.createElement('select');
        for (const [v, words] of INTERPRET_AS) control.append(option(v, words, v === value));
      } else {
        control = document.createElement('input');
        control.type = 'text';
        control.spellcheck = false;
        control.autocomplete = 'off';
        control.placeholder = RULE_KINDS[kind].hint;
        control.value = value || '';
      }
      control.className = 'pron-value';
      control.addEventListener('input', () => control.removeAttribute('aria-invalid'));
      return control;
    }

    function addRow(rule = { kind: 'substitute', match: '', say: '' }) {
      const kind = RULE_KINDS[rule.kind] ? rule.kind : 'substitute';
      const tr = document.createElement('tr');
      const kindSelect = document.createElement('select');
      kindSelect.className = 'pron-kind';
      for (const [k, about] of Object.entries(RULE_KINDS)) kindSelect.append(option(k, about.label, k === kind));
      const match = document.createElement('input');
      match.type = 'text';
      match.className = 'pron-match';
      match.spellcheck = false;
      match.autocomplete = 'off';
      match.value = rule.match || '';
      match.addEventListener('input', () => match.removeAttribute('aria-invalid'));
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'pron-remove danger';
      remove.textContent = 'Remove';
      const cells = [kindSelect, match, valueControl(kind, rule[RULE_KINDS[kind].field]), remove].map((c) => {
        const td = document.createElement('td');
        td.append(c);
        return td;
      });
      tr.append(...cells);
      kindSelect.addEventListener('change', () => {
        $('.pron-value', tr).replaceWith(valueControl(kindSelect.value, ''));
        numberRows();
      });
      remove.addEventListener('click', () => {
        // Focus stays in the table: on the next row's kind, or the previous one's, or Add.
        const neighbour = tr.nextElementSibling || tr.previousElementSibling;
        tr.remove();
        numberRows();
        (neighbour ? $('.pron-kind', neighbour) : addButton).focus();
        status.textContent = 'Rule removed: save to keep the change.';
      });
      tbody.append(tr);
      numberRows();
      return tr;
    }

    function render(rules) {
      tbody.replaceChildren();
      for (const rule of Array.isArray(rules) ? rules : []) addRow(rule);
      numberRows();
    }

    // The rows as rules; a row left incomplete is marked and named, and nothing is sent.
    function collect() {
      const rules = [];
      const problems = [];
      [...tbody.rows].forEach((tr, i) => {
        const kind = $('.pron-kind', tr).value;
        const match = $('.pron-match', tr);
        const value = $('.pron-value', tr);
        if (!match.value.trim()) {
          match.setAttribute('aria-invalid', 'true');
          problems.push([match, `rule ${i + 1} needs the word or phrase it matches`]);
        }
        if (!value.value.trim()) {
          value.setAttribute('aria-invalid', 'true');
          problems.push([value, `rule ${i + 1} needs how to say it`]);
        }
        rules.push({ kind, match: match.value.trim(), [RULE_KINDS[kind].field]: value.value.trim() });
      });
      return { rules, problems };
    }

    async function load() {
      status.textContent = 'Loading the rules…';
      try {
        const { data } = await call('GET', path);
        render(data.rules);
        loaded = true;
        status.textContent = tbody.rows.length ? `${plural(tbody.rows.length, 'rule', 'rules')}.` : '';
      } catch (error) {
        status.textContent = '';
        showProblem(error.http === 404 || error.http === 405
          ? 'This server keeps no pronunciation rules.'
          : `The rules could not be loaded: ${error.message}`);
        addButton.disabled = error.http === 404 || error.http === 405;
        saveButton.disabled = addButton.disabled;
      }
    }

    async function save() {
      showProblem('');
      const { rules, problems } = collect();
      if (problems.length) {
        showProblem(`Not saved: ${problems.map(([, words]) => words).join('; ')}.`);
        problems[0][0].focus();
        return;
      }
      busy(saveButton, true, 'Saving…');
      status.textContent = '';
      try {
        const { data } = await call('PUT', path, { rules });
        render(data.rules);
        status.textContent = `Saved ${plural(tbody.rows.length, 'rule', 'rules')} for ${name}.`;
      } catch (error) {
        if (error.http === 401 || error.http === 403) reportApiError(error, `Could not save the rules for ${name}`);
        showProblem(`Not saved: ${error.message}`);
        markNamedRule(error.message);
      } finally {
        busy(saveButton, false, 'Save rules');
      }
    }

    // The server names the bad rule: its match in quotes, or its number; that row is marked.
    function markNamedRule(message) {
      const rows = [...tbody.rows];
      const byMatch = rows.find((tr) => {
        const m = $('.pron-match', tr).value;
        return m && (message.includes(`"${m}"`) || message.includes(`“${m}”`) || message.includes(`'${m}'`));
      });
      const number = /\brules?\s*(?:\[(\d+)\]|#?(\d+))/i.exec(message);
      const byIndex = number ? rows[number[1] !== undefined ? Number(number[1]) : Number(number[2]) - 1] : null;
      const row = byMatch || byIndex;
      if (!row) return;
      const field = $('.pron-match', row);
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }

    addButton.addEventListener('click', () => {
      const tr = addRow();
      $('.pron-kind', tr).focus();
      status.textContent = '';
    });
    saveButton.addEventListener('click', save);
    return {
      open() {
        if (!loaded) load();
      },
    };
  }

  // Each editor is built and loaded the first time its disclosure is opened.
  function lazyEditor(details, path, name) {
    let editor = null;
    details.addEventListener('toggle', () => {
      if (!details.open) return;
      if (!editor) editor = pronunciationEditor(details, path(), name());
      editor.open();
    });
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
  subscribeButton.addEventListener('click', subscribe);
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
  $('#library-filters').addEventListener('submit', (event) => event.preventDefault());
  filterFeed.addEventListener('change', applyFilters);
  filterState.addEventListener('change', applyFilters);
  loadMoreButton.addEventListener('click', () => loadLibrary({ more: true }));
  subscriptionsMore.addEventListener('click', () => loadSubscriptions({ more: true }));

  setupToken();
  lazyEditor($('#global-pronunciations'), () => 'pronunciations', () => 'every feed');
  showFilters();
  loadVoices();
  loadSubscriptions();
  loadLibrary();
  offerSample();
  refreshPeriodically();
})();
