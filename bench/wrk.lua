-- Replays the request spec that bench/load.py writes (path in BENCH_SPEC):
--   line 1: method, line 2: path, then "Name: value" header lines, a blank line,
--   then one body per line, cycled; "{n}" in a body becomes a per-request counter.
-- done() prints one BENCHJSON line: totals, errors and latency quantiles (microseconds).
local f = assert(io.open(os.getenv("BENCH_SPEC"), "r"))
local method = f:read("*l")
local path = f:read("*l")
local headers, bodies = {}, {}
for line in f:lines() do
  if line == "" then break end
  local name, value = line:match("^([^:]+):%s*(.*)$")
  headers[name] = value
end
for line in f:lines() do
  if line ~= "" then bodies[#bodies + 1] = line end
end
f:close()

local counter = 0
local static = nil
if #bodies == 0 then
  static = wrk.format(method, path, headers)
end

request = function()
  if static then return static end
  counter = counter + 1
  local body = bodies[((counter - 1) % #bodies) + 1]
  body = (body:gsub("{n}", tostring(counter)))
  return wrk.format(method, path, headers, body)
end

-- Latency quantiles at these percents let bench/load.py merge several rounds of one test.
local points = {}
for p = 1, 99 do points[#points + 1] = p end
points[#points + 1] = 99.5
points[#points + 1] = 99.9

done = function(summary, latency, requests)
  local e = summary.errors
  local q = {}
  if summary.requests > 0 then
    for i, p in ipairs(points) do
      q[i] = string.format("[%g, %.0f]", p, latency:percentile(p))
    end
  end
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %.0f, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "quantiles_us": [%s]}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(q, ", ")))
end
