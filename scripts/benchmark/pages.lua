-- wrk: a page as a browser asks for it, with the session cookie (and for a form, its CSRF token).
-- Environment: TB_PATH; TB_COOKIE (the Cookie header); TB_EXPECT (the status that counts as done:
-- 200 for a page, 303 for a form that redirects, which is not followed);
-- for a POST also TB_FORM (the urlencoded fields every submit sends, CSRF token included),
-- TB_PEOPLE ("account_id|urlencoded name" pairs, comma-separated: each submit names two at random
-- as a browser's person fields do after a suggestion is picked) and TB_RUN (a nonce for the keys).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_number)
  path = os.getenv("TB_PATH")
  expect = tonumber(os.getenv("TB_EXPECT") or "200")
  form = os.getenv("TB_FORM")
  headers = {["Cookie"] = os.getenv("TB_COOKIE")}
  people = {}
  if form then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    for id, name in string.gmatch(os.getenv("TB_PEOPLE"), "(%d+)|([^,]+)") do
      table.insert(people, {id = id, name = name})
    end
    key_prefix = os.getenv("TB_RUN") .. "-" .. thread_number .. "-"
  end
  sent = 0
  ok = 0
  failed = 0
end

function request()
  if not form then
    return wrk.format("GET", path, headers)
  end
  sent = sent + 1
  local giver = math.random(#people)
  local receiver = math.random(#people - 1)
  if receiver >= giver then receiver = receiver + 1 end
  local body = form .. string.format(
    "&idempotency_key=%s%d&giver=%s&giver_account_id=%s&receiver=%s&receiver_account_id=%s",
    key_prefix, sent, people[giver].name, people[giver].id, people[receiver].name, people[receiver].id)
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status == expect then ok = ok + 1 else failed = failed + 1 end
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
