-- wrk script: POSTs a batch of 100 events of ~500 bytes each to /v1/events
-- with an API key, durable (the answer waits for the fsync).  Unique event_ids
-- per request keep the log honest.
--   STRATA_KEY=... wrk -t2 -c50 -d10s -s bench/collector_post.lua http://127.0.0.1:8686/v1/events
local key = os.getenv("STRATA_KEY") or "bench-key"
local pad = string.rep("x", 330)
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.headers["Authorization"] = "Bearer " .. key

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

local n = 0
function request()
  n = n + 1
  local lines = {}
  for i = 1, 100 do
    lines[i] = string.format(
      '{"event_id":"%s-%d-%d","event_type":"page_view","schema_version":1,' ..
      '"event_time":"2025-06-01T10:00:00.000Z","country":"DE",' ..
      '"context":{"page":{"url":"https://app.example.com/p"}},"payload":{"pad":"%s"}}',
      tostring(tid or 0), n, i, pad)
  end
  return wrk.format(nil, nil, nil, table.concat(lines, "\n"))
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("HTTP " .. status .. ": " .. body .. "\n")
  end
end
