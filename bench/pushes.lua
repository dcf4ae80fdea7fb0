-- wrk script: one pre-generated request per line, in file order (see bench/pushes.py and
-- bench/reads.py).
-- usage: wrk -t1 -s bench/pushes.lua URL -- FILE BYTE_OFFSET [wrap]
-- Lines are "PATH?QUERY<TAB>BODY[<TAB>AUTHORIZATION]" (a body starting with "{" is JSON, any
-- other XML). Without `wrap` the end of the file marks the run exhausted
-- (the rest would repeat pushes and measure dedup instead of storing). One thread only: every
-- thread would read the same lines.

local xml = { ["Content-Type"] = "text/xml" }
local threads = {}
local file, wrap
-- wrk calls request() once before the run, to count pipelined requests, and never sends that
-- one: the first call only peeks, so that `issued` counts exactly the lines sent.
local peek = true

issued, non200, exhausted = 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  file = assert(io.open(args[1], "rb"))
  file:seek("set", tonumber(args[2]))
  wrap = args[3] == "wrap"
end

function request()
  local line = file:read("*l")
  if line == nil then
    if not wrap then exhausted = 1 end
    file:seek("set", 0)
    line = file:read("*l")
  end
  if peek then
    peek = false
    file:seek("cur", -(#line + 1))
  else
    issued = issued + 1
  end
  local tab = line:find("\t", 1, true)
  local path, body = line:sub(1, tab - 1), line:sub(tab + 1)
  local headers = xml
  local second = body:find("\t", 1, true)
  if second then
    headers = { ["Content-Type"] = "application/json",
                ["Authorization"] = body:sub(second + 1) }
    body = body:sub(1, second - 1)
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local issued_all, non200_all, exhausted_all = 0, 0, 0
  for _, thread in ipairs(threads) do
    issued_all = issued_all + thread:get("issued")
    non200_all = non200_all + thread:get("non200")
    exhausted_all = math.max(exhausted_all, thread:get("exhausted"))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_s": %.6f, "issued": %d, "non200": %d, "exhausted": %d, '
      .. '"p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "socket_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration / 1e6, issued_all, non200_all, exhausted_all,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    e.connect + e.read + e.write, e.timeout))
end
