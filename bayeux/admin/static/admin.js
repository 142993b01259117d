// The admin page: polls its server's JSON API with the token and shows what it answers. Every
// figure is written with textContent (never as HTML) and carries data-metric (its name) and
// data-value (the number), for people's scripts and the tests. The token lives in this tab's
// memory only: never in a cookie, storage, a query string or the address bar.
"use strict";

const BASE = document.querySelector('meta[name="bayeux-admin-base"]').content;
const SERIES = ["handshakes", "connects", "publishes", "deliveries"];
const HISTORY = 120; // points kept, one a second
const $ = (selector) => document.querySelector(selector);

let token = null;
let running = false;
let timer = null;
let tick = 0;
let sessionsCursor = null; // where the page shown starts (null: the first)
let sessionsNext = null;
const history = [];

// ------------------------------------------------------------------------------- the API

class Refused extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(name, { params = null, body = null } = {}) {
  const headers = { "X-Bayeux-Admin": "1" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let url = `${BASE}/api/${name}`;
  if (params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== "") query.set(key, value);
    }
    if ([...query].length) url += `?${query}`;
  }
  const init = { headers, cache: "no-store", credentials: "same-origin" };
  if (body !== null) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let answer = null;
  try { answer = await response.json(); } catch { answer = null; }
  if (!response.ok) {
    throw new Refused(response.status, (answer && answer.error) || `HTTP ${response.status}`);
  }
  return answer;
}

// ------------------------------------------------------------------------------- figures

function element(tag, text, attributes = {}) {
  const made = document.createElement(tag);
  if (text !== undefined && text !== null) made.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  return made;
}

function shown(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(1);
  return String(value);
}

function setFigure(name, value, scope = document) {
  for (const node of scope.querySelectorAll(`[data-metric="${name}"]`)) {
    node.textContent = shown(value);
    node.dataset.value = value === null || value === undefined ? "" : String(value);
  }
}

function figureCell(name, value, attributes = {}) {
  const cell = element("td", shown(value), { class: "n", "data-metric": name, ...attributes });
  cell.dataset.value = value === null || value === undefined ? "" : String(value);
  return cell;
}

function showOverview(o) {
  setFigure("sessions", o.sessions);
  setFigure("connections", o.connections);
  setFigure("held", o.held);
  setFigure("queued-messages", o.queued_messages);
  setFigure("queued-bytes", o.queued_bytes);
  setFigure("users-online", o.users);
  setFigure("channels", o.channels);
  setFigure("processes", o.deployment.answered);
  const transports = new Set([...o.transports_offered, ...Object.keys(o.transports)]);
  const list = $("#transports");
  list.replaceChildren(...[...transports].map((name) => {
    const item = element("li", `${name} `);
    const figure = element("b", null, { "data-metric": `sessions-${name}` });
    item.append(figure);
    return item;
  }));
  for (const name of transports) setFigure(`sessions-${name}`, o.transports[name] || 0, list);
  for (const name of SERIES) setFigure(`${name}-rate`, o.rates ? o.rates[name] : null);
  if (o.rates) {
    history.push(o.rates);
    if (history.length > HISTORY) history.shift();
    drawChart();
  }
  $("#processes tbody").replaceChildren(...o.processes.map((p) => {
    const row = element("tr", null, { "data-process": p.name });
    const transportsText = Object.entries(p.transports).map(([k, v]) => `${k} ${v}`).join(", ");
    row.append(element("td", p.name), element("td", p.id, { class: "id" }),
      figureCell("process-sessions", p.sessions),
      element("td", transportsText || "–"), figureCell("process-connections", p.connections),
      figureCell("process-publishes-rate", p.rates ? p.rates.publishes : null),
      figureCell("process-deliveries-rate", p.rates ? p.rates.deliveries : null));
    return row;
  }));
  const d = o.deployment;
  const reach = d.reached ? `${d.answered} of ${d.asked} processes` : "this process only (the others cannot be asked)";
  $("#status").textContent = `live · ${o.engine} · ${reach} · ${new Date().toLocaleTimeString()}`;
}

