-- wrk script for scripts/load-twice: signed-in reads of one's wallet, ledger and reservations,
-- with the occasional top-up. Counts responses that carry GraphQL errors, by extensions.code.
local token = os.getenv("TOKEN")
local bodies = {
  '{"query":"{ wallet { balance transactions(first: 100) { id amount } } }"}',
  '{"query":"{ me { id username email balance } }"}',
  '{"query":"{ myReservations { id status } }"}',
  '{"query":"{ concerts { id title dates } }"}',
  '{"query":"mutation { charge(amount: \\"1.00\\") { balance } }"}',
}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  errors = 0
  codes = {}
end

function request()
  n = n + 1
  -- one top-up per 20 requests, reads otherwise
  local i = (n % 20 == 0) and 5 or (n % 4) + 1
  return wrk.format(nil, "/graphql", nil, bodies[i])
end

function response(status, headers, body)
  if string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    local code = string.match(body, '"code":"([A-Z_]+)"') or "NONE"
    codes[code] = (codes[code] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  local by_code = {}
  for _, t in ipairs(threads) do
    total = total + t:get("errors")
    for code, count in pairs(t:get("codes")) do
      by_code[code] = (by_code[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(by_code) do
    table.insert(parts, code .. "=" .. count)
  end
  io.write(string.format("graphql errors: %d %s\n", total, table.concat(parts, " ")))
  io.write(string.format("non-2xx: %d, socket errors: connect %d read %d write %d timeout %d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
  io.write(string.format("p50 %.2f ms, p99 %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
