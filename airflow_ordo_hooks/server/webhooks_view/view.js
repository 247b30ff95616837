// The Webhooks view: the delivery ledger's deliveries, read from the ledger's API as the user logged in
// to Airflow (the UI's cookie), and a Redeliver button; on its Targets tab, each target's health, each
// linking to its deliveries. Every text from the ledger is set as text, never as HTML: payloads and
// errors come from DAGs and receivers.
"use strict";

const PAGE = 50;
const API = "api/v1/deliveries";
const TARGETS_API = "api/v1/targets";
const FINGERPRINT = /^[0-9a-f]{16}$/;
const BUSY = new Set(["pending", "delivering"]);

const query = new URLSearchParams(location.search);
const given = (name) => {
  const value = query.get(name);
  return value && !value.startsWith("{") ? value : null; // "{TASK_ID}": a field the UI did not fill in
};
const context = {
  dag_id: given("dag_id"),
  run_id: given("run_id"),
  task_id: given("task_id"),
  map_index: /^-?\d+$/.test(given("map_index") || "") ? given("map_index") : null,
};
let offset = 0;
let selected = null;
let watching = null;
let target = FINGERPRINT.test(given("target") || "") ? { fingerprint: given("target"), masked: null } : null;
let tab = given("tab") === "targets" ? "targets" : "deliveries";

const $ = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function say(text, isError) {
  const message = $("message");
  message.textContent = text;
  message.className = isError ? "error" : "";
  message.hidden = !text;
}

async function call(path, options) {
  const answer = await fetch(path, { credentials: "same-origin", ...options });
  if (answer.status === 401) {
    throw new Error("You are not logged in to Airflow (or your session ended): log in, then open this view again.");
  }
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) {
    const detail = body && body.detail;
    throw new Error(typeof detail === "string" ? detail : `${answer.status} ${answer.statusText}`);
  }
  return body;
}

function filters() {
  const params = new URLSearchParams({ limit: PAGE, offset, full: "false" });
  for (const [name, value] of Object.entries(context)) if (value !== null) params.set(name, value);
  const dag = $("filter-dag").value.trim();
  if (!context.dag_id && dag) params.set("dag_id", dag);
  if ($("filter-event").value) params.set("event", $("filter-event").value);
  if ($("filter-failed").checked) params.set("failing", "true");
  if (target) params.set("target", target.fingerprint);
  return params;
}

// The page's address says its tab and target, so that a reload, or a link opened apart, shows the same.
function remember() {
  const address = new URLSearchParams(location.search);
  address.delete("tab");
  address.delete("target");
  if (tab === "targets") address.set("tab", "targets");
  if (target) address.set("target", target.fingerprint);
  history.replaceState(null, "", `?${address}`);
}

function showTarget() {
  $("filter-target").hidden = !target;
  $("filter-target-name").textContent = target ? [target.masked, target.fingerprint].filter(Boolean).join(" ") : "";
}

function status(delivery) {
  const code = delivery.last_status_code ? ` (HTTP ${delivery.last_status_code})` : "";
  return delivery.state + code;
}

function row(delivery) {
  const tr = element("tr");
  tr.dataset.webhookId = delivery.webhook_id;
  tr.dataset.state = delivery.state;
  const task = delivery.task_id
    ? delivery.task_id + (delivery.map_index >= 0 ? `[${delivery.map_index}]` : "") + (delivery.try_number ? ` try ${delivery.try_number}` : "")
    : "(the run)";
  const cells = [
    element("td", when(delivery.created_at)),
    element("td", delivery.event),
    element("td", context.dag_id ? task : `${delivery.dag_id} / ${delivery.run_id} / ${task}`),
    element("td", delivery.action),
    element("td", delivery.target_masked, "target"),
    element("td", delivery.webhook_id, "id"),
    element("td", status(delivery), `state state-${delivery.state}`),
    element("td", delivery.attempt_count),
    element("td", delivery.latency_ms === null ? "" : `${delivery.latency_ms} ms`),
    element("td", BUSY.has(delivery.state) ? when(delivery.next_attempt_at) : ""),
  ];
  if (delivery.last_error) cells[6].title = delivery.last_error;
  const button = element("button", "Redeliver");
  button.type = "button";
  button.className = "redeliver";
  button.disabled = delivery.state === "delivering";
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    redeliver(delivery.webhook_id);
  });
  const last = element("td");
  last.append(button);
  tr.append(...cells, last);
  tr.addEventListener("click", () => show(delivery.webhook_id));
  if (delivery.webhook_id === selected) tr.classList.add("selected");
  return tr;
}

