/* Strata browser tracker: batches events, retries with backoff, flushes on
 * page hide with sendBeacon.  Served by `strata serve` at /v1/tracker.js.
 *
 *   <script src="https://collector.example.com/v1/tracker.js"></script>
 *   <script>
 *     var t = strata.init({url: "https://collector.example.com", key: "WEB_KEY"});
 *     t.track("page_view", {path: location.pathname});
 *   </script>
 */
(function (root) {
  "use strict";
  function now() { return new Date().toISOString(); }
  function uuid() {
    if (root.crypto && root.crypto.randomUUID) return root.crypto.randomUUID();
    var b = new Uint8Array(16);
    root.crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function init(opts) {
    var url = opts.url.replace(/\/$/, "") + "/v1/events";
    var maxBatch = opts.maxBatch || 50, flushMs = opts.flushMs || 2000;
    var queue = [], timer = null, sending = false, delay = 1000;
    function schedule(ms) { if (!timer) timer = setTimeout(flush, ms); }
    function flush() {
      timer = null;
      if (sending || !queue.length) return;
      var batch = queue.slice(0, maxBatch), sent = now();
      batch.forEach(function (e) { e.sent_at = sent; });
      sending = true;
      fetch(url, {method: "POST", keepalive: true, body: JSON.stringify(batch),
                  headers: {"Content-Type": "application/json", "Authorization": "Bearer " + opts.key}})
        .then(function (r) {
          sending = false;
          if (r.status === 429 || r.status >= 500) throw r;
          queue.splice(0, batch.length); /* 2xx, or 4xx that a retry cannot fix */
          delay = 1000;
          if (queue.length) schedule(0);
        })
        .catch(function (r) {
          sending = false;
          var ra = r && r.headers && parseInt(r.headers.get("Retry-After"), 10);
          schedule(ra > 0 ? ra * 1000 : delay);
          delay = Math.min(delay * 2, 60000);
        });
    }
    function beacon() {
      if (!queue.length || !navigator.sendBeacon) return;
      var batch = queue.splice(0, maxBatch), sent = now();
      batch.forEach(function (e) { e.sent_at = sent; });
      /* text/plain avoids a preflight; the key travels in the URL */
      var ok = navigator.sendBeacon(url + "?key=" + encodeURIComponent(opts.key),
                                    new Blob([JSON.stringify(batch)], {type: "text/plain"}));
      if (!ok) Array.prototype.unshift.apply(queue, batch);
    }
    root.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") beacon();
    });
    root.addEventListener("pagehide", beacon);
    return {
      track: function (type, payload, extra) {
        var e = {event_id: uuid(), event_type: type, schema_version: opts.schemaVersion || 1,
                 event_time: now(), payload: payload || {},
                 context: {page: {url: location.href, referrer: document.referrer, title: document.title},
                           user_agent: navigator.userAgent}};
        for (var k in extra || {}) e[k] = extra[k];
        queue.push(e);
        if (queue.length >= maxBatch) flush(); else schedule(flushMs);
        return e.event_id;
      },
      flush: flush
    };
  }
  root.strata = {init: init};
})(window);
