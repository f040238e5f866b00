-- An OpenResty receiver for LlamaCloud batch webhooks: checks LC-Signature over the raw body before it
-- reads anything in it, then records each batch's status in the shared dict llamacloud_batches, where
-- status() (or any handler, or a waiting caller) reads it. See nginx.conf beside this file.
local llamacloud = require("llamacloud")
local cjson = require("cjson.safe")

local M = {}

M.SECRET_ENV = "LLAMA_CLOUD_WEBHOOK_SECRET"
M.DICT = "llamacloud_batches"

-- Delivery order is not guaranteed (batch.running may arrive after batch.success): a status only
-- replaces one of a lower rank, so a late event never undoes a finished batch (spec/webhook_ngx_spec.lua).
local RANK = { PENDING = 1, THROTTLED = 1, RUNNING = 2, COMPLETED = 3, FAILED = 3, CANCELLED = 3 }

-- The raw body as it came: in memory, or in the file nginx buffered a large one to
-- (client_body_buffer_size); "" for none.
local function raw_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local path = ngx.req.get_body_file()
  if not path then return "" end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  body = f:read("*a")
  f:close()
  return body
end

local function answer(status, text)
  ngx.status = status
  ngx.header.content_type = "text/plain"
  ngx.say(text)
  return ngx.exit(status)
end

local function refuse(why)
  ngx.log(ngx.WARN, "webhook refused: ", why, " signature")
  return answer(401, why)
end

-- POST: 200 once verified and recorded; 401 for a missing, malformed or wrong signature, before the body
-- is decoded; 400 for a verified body without a batch id and status; 500 without a secret.
function M.receive()
  if ngx.req.get_method() ~= "POST" then return answer(405, "POST only") end
  local secret = os.getenv(M.SECRET_ENV)
  if not secret or secret == "" then
    ngx.log(ngx.ERR, M.SECRET_ENV, " is not set (an env directive passes it to workers): refusing deliveries")
    return answer(500, "no secret")
  end
  local sig = ngx.req.get_headers()["lc-signature"]
  if type(sig) == "table" then return refuse("malformed") end -- several LC-Signature headers
  if sig == nil or sig == "" then return refuse("missing") end -- no need to read the body
  local body, err = raw_body()
  if not body then
    ngx.log(ngx.ERR, "webhook: reading the body: ", err)
    return answer(500, "unreadable body")
  end
  local ok, why = llamacloud.webhooks.verify(body, sig, secret)
  if not ok then return refuse(why) end

  -- Only now is the body trusted enough to decode.
  local event = cjson.decode(body)
  local id = type(event) == "table" and (event.batch_id or event.id)
  local status = type(event) == "table" and event.status
  if type(id) ~= "string" or type(status) ~= "string" then return answer(400, "no batch id or status") end
  local dict = ngx.shared[M.DICT]
  local old = dict:get(id)
  -- get then set is not atomic across workers: with several, two events of one batch arriving at the
  -- same instant could still race (worker_processes 1 here).
  if not old or (RANK[status] or 0) >= (RANK[old] or 0) then dict:set(id, status) end
  return answer(200, "ok")
end

-- GET: the last status a verified delivery recorded for batch id, or 404.
function M.status(id)
  local status = ngx.shared[M.DICT]:get(id)
  if not status then return answer(404, "no delivery for " .. id) end
  return answer(200, status)
end

return M
