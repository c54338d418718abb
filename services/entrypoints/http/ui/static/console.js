// Live pages: server-sent events through an EventSource, which cannot send a key. The
// page asks the console for a short-lived stream token (POST /ui/stream-token, which asks
// POST /v0/stream-tokens with the session's key) and passes it as ?access_token=. A token
// expires; a stream cut before its `end` is opened again with a fresh one, after the last
// event id seen where the stream takes one.
//
// - An execution's page (#live): GET /api/v1/executions/{id}/events; each event shows in
//   the event list and sets the status, and reloads the timeline (#detail).
// - A pipeline's page ([data-stream]): GET /v0/watch/pipelines/{name}; each event reloads
//   the status and its history (the element named by data-refresh).
(function () {
  "use strict";

  async function streamToken(ui) {
    // HX-Request: the console takes POSTs from its pages only (session.py).
    const answer = await fetch(ui + "/stream-token", {
      method: "POST", headers: { "HX-Request": "true" }, credentials: "same-origin",
    });
    if (!answer.ok) { throw new Error("stream token refused: HTTP " + answer.status); }
    return (await answer.json()).token;
  }

  function badge(element, word, tone) {
    if (!element) { return; }
    element.textContent = word;
    element.className = "badge tone-" + tone;
  }

  // Reloads `selector` (an htmx element with a `refresh` trigger) at most twice a second,
  // however many events come.
  function reloader(selector) {
    let pending = null;
    return function () {
      if (pending !== null || !window.htmx) { return; }
      pending = setTimeout(function () { pending = null; window.htmx.trigger(selector, "refresh"); }, 500);
    };
  }

  // Opens `path` (an API stream) and keeps it open until its `end` says it is over.
  // `names`: the event names to listen to; `onEvent(name, event, data)`; `onEnd(data)`
  // returns true when the stream should be opened again (a timeout).
  function stream(ui, path, names, state, onEvent, onEnd) {
    let lastId = null;
    let ended = false;
    let failures = 0;
    async function open() {
      let token;
      try { token = await streamToken(ui); } catch (error) { badge(state, "token refused", "bad"); return; }
      let url = path + "?access_token=" + encodeURIComponent(token);
      if (lastId !== null) { url += "&last_event_id=" + encodeURIComponent(lastId); }
      const source = new EventSource(url);
      source.onopen = function () { failures = 0; badge(state, "live", "good"); };
      names.forEach(function (name) {
        source.addEventListener(name, function (event) {
          lastId = event.lastEventId || lastId;
          onEvent(name, event, JSON.parse(event.data));
        });
      });
      source.addEventListener("end", function (event) {
        source.close();
        const again = onEnd(JSON.parse(event.data));
        if (again) { setTimeout(open, 100); } else { ended = true; }
      });
      source.onerror = function () {
        source.close();
        if (ended) { return; }
        failures += 1;
        badge(state, "reconnecting", "wait");
        setTimeout(open, Math.min(1000 * failures, 10000));
      };
    }
    open();
  }

  function followExecution(ui, live) {
    const status = document.getElementById("live-status");
    const state = document.getElementById("live-state");
    const list = document.getElementById("live-events");
    const refresh = reloader("#detail");
    const tones = { completed: "good", failed: "bad", cancelled: "muted", interrupted: "muted" };
    function setStatus(word) { badge(status, word, tones[word] || "busy"); }
    function note(text) {
      const item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
      list.scrollTop = list.scrollHeight;
    }
    const names = ["created", "status", "stage_started", "stage_progressed", "stage_finished", "deleted"];
    const path = "/api/v1/executions/" + encodeURIComponent(live.dataset.executionId) + "/events";
    stream(ui, path, names, state, function (name, event, data) {
      const execution = data.execution || {};
      if (execution.status) { setStatus(execution.status); }
      let text = "#" + event.lastEventId + " " + name;
      const stage = data.stage;
      if (stage) {
        text += " " + stage.stage + ": " + stage.status + " in " + stage.messages_in +
          " out " + stage.messages_out + " failed " + stage.messages_failed;
      } else if (execution.status) {
        text += ": " + execution.status;
      }
      note(text);
      refresh();
    }, function (data) {
      if (data.status) { setStatus(String(data.status)); }
      badge(state, "ended (" + data.reason + ")", data.reason === "timeout" ? "wait" : "muted");
      note("end: " + data.reason + (data.status ? " (" + data.status + ")" : ""));
      // The read model may apply the last events a moment after the stream sent them.
      [0, 1500, 3500].forEach(function (ms) { setTimeout(refresh, ms); });
      return false;
    });
  }

  function followPipeline(ui, watched) {
    const refresh = reloader(watched.dataset.refresh);
    const state = watched.querySelector(".stream-state");
    stream(ui, watched.dataset.stream, ["status", "deleted"], state, function () {
      refresh();
      setTimeout(refresh, 1500); // the read model a moment behind the event
    }, function (data) {
      refresh();
      return data.reason === "timeout"; // a deleted pipeline's stream is over
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const ui = document.body.dataset.ui;
    const live = document.getElementById("live");
    if (live) { followExecution(ui, live); }
    document.querySelectorAll("[data-stream]").forEach(function (watched) { followPipeline(ui, watched); });
  });
})();
