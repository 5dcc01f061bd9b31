// app.js — the sdstream demo page: sends camera/screen/file frames as JPEG over a WebSocket to
// `sdstream serve`, shows the generated frames beside them, and edits the stream live.
// Protocol (README "sdstream serve"): binary frames are [u32 id][u32 flags][JPEG], little-endian;
// text messages are JSON with a "type". At most steps+1 frames are in flight, so the page never
// floods a slow server; the server keeps only the newest frame anyway.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  ws: null, config: null, maxSize: 1024, started: false, source: null, stream: null,
  nextId: 1, sentAt: new Map(), outputTimes: [], latencies: [], lastUrl: null,
  sendTimer: null, configTimer: null, t2iPending: false, queued: false,
};
// Read by the browser test: counts and the newest frame's bytes.
window.sdstream = { framesOut: 0, lastFrame: null, errors: [], status: "connecting" };

function notice(text, kind) {
  const n = $("notice");
  n.hidden = !text;
  n.textContent = text || "";
  n.className = "notice" + (kind === "error" ? " error" : "");
}

function setConn(text, cls) {
  const c = $("conn");
  c.textContent = text;
  c.className = "badge " + cls;
  window.sdstream.status = text;
}

// ---- connection ----

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => setConn("connected", "on");
  ws.onclose = (ev) => {
    setConn("disconnected", "off");
    const why = ev.reason ? `: ${ev.reason}` : "";
    notice(`Connection closed (${ev.code}${why}). Reload the page to reconnect.`, "error");
  };
  ws.onmessage = (ev) => (typeof ev.data === "string" ? onText(JSON.parse(ev.data)) : onFrame(ev.data));
}

function onText(msg) {
  switch (msg.type) {
  case "hello":
    state.maxSize = msg.max_size;
    $("model").textContent = `${msg.model} · sdstream ${msg.version} · ${msg.backends}`;
    break;
  case "config":
    if (!state.config) { state.config = msg; fillControls(msg); }
    $("out-size").textContent = `${msg.width}×${msg.height}`;
    break;
  case "status":
    if (msg.state === "queued") {
      state.queued = true;
      setConn("waiting", "wait");
      notice(`Server busy: you are number ${msg.position} in the queue (${msg.queue_length} waiting, ` +
             `${msg.active} of ${msg.max_sessions} sessions streaming). Frames start as soon as a slot frees up.`);
    } else {
      state.queued = false;
      setConn("streaming", "on");
      notice("");
      sendConfig();
    }
    break;
  case "stats":
    $("server-fps").textContent = msg.fps.toFixed(1);
    $("denoise-ms").textContent = msg.denoise_ms.toFixed(0);
    $("frames-in").textContent = msg.frames_in;
    $("frames-out").textContent = msg.frames_out;
    $("dropped").textContent = msg.dropped_in + msg.dropped_out;
    $("skipped").textContent = msg.skipped;
    break;
  case "error":
    window.sdstream.errors.push(msg);
    notice(`${msg.code}: ${msg.message}`, "error");
    setTimeout(() => { if ($("notice").textContent.startsWith(msg.code)) notice(""); }, 4000);
    break;
  }
}

function onFrame(buf) {
  const view = new DataView(buf);
  const id = view.getUint32(0, true);
  const now = performance.now();
  const sent = state.sentAt.get(id);
  if (sent !== undefined) {
    state.latencies.push(now - sent);
    if (state.latencies.length > 20) state.latencies.shift();
    const sorted = [...state.latencies].sort((a, b) => a - b);
    $("latency").textContent = sorted[sorted.length >> 1].toFixed(0);
  }
  for (const k of [...state.sentAt.keys()]) if (k <= id) state.sentAt.delete(k);  // older ones were dropped
  state.outputTimes.push(now);
  while (state.outputTimes.length && now - state.outputTimes[0] > 2000) state.outputTimes.shift();
  const span = (now - state.outputTimes[0]) / 1000;
  $("fps").textContent = state.outputTimes.length > 1 && span > 0 ? ((state.outputTimes.length - 1) / span).toFixed(1) : "–";
  const jpeg = new Uint8Array(buf, 8);
  window.sdstream.framesOut++;
  window.sdstream.lastFrame = jpeg;
  const url = URL.createObjectURL(new Blob([jpeg], { type: "image/jpeg" }));
  $("output").src = url;
  $("output").hidden = false;
  $("placeholder").hidden = true;
  if (state.lastUrl) URL.revokeObjectURL(state.lastUrl);
  state.lastUrl = url;
  if (mode() === "txt2img") {
    state.t2iPending = false;
    if ($("continuous").checked) requestTxt2img();
  }
}