async function load() {
  let page;
  try {
    page = await call(`${API}?${filters()}`);
  } catch (error) {
    say(error.message, true);
    return null;
  }
  const body = $("deliveries").tBodies[0];
  body.replaceChildren(...page.deliveries.map(row));
  $("empty").hidden = page.deliveries.length > 0;
  const last = Math.min(offset + page.deliveries.length, page.total_entries);
  $("range").textContent = page.total_entries ? `${offset + 1}–${last} of ${page.total_entries}` : "";
  $("previous").disabled = offset === 0;
  $("next").disabled = last >= page.total_entries;
  if (selected) await show(selected, true);
  return page;
}

async function show(webhookId, quietly) {
  let delivery;
  try {
    delivery = await call(`${API}/${encodeURIComponent(webhookId)}`);
  } catch (error) {
    if (!quietly) say(error.message, true);
    return;
  }
  selected = webhookId;
  for (const tr of $("deliveries").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.webhookId === webhookId);
  $("detail").hidden = false;
  $("detail-id").textContent = delivery.webhook_id;
  const fields = [
    ["DAG", delivery.dag_id], ["Run", delivery.run_id], ["Task", delivery.task_id ?? "(the run)"],
    ["Event", delivery.event], ["Action", delivery.action], ["Target", delivery.target_masked],
    ["State", status(delivery)], ["Source", delivery.source], ["Recorded", when(delivery.created_at)],
    ["Next retry", BUSY.has(delivery.state) ? when(delivery.next_attempt_at) : ""], ["Last error", delivery.last_error ?? ""],
  ];
  $("detail-fields").replaceChildren(...fields.flatMap(([name, value]) => [element("dt", name), element("dd", value)]));
  $("detail-attempts").tBodies[0].replaceChildren(...delivery.attempts.map((attempt) => {
    const tr = element("tr");
    tr.append(
      element("td", attempt.number), element("td", when(attempt.at)), element("td", attempt.by),
      element("td", attempt.status_code ?? ""), element("td", `${attempt.elapsed_ms} ms`), element("td", attempt.error ?? ""),
    );
    return tr;
  }));
  $("detail-payload").textContent = delivery.payload_hidden
    ? "(hidden: the payload holds the task's log, and you may not read this DAG's task logs)"
    : JSON.stringify(delivery.payload, null, 2);
}

// After a redelivery is asked for, look again every second until none of the page is on its way (at most a minute).
function watch() {
  clearInterval(watching);
  const until = Date.now() + 60000;
  watching = setInterval(async () => {
    const page = await load();
    const busy = page && page.deliveries.some((d) => BUSY.has(d.state) && Date.parse(d.next_attempt_at) <= Date.now() + 2000);
    if (!busy || Date.now() > until) clearInterval(watching);
  }, 1000);
}

async function redeliver(webhookId) {
  try {
    await call(`${API}/${encodeURIComponent(webhookId)}/redeliver`, {
      method: "POST",
      headers: { "Content-Type": "application/json" }, // the API takes JSON only: no cross-site form can post it
      body: "{}",
    });
  } catch (error) {
    say(error.message, true);
    return;
  }
  say(`Redelivery of ${webhookId} asked for: the API server sends it again, with the same webhook-id.`);
  selected = webhookId;
  await load();
  watch();
}

async function redeliverRun() {
  let answer;
  try {
    answer = await call(`${API}/redeliver`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ dag_id: context.dag_id, run_id: context.run_id }),
    });
  } catch (error) {
    say(error.message, true);
    return;
  }
  say(answer.redelivered.length ? `Redelivery of ${answer.redelivered.length} failing delivery(ies) asked for.` : "This run has no failing delivery.");
  await load();
  watch();
}

