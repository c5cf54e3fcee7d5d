-- wrk: POST /api/v1/orgs/{org}/exchanges between random accounts, each with its own
-- Idempotency-Key. Environment: TB_TOKEN, TB_ORG, TB_ACCOUNTS (comma-separated ids),
-- TB_RUN (a nonce, so keys never repeat across runs), TB_DATE (YYYY-MM-DD);
-- TB_PAUSE_MS (optional): each connection waits this long on average between requests.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  accounts = {}
  for id in string.gmatch(os.getenv("TB_ACCOUNTS"), "%d+") do
    table.insert(accounts, id)
  end
  math.randomseed(os.time() * 1000 + thread_number)
  path = "/api/v1/orgs/" .. os.getenv("TB_ORG") .. "/exchanges"
  token = "Bearer " .. os.getenv("TB_TOKEN")
  key_prefix = os.getenv("TB_RUN") .. "-" .. thread_number .. "-"
  day = os.getenv("TB_DATE")
  pause = tonumber(os.getenv("TB_PAUSE_MS") or "0")
  sent = 0
  created = 0
  conflicts = 0
  other_4xx = 0
  server_errors = 0
end

function request()
  sent = sent + 1
  local giver = math.random(#accounts)
  local receiver = math.random(#accounts - 1)
  if receiver >= giver then receiver = receiver + 1 end
  local body = string.format(
    '{"giver_account_id":%s,"receiver_account_id":%s,"minutes":30,"occurred_on":"%s","description":"benchmark"}',
    accounts[giver], accounts[receiver], day)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = token,
    ["Idempotency-Key"] = key_prefix .. sent,
  }, body)
end

-- Exponentially distributed pauses around the mean: independent people, not a
-- metronome (fixed pauses keep every connection in step, arriving in bursts).
function delay()
  if pause == 0 then return 0 end
  return math.floor(-math.log(1 - math.random()) * pause)
end

function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 409 then conflicts = conflicts + 1
  elseif status >= 500 then server_errors = server_errors + 1
  else other_4xx = other_4xx + 1 end
end

function done(summary, latency, requests)
  local totals = {created = 0, conflicts = 0, other_4xx = 0, server_errors = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"created":%d,"conflicts":%d,"other_4xx":%d,"server_errors":%d,' ..
    '"socket_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, totals.created, totals.conflicts, totals.other_4xx, totals.server_errors,
    errors.connect + errors.read + errors.write, errors.timeout))
end
