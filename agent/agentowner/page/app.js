// The owner's local page: it polls the agent's status and history and
// sends the owner's commands. Every text from the agent (an engineer's
// email, reasons) is set with textContent, never as HTML.
"use strict";

const token = document.querySelector('meta[name="porthole-token"]').content;

async function api(method, path, body) {
  const opts = { method, headers: { "X-Porthole-Token": token } };
  if (method !== "GET") {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body || {});
  }
  const resp = await fetch("/api/v1/" + path, opts);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    throw new Error(data.error || resp.statusText);
  }
  return data;
}

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function showError(err) {
  const e = $("error");
  if (err) {
    e.textContent = String(err.message || err);
    e.hidden = false;
  } else {
    e.hidden = true;
  }
}

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function left(t) {
  let s = Math.max(0, Math.round((new Date(t) - Date.now()) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  s = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
}

const modeWords = {
  manual: "support code",
  approve: "you approve each session",
  auto: "automatic: the operator's fleet",
};

function render(st) {
  $("device").textContent = st.device + " (fleet " + st.fleet + ")";
  $("mode").textContent = modeWords[st.mode] || st.mode;
  document.body.dataset.mode = st.mode;

  // The window, or the form to open one.
  const w = st.window;
  $("request-card").hidden = !!w;
  $("window-card").hidden = !w;
  if (st.mode !== "manual") {
    $("request-help").textContent = st.mode === "approve"
      ? "Tells the support team you need help. No code is needed: you approve each engineer's session here."
      : "Tells the support team you need help.";
  }
  if (w) {
    $("code-box").hidden = !w.code;
    $("code").textContent = w.code || "";
    $("window-ends").textContent = "Open until " + clock(w.ends) + " (" + left(w.ends) + " left)" +
      (w.wrong_codes ? ", " + w.wrong_codes + " wrong code" + (w.wrong_codes > 1 ? "s" : "") + " tried" : "") + ".";
    $("window-server").textContent = w.request_id
      ? "The support team has your request (" + w.request_id + ")."
      : (w.server_error ? "The server could not be told yet: " + w.server_error : "Telling the support team…");
  }

  // Sessions waiting for the owner.
  const pending = $("pending");
  pending.replaceChildren();
  $("pending-card").hidden = st.pending.length === 0;
  for (const a of st.pending) {
    const li = el("li");
    li.dataset.session = a.session;
    const who = el("p", "", "who");
    who.append(el("strong", a.user || "An engineer"), " of fleet " + a.fleet + " asks to connect");
    li.append(who);
    li.append(el("p", a.reason ? "“" + a.reason + "”" : "No reason given.", "reason"));
    if (a.server_error) li.append(el("p", "The server could not say who asks: " + a.server_error, "muted"));
    li.append(el("p", "Denied by itself in " + left(a.deadline) + ".", "muted"));
    const yes = el("button", "Approve", "primary approve");
    yes.type = "button";
    yes.onclick = () => act("approve", { session: a.session });
    const no = el("button", "Deny", "deny");
    no.type = "button";
    no.onclick = () => act("deny", { session: a.session });
    const buttons = el("div", undefined, "buttons");
    buttons.append(yes, no);
    li.append(buttons);
    pending.append(li);
  }

  // Sessions admitted.
  const sessions = $("sessions");
  sessions.replaceChildren();
  const shown = st.sessions.filter((s) => s.state !== "waiting_for_owner");
  $("no-sessions").hidden = shown.length > 0;
  for (const s of shown) {
    const li = el("li");
    li.dataset.session = s.id;
    if (s.user && s.connections > 0) {
      const p = el("p", "", "who");
      p.append(el("strong", s.user), " connected since " + clock(s.connected_since));
      li.append(p);
    } else if (s.state === "open") {
      li.append(el("p", "Session open since " + clock(s.since) + "; no engineer connected right now.", "who"));
    } else {
      li.append(el("p", "An engineer's session is connecting…", "who"));
    }
    li.append(el("p", s.id, "muted mono"));
    sessions.append(li);
  }
}

const eventWords = {
  support_window_opened: "Support window opened",
  support_window_closed: "Support window closed",
  support_code_accepted: "Support code accepted",
  support_code_wrong: "Wrong support code",
  session_refused: "Session refused",
  session_admitted: "Session let in",
  approval_asked: "Approval asked",
  session_approved: "Session approved",
  session_denied: "Session denied",
  owner_revoked: "You ended access",
  command_accepted: "Command from the server",
  command_rejected: "Command refused",
  engineer_connected: "Engineer connected",
  engineer_disconnected: "Engineer disconnected",
  session_ended: "Session ended",
};

function renderHistory(events) {
  const body = $("history").tBodies[0];
  body.replaceChildren();
  for (const ev of events.slice().reverse()) {
    const tr = el("tr");
    tr.append(el("td", new Date(ev.time).toLocaleString()));
    tr.append(el("td", eventWords[ev.event] || ev.event));
    tr.append(el("td", ev.session || "", "mono"));
    const details = [ev.type, ev.user, ev.reason, ev.detail].filter(Boolean).join("; ");
    tr.append(el("td", details));
    body.append(tr);
  }
}

let lastStatus = "";

async function refresh() {
  try {
    const st = await api("GET", "status");
    render(st);
    showError(null);
    // Something happened: the history has it.
    const now = JSON.stringify(st);
    if (now !== lastStatus) {
      lastStatus = now;
      refreshHistory();
    }
  } catch (err) {
    showError("The agent does not answer: " + err.message);
  }
}

async function refreshHistory() {
  try {
    renderHistory(await api("GET", "history?n=30"));
  } catch (err) {
    // The status line says when the agent is away.
  }
}

async function act(what, body) {
  try {
    await api("POST", what, body);
    showError(null);
  } catch (err) {
    showError(err);
  }
  await refresh();
  await refreshHistory();
}

$("request-form").addEventListener("submit", (e) => {
  e.preventDefault();
  act("request", { reason: $("reason").value, for_s: Number($("duration").value) });
});

$("revoke").addEventListener("click", () => act("revoke"));

refresh();
refreshHistory();
setInterval(refresh, 1000);
setInterval(refreshHistory, 3000);
