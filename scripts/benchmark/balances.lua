-- wrk: GET /api/v1/orgs/{org}/accounts/{id} for random accounts, as staff.
-- Environment: TB_TOKEN, TB_ORG, TB_ACCOUNTS; TB_PAUSE_MS (optional): each connection
-- waits this long on average between requests, like a person checking a balance now and then.
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
  prefix = "/api/v1/orgs/" .. os.getenv("TB_ORG") .. "/accounts/"
  headers = {["Authorization"] = "Bearer " .. os.getenv("TB_TOKEN")}
  pause = tonumber(os.getenv("TB_PAUSE_MS") or "0")
  ok = 0
  failed = 0
end

function request()
  return wrk.format("GET", prefix .. accounts[math.random(#accounts)], headers)
end

-- Exponentially distributed pauses around the mean: independent people, not a
-- metronome (fixed pauses keep every connection in step, arriving in bursts).
function delay()
  if pause == 0 then return 0 end
  return math.floor(-math.log(1 - math.random()) * pause)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else failed = failed + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_failed = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_failed = total_failed + thread:get("failed")
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"ok":%d,"failed":%d,"socket_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, total_ok, total_failed, errors.connect + errors.read + errors.write, errors.timeout))
end
