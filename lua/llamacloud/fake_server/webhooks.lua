-- Webhook deliveries of the fake server: each event of a created batch is POSTed to every loopback
-- webhook_url its create body named, signed with LC-Signature when a secret is set, retried with
-- backoff, and recorded for GET /_fake/deliveries. Deliveries are threads of the HTTP loop: they never
-- block it.
local json = require("llamacloud.fake_server.json")
local http = require("llamacloud.fake_server.http")
local model = require("llamacloud.fake_server.model")

local M = {}

local floor = math.floor
local NULL = json.null
local obj = json.object

-- core.hmac_sha256_hex(key, msg) from the C module, loaded on the first signed delivery (the fake
-- server itself runs without the C module): the function | nil, why.
local hmac
local function signer()
  if hmac then return hmac end
  local ok, core = pcall(require, "llamacloud.core")
  if not ok then return nil, "cannot sign: llamacloud.core does not load: " .. tostring(core) end
  if type(core.hmac_sha256_hex) ~= "function" then
    return nil, "cannot sign: llamacloud.core has no hmac_sha256_hex"
  end
  hmac = core.hmac_sha256_hex
  return hmac
end

-- The body the fake sends (the service documents only `status`; the rest is the fake's choice,
-- docs/fake-server.md).
local function payload(b, event, status, now)
  return json.encode(obj({ event = event, batch_id = b.id, status = status,
                           source_directory_id = b.source_directory_id, timestamp = model.iso_time(now) }))
end

local function record(srv, d)
  local seq = srv.ndeliveries + 1
  srv.ndeliveries = seq
  d.seq = seq
  srv.deliveries[seq] = d
  -- deliveries are bounded like requests: keep the last log_limit
  local limit = srv.scenario.log_limit or srv.log_limit
  if seq - limit >= 1 then srv.deliveries[seq - limit] = nil end
end

-- Delivers one event to one configuration, with retries: true when a 2xx came back.
local function deliver(srv, c, state, b, hook, ev)
  local cfg = srv.scenario.webhooks
  local body = payload(b, ev.event, ev.status, http.gettime())
  local headers = {
    { "Host", (hook.host:find(":", 1, true) and "[" .. hook.host .. "]" or hook.host) .. ":" .. hook.port },
    { "Content-Type", hook.format == "json" and "application/json" or "text/plain; charset=utf-8" },
    { "User-Agent", "llamacloud-fake-server" },
  }
  for _, h in ipairs(hook.headers) do headers[#headers + 1] = h end
  local sign_err
  if hook.secret then
    local fn, why = signer()
    if fn then
      headers[#headers + 1] = { "LC-Signature", "sha256=" .. fn(hook.secret, body) }
    else
      sign_err = why
    end
  end
  local sent = obj({})
  for _, h in ipairs(headers) do sent[h[1]:lower()] = h[2] end
  for attempt = 1, cfg.retries + 1 do
    if srv.state ~= state or not srv.running then return false end
    local d = obj({ batch_id = b.id, event = ev.event, status = ev.status, url = hook.url,
                    attempt = attempt, headers = sent, body = body, response_status = NULL,
                    error = NULL, delivered = false,
                    t = floor((http.gettime() - srv.started) * 1e6 + 0.5) / 1e6 })
    if sign_err then
      d.error = sign_err
      record(srv, d)
      return false
    end
    local status, err = http.request(srv, c, hook.host, hook.port, "POST", hook.path, headers, body,
      cfg.timeout)
    if srv.state ~= state then return false end
    if status then d.response_status = status else d.error = err end
    d.delivered = status ~= nil and status >= 200 and status < 300
    record(srv, d)
    if d.delivered then return true end
    if attempt <= cfg.retries then http.wait(c, cfg.backoff * 2 ^ (attempt - 1)) end
  end
  return false
end

local function start_queue(srv, state, b, q)
  if q.running or b.deferred then return end
  q.running = true
  http.spawn(srv, { kind = "delivery" }, function(c)
    while q.events[1] and srv.state == state and srv.running do
      local ev = table.remove(q.events, 1)
      deliver(srv, c, state, b, q.hook, ev)
    end
    q.running = false
  end)
end

-- The model's on_event: queue the event for every configuration that wants it.
function M.on_event(srv)
  return function(b, event, status)
    local hooks = b.webhooks
    if not hooks or #hooks == 0 then return end
    b.queues = b.queues or {}
    for i, hook in ipairs(hooks) do
      if not hook.events or hook.events[event] then
        local q = b.queues[i]
        if not q then
          q = { hook = hook, events = {} }
          b.queues[i] = q
        end
        q.events[#q.events + 1] = { event = event, status = status }
        start_queue(srv, srv.state, b, q)
      end
    end
  end
end

-- Called once the create answer is on its way: start the deliveries queued so far and, for a batch
-- that moves on its own (advance_every, or any batch with webhooks), its timer.
function M.created(srv, b)
  local state = srv.state
  b.deferred = nil
  for _, q in pairs(b.queues or {}) do start_queue(srv, state, b, q) end
  local every = b.entry.advance_every
  if not every and b.webhooks and #b.webhooks > 0 then every = srv.scenario.webhooks.advance_every end
  if not every then return end
  http.spawn(srv, { kind = "timer" }, function(c)
    repeat
      http.wait(c, every)
    until srv.state ~= state or not srv.running or not model.advance(state, b)
  end)
end

return M