// ---- settings ----

function mode() { return document.querySelector("input[name=mode]:checked").value; }

function tIndexList() {
  if (document.querySelector("input[name=steps-mode]:checked").value === "strength") {
    const s = parseFloat($("strength").value);
    return [Math.min(49, Math.round((1 - s) * 50))];
  }
  return $("t-index-list").value.split(",").map((x) => parseInt(x.trim(), 10)).filter((x) => !Number.isNaN(x));
}

function resolution() { return $("resolution").value.split("x").map(Number); }

function currentConfig() {
  const [w, h] = resolution();
  return {
    type: "config", mode: mode(), prompt: $("prompt").value, negative_prompt: $("negative").value,
    t_index_list: tIndexList(), guidance: parseFloat($("guidance").value), delta: parseFloat($("delta").value),
    cfg_type: $("cfg-type").value, seed: Math.max(0, parseInt($("seed").value, 10) || 0),
    similar_threshold: $("filter").checked ? parseFloat($("threshold").value) : 0, width: w, height: h,
  };
}

function fillControls(c) {
  $("prompt").value = c.prompt;
  $("negative").value = c.negative_prompt;
  $("cfg-type").value = c.cfg_type;
  $("guidance").value = c.guidance;
  $("delta").value = c.delta;
  $("seed").value = c.seed;
  $("filter").checked = c.similar_threshold > 0;
  if (c.similar_threshold > 0) $("threshold").value = c.similar_threshold;
  if (c.t_index_list.length === 1) {
    $("strength").value = (1 - c.t_index_list[0] / 50).toFixed(2);
  } else {
    document.querySelector("input[name=steps-mode][value=list]").checked = true;
  }
  $("t-index-list").value = c.t_index_list.join(",");
  const sizes = [256, 384, 512, 640, 768, 1024].filter((s) => s <= state.maxSize);
  const options = new Set(sizes.map((s) => `${s}x${s}`).concat([`${c.width}x${c.height}`]));
  $("resolution").innerHTML = "";
  for (const o of options) $("resolution").add(new Option(o.replace("x", " × "), o));
  $("resolution").value = `${c.width}x${c.height}`;
  refreshLabels();
}

function refreshLabels() {
  $("strength-val").textContent = parseFloat($("strength").value).toFixed(2);
  $("guidance-val").textContent = parseFloat($("guidance").value).toFixed(1);
  $("delta-val").textContent = parseFloat($("delta").value).toFixed(2);
  $("threshold-val").textContent = parseFloat($("threshold").value).toFixed(3);
  const list = document.querySelector("input[name=steps-mode]:checked").value === "list";
  $("strength-field").hidden = list;
  $("list-field").hidden = !list;
  const t2i = mode() === "txt2img";
  $("t2i-row").hidden = !t2i;
  $("sources").hidden = t2i;
  $("placeholder").textContent = t2i ? "Type a prompt: images appear as you type." :
    "Generated frames appear here: pick a camera, the screen or a file.";
  $("input-pane").style.opacity = t2i ? 0.35 : 1;
}

function sendConfig() {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || !state.config) return;
  const c = currentConfig();
  const changedShape = c.width !== state.config.width || c.height !== state.config.height ||
                       c.t_index_list.length !== state.config.t_index_list.length || c.mode !== state.config.mode;
  state.ws.send(JSON.stringify(c));
  state.config = Object.assign({}, state.config, c);
  if (changedShape) state.sentAt.clear();  // a new stream: frames in flight will not come back
  if (c.mode === "txt2img") requestTxt2img();
}

function configChanged() {
  refreshLabels();
  clearTimeout(state.configTimer);
  state.configTimer = setTimeout(sendConfig, 150);  // debounce typing and slider drags
}

