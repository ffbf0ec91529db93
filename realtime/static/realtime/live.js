// CoinLink live page: renders crypto_ticker_update frames from /ws into the table. No build step.
(function () {
  "use strict";

  var rows = document.getElementById("rows");
  var statusBox = document.getElementById("status");
  var statusText = document.getElementById("status-text");
  var empty = document.getElementById("empty");
  var seqOut = document.getElementById("seq");
  var updated = document.getElementById("updated");
  var offline = document.getElementById("offline");
  var tickers = {}; // symbol -> ticker
  var retry = 0;
  // Live ticks: Coinbase's top assets trade several times a second, so this long without a streamed
  // price means the stream is down and prices move with the poll only.
  var STREAM_QUIET_MS = 10000;
  var SOURCES = { coinbase_stream: "Coinbase live", coinbase: "Coinbase", coingecko: "CoinGecko" };
  var lastStreamed = 0; // when a coinbase_stream price last arrived (ms)
  var streamNote = document.createElement("p");
  streamNote.className = "stream-note";
  streamNote.setAttribute("role", "status");
  streamNote.hidden = true;
  document.getElementById("tickers").before(streamNote);

  var money = function (value) {
    if (value === null || value === undefined) return "–";
    var opts = value >= 1
      ? { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 }
      : { style: "currency", currency: "USD", maximumSignificantDigits: 4 };
    return new Intl.NumberFormat("en-US", opts).format(value);
  };
  var compact = function (value) {
    if (value === null || value === undefined) return "–";
    return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 2 }).format(value);
  };
  var percent = function (value) {
    if (value === null || value === undefined) return "–";
    return (value > 0 ? "+" : "") + value.toFixed(2) + " %";
  };
  var time = function (iso) {
    if (!iso) return "–";
    var d = new Date(iso);
    return isNaN(d) ? "–" : d.toLocaleTimeString();
  };

  function setStatus(state, text) {
    statusBox.dataset.state = state;
    statusText.textContent = text;
  }

  function cell(tr, className, text) {
    var td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function render(changed) {
    var order = Object.keys(tickers).sort(function (a, b) {
      return (tickers[a].rank || 1e9) - (tickers[b].rank || 1e9) || (a < b ? -1 : 1);
    });
    rows.textContent = "";
    order.forEach(function (symbol) {
      var t = tickers[symbol];
      var tr = document.createElement("tr");
      tr.dataset.symbol = symbol;
      if (t.stale) tr.classList.add("stale");
      if (changed[symbol]) tr.classList.add(changed[symbol] > 0 ? "flash-up" : "flash-down");
      cell(tr, "num", t.rank === null || t.rank === undefined ? "–" : String(t.rank));
      var asset = cell(tr, "asset", symbol);
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = t.name || "";
      asset.appendChild(name);
      cell(tr, "num price", money(t.price));
      var change = cell(tr, "num change", percent(t.change_percent_24h));
      if (t.change_percent_24h) change.classList.add(t.change_percent_24h > 0 ? "up" : "down");
      cell(tr, "num", compact(t.volume_24h));
      cell(tr, "num", compact(t.market_cap));
      var when = cell(tr, "num updated", time(t.last_updated));
      var source = document.createElement("span");
      source.className = "source";
      source.dataset.source = t.source || "";
      source.textContent = SOURCES[t.source] || t.source || "";
      when.appendChild(source);
      rows.appendChild(tr);
    });
    empty.hidden = order.length > 0 || !offline.hidden;
    if (Object.keys(changed).length) {
      setTimeout(function () {
        Array.prototype.forEach.call(rows.querySelectorAll("tr.flash-up, tr.flash-down"), function (tr) {
          tr.classList.remove("flash-up", "flash-down");
        });
      }, 900);
    }
  }

  function streamCheck() {
    var quiet = Date.now() - lastStreamed > STREAM_QUIET_MS;
    streamNote.hidden = !quiet || !Object.keys(tickers).length;
    streamNote.textContent = "Live ticks from Coinbase are paused: prices move with the regular poll " +
      "(about every 30 s) until the stream is back.";
  }

  function onTickers(frame) {
    var changed = {};
    frame.data.forEach(function (t) {
      var before = tickers[t.symbol];
      if (before && before.price !== t.price) changed[t.symbol] = t.price > before.price ? 1 : -1;
      if (t.source === "coinbase_stream" && Date.now() - Date.parse(t.last_updated) < STREAM_QUIET_MS) {
        lastStreamed = Date.now();
      }
      tickers[t.symbol] = t;
    });
    streamCheck();
    seqOut.textContent = "#" + frame.seq;
    updated.textContent = "Last update " + time(frame.timestamp) + (frame.stale && frame.data.length ? " (some prices are stale)" : "") + ".";
    render(changed);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws");
    setStatus("connecting", "connecting…");
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "connected") { retry = 0; setStatus("live", "live"); }
      else if (frame.type === "crypto_ticker_update") onTickers(frame);
      else if (frame.type === "ping") socket.send(JSON.stringify({ type: "pong" }));
    };
    socket.onclose = function (event) {
      var wait = Math.min(30, Math.pow(2, retry++)) * (0.5 + Math.random() / 2);
      setStatus("closed", "disconnected (" + event.code + "), retrying in " + Math.ceil(wait) + " s");
      setTimeout(connect, wait * 1000);
    };
  }

  // Why there are no (fresh) prices: /readyz names it when no provider answers the ingest.
  function checkProviders() {
    fetch("/readyz", { cache: "no-store" }).then(function (response) {
      return response.json();
    }).then(function (body) {
      var reason = body.checks && body.checks.market_data && body.checks.market_data.reason;
      var some = Object.keys(tickers).length > 0;
      offline.hidden = !reason;
      offline.textContent = reason
        ? "The price providers cannot be reached (" + reason.replace(/^providers unreachable: /, "") + "). " +
          (some ? "Prices shown are the last ones received; they update as soon as a provider answers."
                : "There are no prices to show yet; they appear as soon as a provider answers.")
        : "";
      empty.hidden = some || !!reason;
    }).catch(function () { /* the status box already says when the server is away */ });
  }

  function pricesInDoubt() {
    var symbols = Object.keys(tickers);
    return !offline.hidden || !symbols.length || symbols.some(function (s) { return tickers[s].stale; });
  }


  setInterval(streamCheck, 1000);
  connect();
  checkProviders();
  setInterval(function () { if (pricesInDoubt()) checkProviders(); }, 10000);
})();