function drawChart() {
  const svg = $("#chart");
  const ns = "http://www.w3.org/2000/svg";
  const width = 720;
  const height = 180;
  const top = Math.max(1, ...history.flatMap((r) => SERIES.map((s) => r[s])));
  // A log scale: deliveries run orders of magnitude above publishes and handshakes.
  const decades = Math.max(1, Math.ceil(Math.log10(top + 1)));
  const y = (value) => height - 14 - (Math.log10(value + 1) / decades) * (height - 24);
  const x = (index) => 36 + (index / (HISTORY - 1)) * (width - 40);
  const parts = [];
  for (let d = 0; d <= decades; d++) {
    const line = document.createElementNS(ns, "line");
    const level = y(10 ** d - 1);
    for (const [name, value] of [["x1", 36], ["x2", width], ["y1", level], ["y2", level]]) line.setAttribute(name, value);
    line.setAttribute("class", "grid");
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 0);
    label.setAttribute("y", level + 3);
    label.textContent = d === 0 ? "0" : (10 ** d).toLocaleString();
    parts.push(line, label);
  }
  const offset = HISTORY - history.length;
  for (const name of SERIES) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", `s-${name}`);
    line.setAttribute("stroke", "currentColor");
    line.setAttribute("points", history.map((r, i) => `${x(offset + i).toFixed(1)},${y(r[name]).toFixed(1)}`).join(" "));
    line.dataset.series = name;
    parts.push(line);
  }
  svg.replaceChildren(...parts);
}

function showChannels(answer) {
  $("#channels tbody").replaceChildren(...answer.channels.map((c) => {
    const row = element("tr", null, { "data-channel": c.channel });
    row.append(element("td", c.channel), figureCell("channel-subscribers", c.subscribers),
      figureCell("channel-rate", c.rate));
    return row;
  }));
}

function showSessions(answer) {
  sessionsNext = answer.next;
  $("#sessions-next").disabled = !answer.next;
  $("#sessions-first").disabled = sessionsCursor === null;
  $("#sessions-note").textContent = `${answer.matched} matching, ${answer.sessions.length} shown`;
  $("#sessions tbody").replaceChildren(...answer.sessions.map((s) => {
    const row = element("tr", null, { "data-client-id": s.clientId, "data-process": s.process });
    const action = element("td");
    if (!s.local) {
      const button = element("button", "Disconnect", { type: "button", class: "danger", "data-action": "disconnect" });
      button.addEventListener("click", () => disconnect(s.clientId, button));
      action.append(button);
    }
    row.append(element("td", s.clientId, { class: "id", title: s.clientId }), element("td", s.process),
      element("td", s.transport), element("td", s.held ? `${s.state}, held` : s.state),
      element("td", s.user || "–"), figureCell("session-queue", s.queue),
      figureCell("session-bytes", s.bytes), figureCell("session-subscriptions", s.subscriptions), action);
    return row;
  }));
}

function showUsers(answer) {
  const names = answer.users.map((name) => element("li", name));
  $("#users").replaceChildren(...(names.length ? names : [element("li", "nobody", { class: "none" })]));
  setFigure("users-online", answer.count);
}

// ------------------------------------------------------------------------------- actions

async function disconnect(clientId, button) {
  if (!window.confirm(`Disconnect ${clientId}? Its client is told to stop.`)) return;
  button.disabled = true;
  try {
    const answer = await api("disconnect", { body: { clientId } });
    $("#action-result").textContent = `${clientId} disconnected${answer.process ? ` (on ${answer.process})` : ""}`;
    $("#action-result").className = "";
    refreshNow();
  } catch (error) {
    $("#action-result").textContent = `not disconnected: ${error.message}`;
    $("#action-result").className = "error";
    button.disabled = false;
    if (error.status === 401) signOut("the token was refused");
  }
}

