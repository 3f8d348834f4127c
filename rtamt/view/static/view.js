// rtamt live view: websocket messages in, a scrolling piano roll drawn once per animation frame.
"use strict";

const SPAN_S = 10;          // seconds of stream shown across the roll
const LEVEL_LANE = 48;      // px of input level under the roll
const LEVEL_FLOOR_DB = -60;
const RECENT = 8;           // note-ons listed with their delay
const DELAYS_KEPT = 50;     // note-ons behind the median delay

const view = {
  palette: [], pitchMin: 24, pitchMax: 107,
  counts: new Map(),        // channel -> note-ons sent
  notes: [],                // {pitch, channel, t0, t1 (null while sounding)}
  open: new Map(),          // channel * 128 + pitch -> note
  levels: [],               // [stream s, dBFS]
  recent: [], delays: [],
  pos: 0, offset: null, shown: 0, ended: false, status: {},
  notesChanged: true, panelAt: 0, background: null, backgroundKey: "",
};

function timbreOf(channel) { return channel < 9 ? channel + 1 : channel; }  // channel 10 is never used
function noteName(pitch) {
  return ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"][pitch % 12] + (Math.floor(pitch / 12) - 1);
}

function apply(event, live) {
  const [on, pitch, channel, velocity, t, sentAt] = event;
  const key = channel * 128 + pitch;
  const sounding = view.open.get(key);
  if (sounding) { sounding.t1 = t; view.open.delete(key); }
  if (!on) return;
  view.notesChanged = true;
  const note = {pitch, channel, velocity, t0: t, t1: null};
  view.notes.push(note);
  view.open.set(key, note);
  if (live) view.counts.set(channel, (view.counts.get(channel) || 0) + 1);
  const delay = sentAt - t;
  view.recent.unshift({pitch, channel, delay});
  view.recent.length = Math.min(view.recent.length, RECENT);
  view.delays.push(delay);
  if (view.delays.length > DELAYS_KEPT) view.delays.shift();
}

function applyStatus(message) {
  view.status = message;
  const now = performance.now() / 1000;
  const offset = message.pos - now;
  // follow the stream clock smoothly; jump only when far off (start, reconnect, a file read fast)
  if (view.offset === null || Math.abs(offset - view.offset) > 0.5) view.offset = offset;
  else view.offset += 0.1 * (offset - view.offset);
  view.pos = message.pos;
  view.levels.push([message.pos, message.level_db]);
  while (view.levels.length && view.levels[0][0] < message.pos - SPAN_S - 1) view.levels.shift();
}

function onMessage(message) {
  if (message.type === "hello") {
    Object.assign(view, {palette: message.palette, pitchMin: message.pitch_min, pitchMax: message.pitch_max,
      counts: new Map(Object.entries(message.counts).map(([c, n]) => [Number(c), n])),
      notes: [], open: new Map(), levels: [], recent: [], delays: [], offset: null, ended: false});
    for (const event of message.events) apply(event, false);
    document.getElementById("source").textContent = message.source || "";
    applyStatus(message);
    setState("live", "live");
    view.background = null;
  } else if (message.type === "tick") {
    for (const event of message.events) apply(event, true);
    applyStatus(message);
  } else if (message.type === "end") {
    view.ended = true;
    setState("ended", "stream ended");
    view.panelAt = 0;
  }
  // the side panel changes the page's layout: at most 5 times a second (the canvas is redrawn every frame)
  const now = performance.now();
  if (now - view.panelAt >= 200) {
    view.panelAt = now;
    updatePanel();
  }
}

function setState(state, text) {
  document.body.dataset.state = state;
  document.getElementById("state").textContent = text;
}

function connect() {
  const socket = new WebSocket(`ws://${location.host}/events`);
  socket.onmessage = (message) => onMessage(JSON.parse(message.data));
  socket.onclose = () => {
    updatePanel();
    if (view.ended) return;
    setState("reconnecting", "disconnected: retrying…");
    setTimeout(connect, 1000);
  };
}

function updatePanel() {
  updateMeters();
  if (!view.notesChanged) return;
  view.notesChanged = false;
  let total = 0;
  const legend = document.getElementById("legend");
  const channels = [...view.counts.keys()].sort((a, b) => a - b);
  const items = channels.map((channel) => {
    const count = view.counts.get(channel);
    total += count;
    const item = document.createElement("li");
    item.dataset.channel = channel + 1;
    item.dataset.count = count;
    item.innerHTML = `<span class="swatch" style="background:${view.palette[channel]}"></span>` +
      `timbre ${timbreOf(channel)} <span class="small">ch ${channel + 1}</span><span class="count">${count}</span>`;
    return item;
  });
  legend.replaceChildren(...items);
  document.getElementById("notes-total").textContent = total;
  document.body.dataset.notes = total;
  const sorted = [...view.delays].sort((a, b) => a - b);
  document.getElementById("delay-median").textContent = sorted.length
    ? `median ${(1000 * sorted[Math.floor(sorted.length / 2)]).toFixed(0)} ms of the last ${sorted.length}` : "–";
  document.getElementById("recent").replaceChildren(...view.recent.map((r) => {
    const item = document.createElement("li");
    item.innerHTML = `<span class="swatch" style="background:${view.palette[r.channel]}"></span>` +
      `${noteName(r.pitch)} <span class="small">timbre ${timbreOf(r.channel)}</span>` +
      `<span class="count">${(1000 * r.delay).toFixed(0)} ms</span>`;
    return item;
  }));
}