function percent(rate) {
  return `${Math.round(rate * 100)}%`;
}

// A link to the target's deliveries: the Deliveries tab, filtered to its fingerprint.
function targetLink(health) {
  const address = new URLSearchParams(location.search);
  address.delete("tab");
  address.set("target", health.target_fingerprint);
  const link = element("a", health.target_masked);
  link.href = `?${address}`;
  link.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return; // a new tab or window
    event.preventDefault();
    target = { fingerprint: health.target_fingerprint, masked: health.target_masked };
    offset = 0;
    showTarget();
    showTab("deliveries");
  });
  return link;
}

function targetRow(health) {
  const tr = element("tr");
  tr.dataset.fingerprint = health.target_fingerprint || "";
  tr.dataset.failing = String(health.failing);
  const name = element("td", null, "target");
  name.append(health.target_fingerprint ? targetLink(health) : element("span", health.target_masked));
  name.append(element("div", health.target_fingerprint || "(no fingerprint: recorded before the ledger kept them)", "fingerprint"));
  const more = health.dag_count - health.dag_ids.length;
  const now = health.failing ? "failing" : health.last_success_at ? "working" : "";
  const failure = element("td", when(health.last_failure_at), "last-failure");
  if (health.last_error) failure.append(element("div", health.last_error, "error"));
  const rate = health.attempts_24h ? `${health.failed_24h}/${health.attempts_24h} (${percent(health.failure_rate_24h)})` : "no attempt";
  tr.append(
    name,
    element("td", health.dag_ids.join(", ") + (more > 0 ? ` and ${more} more` : ""), "dags"),
    element("td", now, `state ${health.failing ? "state-failed" : "state-delivered"}`),
    element("td", when(health.last_success_at), "last-success"),
    failure,
    element("td", rate, "rate"),
    element("td", health.pending, "pending"),
  );
  return tr;
}

async function loadTargets() {
  const params = new URLSearchParams();
  if (context.dag_id) params.set("dag_id", context.dag_id);
  let answer;
  try {
    answer = await call(`${TARGETS_API}?${params}`);
  } catch (error) {
    say(error.message, true);
    return;
  }
  $("targets").tBodies[0].replaceChildren(...answer.targets.map(targetRow));
  $("targets-empty").hidden = answer.targets.length > 0;
  $("targets-more").hidden = answer.total_entries <= answer.targets.length;
  $("targets-more").textContent = `The ${answer.targets.length} worst of ${answer.total_entries} targets.`;
}

function showTab(name) {
  tab = name;
  for (const each of ["deliveries", "targets"]) {
    $(`tab-${each}`).setAttribute("aria-selected", String(each === name));
    $(`${each}-page`).hidden = each !== name;
  }
  remember();
  say("");
  if (name === "targets") loadTargets();
  else load();
}

function start() {
  const scope = [["DAG", context.dag_id], ["run", context.run_id], ["task", context.task_id]]
    .filter(([, value]) => value).map(([name, value]) => `${name} ${value}`).join(" · ");
  $("scope").textContent = scope;
  if (context.dag_id) {
    $("filter-dag").value = context.dag_id;
    $("filter-dag").disabled = true;
  }
  $("redeliver-run").hidden = !(context.dag_id && context.run_id);
  $("redeliver-run").addEventListener("click", redeliverRun);
  const reload = () => { offset = 0; say(""); load(); };
  $("filters").addEventListener("change", reload);
  $("filter-dag").addEventListener("keydown", (event) => { if (event.key === "Enter") reload(); });
  $("refresh").addEventListener("click", () => { say(""); load(); });
  $("previous").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  $("next").addEventListener("click", () => { offset += PAGE; load(); });
  $("clear-target").addEventListener("click", () => { target = null; showTarget(); remember(); reload(); });
  $("tab-deliveries").addEventListener("click", () => showTab("deliveries"));
  $("tab-targets").addEventListener("click", () => showTab("targets"));
  $("refresh-targets").addEventListener("click", () => { say(""); loadTargets(); });
  showTarget();
  showTab(tab);
}

start();