async function publish(event) {
  event.preventDefault();
  const result = $("#publish-result");
  let data;
  try { data = JSON.parse($("#publish-data").value); } catch {
    result.textContent = "the data must be JSON";
    result.className = "error";
    return;
  }
  try {
    const answer = await api("publish", { body: { channel: $("#publish-channel").value, data } });
    const reached = answer.reached === 1 ? "1 subscriber" : `${answer.reached} subscribers`;
    result.textContent = `published: ${reached} in this process`;
    result.className = "";
  } catch (error) {
    result.textContent = `not published: ${error.message}`;
    result.className = "error";
  }
}

// ------------------------------------------------------------------------------- polling

function sessionParams() {
  return { q: $("#session-search").value, sort: $("#session-sort").value, after: sessionsCursor, limit: 25 };
}

// The lists again now (a search typed, a page turned), their failure shown in the status line.
function refreshNow() {
  refreshLists().catch((error) => { $("#status").textContent = `cannot list: ${error.message}`; });
}

async function refreshLists() {
  const [channels, sessions, users] = await Promise.all([
    api("channels", { params: { q: $("#channel-search").value, sort: $("#channel-sort").value, limit: 15 } }),
    api("sessions", { params: sessionParams() }),
    api("users", { params: { limit: 50 } }),
  ]);
  showChannels(channels);
  showSessions(sessions);
  showUsers(users);
}

async function poll() {
  timer = null;
  if (!running) return;
  try {
    showOverview(await api("overview"));
    if (tick % 2 === 0) await refreshLists();
    tick++;
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      signOut(error.status === 403 ? "not allowed" : "the token was refused");
      return;
    }
    $("#status").textContent = `cannot reach the server (${error.message}): trying again`;
  }
  if (running && !document.hidden) timer = setTimeout(poll, 1000);
}

function restart() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  tick = 0;
  poll();
}

async function signIn(candidate) {
  token = candidate;
  try {
    showOverview(await api("overview"));
  } catch (error) {
    token = null;
    if (error.status === 401 || error.status === 403) {
      signOut(candidate ? "the token was refused" : null);
    } else {
      signOut(`cannot reach the server: ${error.message}`);
    }
    return;
  }
  running = true;
  $("#login").hidden = true;
  $("#main").hidden = false;
  restart();
}

function signOut(reason) {
  running = false;
  token = null;
  if (timer !== null) clearTimeout(timer);
  timer = null;
  $("#main").hidden = true;
  $("#login").hidden = false;
  $("#status").textContent = "signed out";
  const error = $("#login-error");
  error.hidden = !reason;
  error.textContent = reason || "";
  // Nothing of what was shown stays in the page.
  for (const node of document.querySelectorAll("[data-metric]")) { node.textContent = ""; node.dataset.value = ""; }
  for (const body of document.querySelectorAll("tbody, #users, #transports")) body.replaceChildren();
  history.length = 0;
  $("#chart").replaceChildren();
}

function start() {
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = $("#token");
    const candidate = field.value.trim();
    field.value = "";
    if (candidate) signIn(candidate);
  });
  $("#publish-form").addEventListener("submit", publish);
  $("#sessions-next").addEventListener("click", () => { sessionsCursor = sessionsNext; refreshNow(); });
  $("#sessions-first").addEventListener("click", () => { sessionsCursor = null; refreshNow(); });
  for (const id of ["#session-search", "#session-sort"]) {
    $(id).addEventListener("input", () => { sessionsCursor = null; refreshNow(); });
  }
  for (const id of ["#channel-search", "#channel-sort"]) $(id).addEventListener("input", refreshNow);
  document.addEventListener("visibilitychange", () => { if (running && !document.hidden && timer === null) poll(); });
  window.addEventListener("hashchange", () => {
    const given = tokenFromFragment();
    if (given) { signOut(null); signIn(given); }
  });
  // Without a token, the application's own login may let this browser in (embedded).
  signIn(tokenFromFragment());
}

// #token=...: read once, then taken out of the address bar and the history entry.
function tokenFromFragment() {
  if (!location.hash) return null;
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  window.history.replaceState(null, "", location.pathname + location.search);
  return given || null;
}

start();
