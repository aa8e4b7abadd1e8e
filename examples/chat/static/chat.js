"use strict";
// The bocws chat page: join a room, talk, see who is here, and ride out dropped
// connections. Plain DOM code with no build step. User text only ever reaches the
// page through textContent, never as HTML, so one user cannot inject markup into
// another's page.
(() => {
  const SUBPROTOCOL = "bocws-chat.v1";
  const FIRST_DELAY = 500; // ms before the first reconnection attempt; then it doubles
  const MAX_DELAY = 10000; // ms, the longest wait between two attempts
  // After these, trying again would fail the same way: the user has to act first.
  const FINAL_CODES = new Set([1000, 1003, 1007, 1008]);
  const MEANINGS = {
    1000: "normal closure",
    1001: "going away",
    1005: "no code",
    1006: "connection lost",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1011: "server error",
    1012: "server restarting",
    1013: "try again later",
  };

  const $ = (id) => document.getElementById(id);
  let socket = null; // the open or opening WebSocket, or null
  let room = "";
  let name = "";
  let attempt = 0; // connections that failed in a row
  // Resuming: the id of the last event of each room's channel this page got; a page
  // that reconnects asks for what came after it (`?since=`).
  const lastIds = new Map();
  // Messages sent and not yet acknowledged, by client id, in the order typed: sent
  // again after reconnecting, and every RESEND_AFTER ms while connected (the server
  // may have been cut off from the others), until the server acknowledges them.
  const RESEND_AFTER = 3000;
  let pending = new Map(); // cid -> { text, sent: ms }
  // Messages shown, by sender and client id: one sent twice is shown once.
  let shown = new Set();
  let retryTimer = 0;
  let countdownTimer = 0;
  let unread = 0;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // text, never HTML
    return node;
  }

  function setState(state, text) {
    $("state").dataset.state = state;
    $("state-text").textContent = text;
    $("retry").hidden = state !== "waiting";
  }

  function describe(event) {
    const meaning = MEANINGS[event.code] || (event.code >= 4000 && event.code < 5000 ? "application" : "");
    const head = meaning ? `${event.code} ${meaning}` : String(event.code);
    return event.reason ? `${head}: ${event.reason}` : head;
  }

  function append(item) {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    list.append(item);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function notice(text, kind) {
    append(element("li", kind ? `notice ${kind}` : "notice", text));
  }

  function showMessage(message) {
    if (typeof message.cid === "string") {
      const key = `${message.user}\u0000${message.cid}`;
      if (shown.has(key)) return; // sent twice: shown once
      if (shown.size >= 10000) shown = new Set();
      shown.add(key);
    }
    const item = element("li", message.user === name ? "message own" : "message");
    const sent = new Date(message.time);
    const stamp = element("time", "", sent.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    stamp.dateTime = sent.toISOString();
    item.append(stamp, element("strong", "user", message.user), element("span", "text", message.text));
    append(item);
    if (document.hidden) {
      unread += 1;
      document.title = `(${unread}) bocws chat`;
    }
  }

  function showMembers(members) {
    const items = [];
    let marked = false;
    for (const member of members) {
      const item = element("li", "", member);
      if (!marked && member === name) {
        item.append(element("span", "you", " (you)"));
        marked = true;
      }
      items.push(item);
    }
    $("members").replaceChildren(...items);
    $("member-count").textContent = String(members.length);
  }

  function setComposer(enabled) {
    for (const control of $("composer").elements) control.disabled = !enabled;
  }

  function stopRetrying() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
  }

  function connect() {
    stopRetrying();
    const url = new URL(`chat/${encodeURIComponent(room)}`, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const query = { name };
    if (lastIds.has(room)) query.since = lastIds.get(room);
    url.search = new URLSearchParams(query).toString();
    url.hash = "";
    const ws = new WebSocket(url, [SUBPROTOCOL]);
    socket = ws;
    let joined = false; // the first event on a socket is its own "join"
    const resumed = lastIds.has(room);
    const again = attempt > 0;
    setState(again ? "reconnecting" : "connecting", `${again ? "reconnecting" : "connecting"} to #${room}…`);
    ws.onopen = () => {
      if (socket === ws) setState(again ? "reconnecting" : "connecting", `joining #${room}…`);
    };
    ws.onmessage = (event) => {
      if (socket !== ws) return;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return; // not part of the protocol: ignore it
      }
      // The resume point: from the room's events only (an acknowledgement may come
      // before the message it acknowledges), forward only, and not from this socket's
      // own join when it resumed (the messages it missed come after it, older).
      if (ROOM_EVENTS.has(data.type) && (joined || !resumed)) advance(room, data.id);
      if (data.type === "message") {
        showMessage(data);
      } else if (data.type === "ack") {
        pending.delete(data.cid); // the server has it: never sent again
        showPending();
      } else if (data.type === "members") {
        showMembers(data.members); // another server's members, learned later
      } else if (data.type === "error") {
        notice(data.text, "bad");
      } else if (data.type === "join" || data.type === "leave") {
        showMembers(data.members);
        if (joined) notice(`${data.user} ${data.type === "join" ? "joined" : "left"}.`);
        else welcomed(again);
        joined = true;
      }
    };
    ws.onclose = (event) => {
      if (socket === ws) closed(event);
    };
  }

  // In the room at last. Only now does the connection count as working, so that a
  // server that accepts and then fails at once gets ever longer waits, not a storm.
  function welcomed(again) {
    notice(again ? "Reconnected." : `You joined #${room} as ${name}.`, again ? "good" : "");
    attempt = 0;
    setState("connected", `connected to #${room}`);
    setComposer(true);
    $("text").focus();
    // What was typed while the connection was going: sent again, in order.
    resend(0);
  }

  // Send again what waits for an acknowledgement since over `age` ms.
  function resend(age) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    for (const [cid, message] of pending) {
      if (now - message.sent < age) continue;
      message.sent = now;
      socket.send(JSON.stringify({ text: message.text, cid }));
    }
  }

  setInterval(() => {
    if ($("state").dataset.state === "connected") resend(RESEND_AFTER);
  }, 1000);

  const ROOM_EVENTS = new Set(["message", "join", "leave"]);

  // "1733367600000-3" as a pair of numbers, to compare ids (BigInt: over 2^53).
  function idOrder(id) {
    const [ms, seq] = id.split("-");
    return [BigInt(ms), BigInt(seq || "0")];
  }

  function advance(roomName, id) {
    if (typeof id !== "string" || !/^\d+-\d+$/.test(id)) return;
    const last = lastIds.get(roomName);
    if (last !== undefined) {
      const [a, b] = [idOrder(id), idOrder(last)];
      if (a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1])) return;
    }
    lastIds.set(roomName, id);
  }

  function showPending() {
    $("pending").hidden = pending.size === 0;
    $("pending").textContent = pending.size === 1 ? "1 message not delivered yet" : `${pending.size} messages not delivered yet`;
  }

  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID(); // secure contexts
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  }

  function closed(event) {
    socket = null;
    setComposer(false);
    const what = describe(event);
    if (FINAL_CODES.has(event.code) || (event.code >= 4000 && event.code < 5000)) {
      attempt = 0; // nothing to retry: only the user joins again
      setState("closed", `disconnected (${what})`);
      notice(`Disconnected: ${what}.`, "bad");
      $("join-error").textContent = `The server closed the connection: ${what}.`;
      $("join-error").hidden = false;
      $("join").hidden = false;
      return;
    }
    if (attempt === 0) notice(`Connection closed (${what}). Reconnecting…`, "bad");
    // Exponential backoff with jitter, so that a restarted server is not hit by
    // every page at the same instant.
    const delay = Math.min(MAX_DELAY, FIRST_DELAY * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt += 1;
    const due = Date.now() + delay;
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      setState("waiting", `connection lost (${what}); retrying in ${seconds} s`);
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
    retryTimer = setTimeout(connect, delay);
  }

  function leave() {
    stopRetrying();
    const ws = socket;
    socket = null; // its close event is ours: no reconnecting
    if (ws) ws.close(1000, "left the room");
    setComposer(false);
    room = "";
    setState("idle", "not connected");
  }

  $("join").onsubmit = (event) => {
    event.preventDefault();
    leave();
    room = $("room").value.trim();
    name = $("name").value.trim();
    if (!room || !name) return;
    // The room is a segment of the socket's path: no slashes, and not . or ..
    if (room.includes("/") || room === "." || room === "..") {
      $("join-error").textContent = "A room name cannot contain / or be . or ..";
      $("join-error").hidden = false;
      room = "";
      return;
    }
    $("join-error").hidden = true;
    remember(name);
    history.replaceState(null, "", `#${encodeURIComponent(room)}`);
    attempt = 0;
    lastIds.delete(room); // a room joined afresh starts from now
    pending = new Map();
    shown = new Set();
    showPending();
    $("messages").replaceChildren();
    $("members").replaceChildren();
    $("member-count").textContent = "";
    $("room-title").textContent = room;
    $("join").hidden = true;
    $("chat").hidden = false;
    connect();
  };

  $("leave").onclick = () => {
    leave();
    $("chat").hidden = true;
    $("join").hidden = false;
  };

  $("retry").onclick = () => {
    if (!socket && room) connect();
  };

  $("composer").onsubmit = (event) => {
    event.preventDefault();
    const text = $("text").value;
    if (!text.trim() || !socket || socket.readyState !== WebSocket.OPEN) return;
    const cid = clientId();
    pending.set(cid, { text, sent: Date.now() }); // until acknowledged, even if the connection drops now
    showPending();
    socket.send(JSON.stringify({ text, cid }));
    $("text").value = "";
  };

  // Back online: no need to wait for the next attempt.
  window.addEventListener("online", () => {
    if (!socket && room && attempt > 0) connect();
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      unread = 0;
      document.title = "bocws chat";
    }
  });

  // The browser may refuse storage (private modes, blocked cookies): then the
  // name is simply not remembered.
  function remembered() {
    try {
      return localStorage.getItem("bocws-chat-name") || "";
    } catch {
      return "";
    }
  }

  function remember(value) {
    try {
      localStorage.setItem("bocws-chat-name", value);
    } catch {
      // not remembered
    }
  }

  function linkedRoom() {
    try {
      return decodeURIComponent(location.hash.slice(1));
    } catch {
      return ""; // not a room name this page wrote
    }
  }

  // The room comes from the address (#room), the name from the last visit; with
  // both, loading the page, or changing the room in the address, joins the room.
  function follow() {
    const linked = linkedRoom();
    if (linked) $("room").value = linked;
    if (linked && linked !== room && $("name").value) $("join").requestSubmit();
    else ($("name").value ? $("room") : $("name")).focus();
  }

  window.addEventListener("hashchange", follow);
  $("name").value = remembered();
  follow();

  // For the browser console (and the browser tests): the current socket.
  window.chat = {
    get socket() {
      return socket;
    },
  };
})();