function requestTxt2img() {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || state.queued) return;
  const id = state.nextId++;
  state.sentAt.set(id, performance.now());
  state.ws.send(JSON.stringify({ type: "txt2img", id }));
  state.t2iPending = true;
}

// ---- sources and the frame loop ----

function stopSource() {
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  state.source = null;
  $("video").srcObject = null;
  $("video").removeAttribute("src");
  $("still").hidden = true;
  $("video").hidden = false;
  $("source-name").textContent = "no source";
  document.querySelectorAll(".sources .active").forEach((b) => b.classList.remove("active"));
}

async function useMedia(getter, name, button) {
  try {
    const stream = await getter();
    stopSource();
    state.stream = stream;
    $("video").srcObject = stream;
    await $("video").play();
    state.source = $("video");
    $("source-name").textContent = name;
    button.classList.add("active");
  } catch (e) {
    notice(`${name}: ${e.message}`, "error");
  }
}

function useFile(file) {
  stopSource();
  const url = URL.createObjectURL(file);
  if (file.type.startsWith("video/")) {
    const v = $("video");
    v.src = url;
    v.loop = true;
    v.play();
    state.source = v;
  } else {
    const img = $("still");
    img.src = url;
    img.hidden = false;
    $("video").hidden = true;
    state.source = img;
  }
  $("source-name").textContent = file.name;
}

// Draws the source into a width x height canvas, covering it and cropping the centre (as the CLI).
function grab() {
  const src = state.source;
  const sw = src.videoWidth || src.naturalWidth, sh = src.videoHeight || src.naturalHeight;
  if (!sw || !sh) return null;
  const [w, h] = resolution();
  const canvas = $("grab");
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const scale = Math.max(w / sw, h / sh);
  const cw = w / scale, ch = h / scale;
  canvas.getContext("2d").drawImage(src, (sw - cw) / 2, (sh - ch) / 2, cw, ch, 0, 0, w, h);
  return canvas;
}

function inFlightLimit() { return (state.config ? state.config.t_index_list.length : 1) + 1; }

function sendFrame() {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || state.queued || !state.source || mode() !== "img2img") return;
  const now = performance.now();
  for (const [k, t] of state.sentAt) if (now - t > 5000) state.sentAt.delete(k);  // lost: do not stall
  if (state.sentAt.size >= inFlightLimit() || ws.bufferedAmount > 1 << 20) return;
  const canvas = grab();
  if (!canvas) return;
  const id = state.nextId++;
  state.sentAt.set(id, now);
  canvas.toBlob(async (blob) => {
    if (!blob || ws.readyState !== WebSocket.OPEN) return;
    const jpeg = new Uint8Array(await blob.arrayBuffer());
    const msg = new Uint8Array(8 + jpeg.length);
    new DataView(msg.buffer).setUint32(0, id, true);  // flags (bytes 4..7) stay 0
    msg.set(jpeg, 8);
    ws.send(msg);
  }, "image/jpeg", 0.85);
}

function init() {
  for (const id of ["prompt", "negative", "t-index-list", "guidance", "delta", "cfg-type", "seed", "filter",
                    "threshold", "resolution", "strength"])
    $(id).addEventListener("input", configChanged);
  document.querySelectorAll("input[name=mode], input[name=steps-mode]").forEach((r) => r.addEventListener("change", configChanged));
  $("btn-camera").onclick = () => useMedia(() => navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } }), "camera", $("btn-camera"));
  $("btn-screen").onclick = () => useMedia(() => navigator.mediaDevices.getDisplayMedia({ video: true }), "screen", $("btn-screen"));
  $("file").onchange = (e) => e.target.files[0] && useFile(e.target.files[0]);
  $("btn-stop").onclick = stopSource;
  $("btn-generate").onclick = requestTxt2img;
  $("continuous").onchange = () => $("continuous").checked && !state.t2iPending && requestTxt2img();
  $("btn-seed").onclick = () => { $("seed").value = Math.floor(Math.random() * 1e9); configChanged(); };
  state.sendTimer = setInterval(sendFrame, 1000 / 30);
  refreshLabels();
  connect();
}

init();
