// Lector's read-along player, one script for the page and the embed: the post's text beside the
// audio, the sentence being read highlighted and kept in view, a click on a sentence to listen
// from there, chapters, speed, and the Media Session (title, artwork, lock-screen controls).
'use strict';

(() => {
  const SPEEDS = [0.75, 1, 1.25, 1.5, 1.75, 2];
  const SPEED_KEY = 'lector.speed';
  // After the reader scrolls the text by hand, the player leaves it alone this long.
  const FOLLOW_PAUSE_MS = 4000;
  // "Previous chapter" this far into a chapter goes back to its start, as a CD player does.
  const RESTART_CHAPTER_S = 3;

  const ms = (t) => Math.round(t * 1000);

  // The sentence whose [start, end) holds t, compared in milliseconds, or -1: the rule of
  // Timeline::segment_at in Rust.
  function segmentAt(segments, t) {
    if (!Number.isFinite(t) || t < 0) return -1;
    const at = ms(t);
    let lo = 0;
    let hi = segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ms(segments[mid].start) <= at) lo = mid + 1;
      else hi = mid;
    }
    const i = lo - 1;
    return i >= 0 && at < ms(segments[i].end) ? i : -1;
  }

  // The chapter playing at t: the last one starting at or before it, or -1.
  function chapterAt(chapters, t) {
    let found = -1;
    for (let i = 0; i < chapters.length && ms(chapters[i].start) <= ms(t); i += 1) found = i;
    return found;
  }

  function clock(seconds) {
    const total = Math.max(0, Math.round(seconds));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
  }

  function make(tag, attrs = {}, text = '') {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  }

  // Storage may be refused (private windows, third-party frames): the speed is then not kept.
  function storedSpeed() {
    try {
      const v = Number(localStorage.getItem(SPEED_KEY));
      return SPEEDS.includes(v) ? v : 1;
    } catch {
      return 1;
    }
  }

  function keepSpeed(v) {
    try {
      localStorage.setItem(SPEED_KEY, String(v));
    } catch {
      // not kept
    }
  }

  const reducedMotion = () => window.matchMedia && matchMedia('(prefers-reduced-motion: reduce)').matches;
  const players = new Set();
  let sessionOwner = null;

  // Makes a player of `root`, which holds an <audio>. Options (or the root's data-* attributes):
  // timeline (its address), title, artist, artwork, headingLevel (of the post's top headings),
  // lazy (load the text only once the player is near the screen or plays).
  function mount(root, options = {}) {
    const audio = root.querySelector('audio');
    if (!audio) throw new Error('a Lector player needs an <audio> element');
    const d = root.dataset;
    const o = {
      timeline: d.timeline || '',
      title: d.title || document.title,
      artist: d.artist || '',
      artwork: d.artwork || '',
      headingLevel: Number(d.headingLevel) || 3,
      lazy: false,
      ...options,
    };
    const label = o.title ? `“${o.title}”` : 'the post';

    let segments = [];
    let chapters = [];
    let spans = [];
    let current = -1;
    let chapter = -1;
    let raf = 0;
    let followAfter = 0;
    let loaded = '';
    let loading = null;

    // ---- controls: speed, and chapters once known ----
    const bar = make('div', { class: 'lp-bar' });
    const speedId = `lp-speed-${Math.random().toString(36).slice(2, 9)}`;
    const speedLabel = make('label', { for: speedId }, 'Speed');
    const speed = make('select', { id: speedId, class: 'lp-speed' });
    for (const s of SPEEDS) speed.append(new Option(`${s}×`, String(s)));
    const nav = make('div', { class: 'lp-chapters', role: 'group', 'aria-label': `Chapters of ${label}` });
    const prev = make('button', { type: 'button', class: 'lp-prev', 'aria-label': 'Previous chapter', title: 'Previous chapter' }, '‹');
    const chapterSelect = make('select', { class: 'lp-chapter', 'aria-label': 'Chapter' });
    const next = make('button', { type: 'button', class: 'lp-next', 'aria-label': 'Next chapter', title: 'Next chapter' }, '›');
    nav.append(prev, chapterSelect, next);
    nav.hidden = true;
    bar.append(speedLabel, speed, nav);
    audio.after(bar);

    // ---- the text ----
    const hintId = `${speedId}-hint`;
    const hint = make('p', { id: hintId, class: 'lp-hint' },
      'Each sentence plays from where it starts: arrow keys move between sentences, Enter or Space listens from one.');
    const pane = make('div', {
      class: 'lp-text',
      role: 'group',
      'aria-label': `Text of ${label}`,
      'aria-describedby': hintId,
    });
    // Shown once its text is asked for.
    pane.hidden = true;
    hint.hidden = true;
    root.append(hint, pane);

    const rate = storedSpeed();
    audio.defaultPlaybackRate = rate;
    audio.playbackRate = rate;
    speed.value = String(rate);

    function render(timeline) {
      segments = Array.isArray(timeline.segments) ? timeline.segments : [];
      chapters = Array.isArray(timeline.chapters) ? timeline.chapters : [];
      const blocks = Array.isArray(timeline.blocks) ? timeline.blocks : [];
      const levels = blocks.filter((b) => b && b.kind === 'heading').map((b) => b.level || 1);
      const top = levels.length ? Math.min(...levels) : 1;
      const fragment = document.createDocumentFragment();
      spans = [];
      let block = -1;
      let list = null;
      let box = null;
      segments.forEach((segment, i) => {
        if (segment.block !== block || !box) {
          block = segment.block;
          const b = blocks[block] || { kind: 'paragraph' };
          if (b.kind === 'list_item') {
            if (!list) {
              list = make('ul');
              fragment.append(list);
            }
            box = make('li');
            list.append(box);
          } else {
            list = null;
            if (b.kind === 'heading') {
              const level = Math.min(6, o.headingLevel + (b.level || top) - top);
              box = make(`h${level}`, { class: 'lp-h' });
            } else {
              box = make(b.kind === 'quote' ? 'blockquote' : 'p');
            }
            fragment.append(box);
          }
        } else {
          box.append(' ');
        }
        const span = make('span', { class: 'lp-s', role: 'button', tabindex: '-1', 'data-i': String(i) }, segment.text);
        box.append(span);
        spans.push(span);
      });
      pane.replaceChildren(fragment);
      if (spans[0]) spans[0].tabIndex = 0;
      hint.hidden = spans.length === 0;
      chapterSelect.replaceChildren(...chapters.map((c, i) => new Option(`${clock(c.start)} ${c.title}`, String(i))));
      nav.hidden = chapters.length === 0;
      current = -1;
      chapter = null; // so that update() sets the chapter controls
      update();
      if (sessionOwner === api) claimSession();
    }

    // Fetches the text once per address; a failure leaves the audio playing and says so.
    function load() {
      if (!o.timeline || loaded === o.timeline) return loading || Promise.resolve();
      const url = o.timeline;
      loaded = url;
      pane.hidden = false;
      pane.setAttribute('aria-busy', 'true');
      pane.replaceChildren(make('p', { class: 'lp-note' }, 'Loading the text…'));
      loading = fetch(url, { headers: { Accept: 'application/json' } })
        .then((r) => {
          if (!r.ok) throw new Error(`the server answered ${r.status}`);
          return r.json();
        })
        .then((timeline) => {
          if (url === o.timeline) render(timeline);
        })
        .catch((e) => {
          if (url !== o.timeline) return;
          loaded = '';
          pane.replaceChildren(make('p', { class: 'lp-note' }, `The text could not be loaded (${e.message}); the audio plays all the same.`));
        })
        .finally(() => {
          pane.removeAttribute('aria-busy');
          loading = null;
        });
      return loading;
    }

    // ---- following the audio ----
    function setCurrent(i) {
      if (i === current) return;
      const old = spans[current];
      if (old) old.removeAttribute('aria-current');
      current = i;
      const span = spans[i];
      if (!span) return;
      span.setAttribute('aria-current', 'true');
      // Tab lands on the sentence being read, unless the reader is moving among them.
      if (!pane.contains(document.activeElement)) rove(span);
      if (Date.now() >= followAfter) keepInView(span);
    }

    // Scrolls the text, never the page (nor the page around an embed).
    function keepInView(span) {
      if (pane.scrollHeight <= pane.clientHeight) return;
      const top = span.offsetTop;
      const bottom = top + span.offsetHeight;
      const view = pane.scrollTop;
      if (top >= view && bottom <= view + pane.clientHeight) return;
      const target = Math.max(0, top - pane.clientHeight / 3);
      if (pane.scrollTo) pane.scrollTo({ top: target, behavior: reducedMotion() ? 'auto' : 'smooth' });
      else pane.scrollTop = target;
    }

    function update() {
      const t = audio.currentTime;
      setCurrent(segmentAt(segments, t));
      const c = chapterAt(chapters, t);
      if (c !== chapter) {
        chapter = c;
        if (c >= 0) chapterSelect.value = String(c);
        next.disabled = c >= chapters.length - 1;
      }
    }

    function tick() {
      update();
      raf = !audio.paused && !audio.ended ? requestAnimationFrame(tick) : 0;
    }

    function seek(t, play = false) {
      const end = Number.isFinite(audio.duration) ? audio.duration : Infinity;
      audio.currentTime = Math.max(0, Math.min(t, end));
      update();
      if (play && audio.paused) audio.play().catch(() => {});
      positionState();
    }

    function listenFrom(i) {
      const segment = segments[i];
      if (!segment) return;
      followAfter = 0;
      seek(segment.start, true);
    }

    function previousChapter() {
      const t = audio.currentTime;
      const c = chapterAt(chapters, t);
      if (c < 0) return seek(0);
      if (t - chapters[c].start > RESTART_CHAPTER_S || c === 0) return seek(chapters[c].start);
      return seek(chapters[c - 1].start);
    }

    function nextChapter() {
      const c = chapterAt(chapters, audio.currentTime);
      if (chapters[c + 1]) seek(chapters[c + 1].start);
    }

    // Roving focus: the text is one stop for Tab; arrows move between its sentences.
    function rove(span) {
      for (const s of pane.querySelectorAll('.lp-s[tabindex="0"]')) s.tabIndex = -1;
      span.tabIndex = 0;
    }

    pane.addEventListener('click', (event) => {
      const span = event.target.closest('.lp-s');
      if (!span) return;
      rove(span);
      listenFrom(Number(span.dataset.i));
    });
    pane.addEventListener('keydown', (event) => {
      const span = event.target.closest('.lp-s');
      if (!span) return;
      const i = Number(span.dataset.i);
      const to = {
        ArrowDown: i + 1,
        ArrowRight: i + 1,
        ArrowUp: i - 1,
        ArrowLeft: i - 1,
        Home: 0,
        End: spans.length - 1,
      }[event.key];
      if (to !== undefined) {
        event.preventDefault();
        const target = spans[Math.max(0, Math.min(spans.length - 1, to))];
        rove(target);
        target.focus();
      } else if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        listenFrom(i);
      }
    });
    for (const type of ['wheel', 'touchmove', 'pointerdown']) {
      pane.addEventListener(type, () => {
        followAfter = Date.now() + FOLLOW_PAUSE_MS;
      }, { passive: true });
    }

    speed.addEventListener('change', () => {
      const v = Number(speed.value);
      audio.defaultPlaybackRate = v;
      audio.playbackRate = v;
      keepSpeed(v);
    });
    chapterSelect.addEventListener('change', () => {
      const c = chapters[Number(chapterSelect.value)];
      if (c) seek(c.start);
    });
    prev.addEventListener('click', previousChapter);
    next.addEventListener('click', nextChapter);

    audio.addEventListener('play', () => {
      for (const p of players) if (p !== api && !p.audio.paused) p.audio.pause();
      load();
      claimSession();
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(tick);
    });
    for (const type of ['timeupdate', 'seeked', 'pause', 'ended', 'loadedmetadata']) audio.addEventListener(type, update);
    audio.addEventListener('ratechange', () => {
      if (SPEEDS.includes(audio.playbackRate)) speed.value = String(audio.playbackRate);
      positionState();
    });
    audio.addEventListener('pause', () => {
      if (sessionOwner === api && navigator.mediaSession) navigator.mediaSession.playbackState = 'paused';
    });

    // ---- Media Session: the lock screen, headphones and the system's media keys ----
    function positionState() {
      const session = navigator.mediaSession;
      if (sessionOwner !== api || !session || !session.setPositionState) return;
      const duration = audio.duration;
      if (!Number.isFinite(duration) || duration <= 0) return;
      try {
        session.setPositionState({ duration, playbackRate: audio.playbackRate, position: Math.min(audio.currentTime, duration) });
      } catch {
        // an inconsistent state during a seek; the next event sets it again
      }
    }

    function claimSession() {
      const session = navigator.mediaSession;
      if (!session) return;
      sessionOwner = api;
      try {
        session.metadata = new MediaMetadata({
          title: o.title || 'Narrated post',
          artist: o.artist || '',
          album: 'Lector',
          artwork: o.artwork ? [{ src: new URL(o.artwork, document.baseURI).href, sizes: '3000x3000', type: 'image/png' }] : [],
        });
      } catch {
        // MediaMetadata is missing in some browsers
      }
      const handlers = {
        play: () => audio.play().catch(() => {}),
        pause: () => audio.pause(),
        stop: () => {
          audio.pause();
          seek(0);
        },
        seekbackward: (e) => seek(audio.currentTime - (e.seekOffset || 10)),
        seekforward: (e) => seek(audio.currentTime + (e.seekOffset || 10)),
        seekto: (e) => seek(e.seekTime),
        previoustrack: chapters.length ? previousChapter : null,
        nexttrack: chapters.length ? nextChapter : null,
      };
      for (const [action, handler] of Object.entries(handlers)) {
        try {
          session.setActionHandler(action, handler);
        } catch {
          // an action this browser does not know
        }
      }
      session.playbackState = audio.paused ? 'paused' : 'playing';
      positionState();
    }
    audio.addEventListener('seeked', positionState);
    audio.addEventListener('loadedmetadata', positionState);

    // ---- loading the text: at once, or once the player comes near the screen ----
    if (o.timeline && !o.lazy) load();
    else if (o.timeline && 'IntersectionObserver' in window) {
      const seen = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          seen.disconnect();
          load();
        }
      }, { rootMargin: '400px' });
      seen.observe(root);
    }

    const api = {
      root,
      audio,
      load,
      // A new revision: new audio and its text, keeping the place when the player was playing.
      setSource(audioUrl, timelineUrl) {
        if (audioUrl && audio.getAttribute('src') !== audioUrl) {
          const at = audio.currentTime;
          const playing = !audio.paused;
          audio.src = audioUrl;
          audio.playbackRate = audio.defaultPlaybackRate;
          if (at > 0) audio.currentTime = at;
          if (playing) audio.play().catch(() => {});
        }
        if (timelineUrl !== undefined && timelineUrl !== o.timeline) {
          o.timeline = timelineUrl || '';
          if (!o.timeline) {
            pane.hidden = true;
            hint.hidden = true;
            nav.hidden = true;
            segments = [];
            chapters = [];
            spans = [];
          } else if (loaded || !o.lazy) {
            loaded = '';
            load();
          }
        }
      },
      current: () => current,
      segments: () => segments,
      chapters: () => chapters,
    };
    players.add(api);
    return api;
  }

  window.LectorPlayer = { mount, segmentAt, chapterAt, SPEEDS };
  for (const root of document.querySelectorAll('[data-lector-player]')) mount(root);
})();