function setText(id, text) {
  const element = document.getElementById(id);
  if (element.textContent !== text) element.textContent = text;
}

function updateMeters() {
  const s = view.status;
  const level = s.level_db ?? -120;
  const fraction = Math.max(0, Math.min(1, (level - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB));
  document.getElementById("level-bar").style.transform = `scaleX(${fraction.toFixed(3)})`;
  setText("level-text", `${level.toFixed(1)} dBFS peak`);
  setText("drops", `${s.dropped_blocks ?? 0} audio blocks dropped (${(s.skipped_s ?? 0).toFixed(2)} s skipped), ` +
    `${s.view_dropped ?? 0} view events dropped`);
  setText("load", s.hop_ms_p99 == null ? "" : `worker p99 ${s.hop_ms_p99.toFixed(2)} ms per 11.61 ms hop`);
}

function drawBackground(width, height, ratio, rollHeight, row, y) {
  // what does not scroll: pitch rows, octave lines and names, the level lane (drawn once per size)
  const background = document.createElement("canvas");
  background.width = width;
  background.height = height;
  const g = background.getContext("2d", {alpha: false});
  g.fillStyle = "#0b1020";
  g.fillRect(0, 0, width, height);
  g.fillStyle = "#131a2e";
  for (let pitch = view.pitchMin; pitch <= view.pitchMax; pitch++) {
    if ([1, 3, 6, 8, 10].includes(pitch % 12)) g.fillRect(0, y(pitch), width, Math.max(1, Math.round(row)));
  }
  g.fillStyle = "#273449";
  g.font = `${11 * ratio}px system-ui`;
  for (let pitch = view.pitchMin; pitch <= view.pitchMax; pitch++) {
    if (pitch % 12 !== 0) continue;
    g.fillRect(0, y(pitch) + Math.round(row), width, 1);
    g.fillText(noteName(pitch), 4 * ratio, y(pitch) + Math.round(row) - 2 * ratio);
  }
  g.fillStyle = "#111827";
  g.fillRect(0, rollHeight, width, height - rollHeight);
  return background;
}

function draw() {
  const canvas = document.getElementById("roll");
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * ratio), height = Math.round(canvas.clientHeight * ratio);
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const g = canvas.getContext("2d", {alpha: false});
  const clock = view.offset === null ? 0 : performance.now() / 1000 + view.offset;
  // never run ahead of what has arrived by more than a tick's worth, never step back
  let now = view.ended ? view.pos : Math.min(clock, view.pos + 0.1);
  if (!view.ended && now < view.shown && view.shown - now < 0.5) now = view.shown;
  view.shown = now;

  const lane = LEVEL_LANE * ratio, rollHeight = height - lane;
  const rows = view.pitchMax - view.pitchMin + 1, row = rollHeight / rows;
  const x = (t) => Math.round(width * (1 - (now - t) / SPAN_S));
  const y = (pitch) => Math.round(rollHeight - (pitch - view.pitchMin + 1) * row);
  const key = `${width}x${height}x${ratio}`;
  if (view.backgroundKey !== key || view.background === null) {
    view.background = drawBackground(width, height, ratio, rollHeight, row, y);
    view.backgroundKey = key;
  }
  g.drawImage(view.background, 0, 0);
  g.fillStyle = "#273449";
  for (let s = Math.ceil(now - SPAN_S); s <= now; s++) g.fillRect(x(s), 0, 1, rollHeight);

  let kept = 0;
  for (const note of view.notes) {
    const end = note.t1 === null ? now : note.t1;
    if (end >= now - SPAN_S - 2) view.notes[kept++] = note;  // forget what scrolled out
    if (end < now - SPAN_S || note.t0 > now) continue;
    const left = Math.max(0, x(note.t0));
    g.fillStyle = view.palette[note.channel] || "#ffffff";
    g.fillRect(left, y(note.pitch), Math.max(2, x(end) - left), Math.max(2, Math.round(row) - 1));
  }
  view.notes.length = kept;

  g.fillStyle = "#475569";
  g.beginPath();  // one fill for the whole level lane
  for (let i = 0; i < view.levels.length; i++) {
    const [t, db] = view.levels[i];
    const next = i + 1 < view.levels.length ? view.levels[i + 1][0] : now;
    const h = Math.max(0, Math.min(1, (db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB)) * (lane - 4 * ratio);
    g.rect(x(t), height - h, Math.max(1, x(next) - x(t)), h);
  }
  g.fill();
  g.fillStyle = "#cbd5e1";
  g.font = `${11 * ratio}px system-ui`;
  g.fillText("input level", 4 * ratio, rollHeight + 12 * ratio);
  requestAnimationFrame(draw);
}

connect();
requestAnimationFrame(draw);
