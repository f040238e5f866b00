---@meta
-- LuaCATS definitions of require("llamacloud") for lua-language-server: add this folder to
-- `workspace.library`. spec/types_spec.lua holds them to the code (every export and every option key).

---@class llamacloud
local llamacloud = {}

---The library's version, as in the VERSION file ("0.1.0").
---@type string
llamacloud.VERSION = ""

---A JSON `null` inside an array (the same value as `cjson.null`); a `null` in an object is an absent key.
---@type lightuserdata
llamacloud.null = nil

---Calls on the default client, built from the environment on first use (LLAMA_CLOUD_API_KEY, ...).
---@type llamacloud.Batches
llamacloud.batches = nil

---Job calls on the default client.
---@type llamacloud.Jobs
llamacloud.jobs = nil

---@type llamacloud.Webhooks
llamacloud.webhooks = nil

---Seconds on a monotonic clock (not the time of day): what a call's `deadline` option is measured on.
---@return number
function llamacloud.now() end

---A client. Calls use a dot: `client.batches.get(id)`.
---Raises on a wrong option or when no API key is given or found in the environment.
---@param opts? llamacloud.ClientOptions
---@param host? llamacloud.Host how the client's calls wait; default: picked for this process
---@return llamacloud.Client
function llamacloud.new(opts, host) end

---@class llamacloud.ClientOptions
---@field api_key? string default: LLAMA_CLOUD_API_KEY, else LLAMA_PARSE_API_KEY; missing everywhere, `new` raises naming both
---@field base_url? string default: LLAMA_CLOUD_BASE_URL, else "https://api.cloud.llamaindex.ai"; a trailing slash is fine
---@field region? "eu" default: none; "eu" picks "https://api.cloud.eu.llamaindex.ai" when `base_url` is not given
---@field timeout? number default: 60 (seconds per attempt, fractions allowed)
---@field max_retries? integer default: 2
---@field headers? table<string, string> default: none; extra headers on every request (LLAMA_CLOUD_CUSTOM_HEADERS adds more)
---@field organization_id? string default: none; a query default for every call
---@field project_id? string default: none; a query default for every call
---@field max_body_bytes? integer default: 268435456 (256 MiB); a larger response is refused, not buffered
---@field proxy? string default: none (libcurl's https_proxy/HTTPS_PROXY/no_proxy handling applies)
---@field ca_file? string default: the system store
---@field ca_path? string default: the system store
---@field allow_insecure_http? boolean default: false; an http:// base URL to a host other than loopback is refused

---@class llamacloud.Client
---@field batches llamacloud.Batches
---@field jobs llamacloud.Jobs
local Client = {}

---The resolved settings (never the key).
---@return llamacloud.Config
function Client.config() end

---Closes the client's connections; later calls raise.
function Client.close() end

---@class llamacloud.Config
---@field base_url string
---@field timeout number
---@field max_retries integer
---@field max_body_bytes integer
---@field organization_id? string
---@field project_id? string
---@field headers table<string, string> every header sent but Authorization (User-Agent included)

---@class llamacloud.GetOptions
---@field expand? string|string[] default: none; each value is sent as its own `expand=` ("results")
---@field organization_id? string default: the client's
---@field project_id? string default: the client's
---@field timeout? number default: the client's `timeout` (seconds per attempt)
---@field max_retries? integer default: the client's `max_retries` (2)
---@field headers? table<string, string> default: none; added to the client's for this call
---@field extra_query? table<string, string|string[]> default: none; further query parameters (a list repeats the key)
---@field deadline? number default: none; an absolute time in seconds on `llamacloud.now()`'s monotonic clock past which no attempt starts and no retry pause ends (`wait` sets it from its `timeout`; math.huge for none)

---@class llamacloud.WaitOptions
---@field expand? string|string[] default: none; each value is sent as its own `expand=` ("results")
---@field organization_id? string default: the client's
---@field project_id? string default: the client's
---@field max_retries? integer default: the client's `max_retries` (2), for every poll
---@field headers? table<string, string> default: none; added to the client's for every poll
---@field extra_query? table<string, string|string[]> default: none; further query parameters
---@field interval? number default: 1.0 (seconds: the pause after the first poll)
---@field max_interval? number default: 5.0 (seconds: the longest pause; math.huge for no cap)
---@field backoff? "linear"|"exponential"|"constant" default: "linear"
---@field timeout? number default: 7200 (seconds for the whole wait; math.huge for no limit)
---@field request_timeout? number default: the client's `timeout` (seconds per request)
---@field on_poll? fun(batch: llamacloud.Batch?, info: llamacloud.PollInfo): boolean? default: none; returning false stops the wait (PollingCancelled)

---@class llamacloud.ManyOptions
---@field expand? string|string[] default: none; each value is sent as its own `expand=`
---@field organization_id? string default: the client's
---@field project_id? string default: the client's
---@field timeout? number default: the client's `timeout` (seconds per attempt)
---@field max_retries? integer default: the client's `max_retries` (2)
---@field headers? table<string, string> default: none
---@field extra_query? table<string, string|string[]> default: none
---@field concurrency? integer default: 16 (requests in flight at once, 1 to 10000)

---@class llamacloud.WaitManyOptions
---@field expand? string|string[] default: none; each value is sent as its own `expand=`
---@field organization_id? string default: the client's
---@field project_id? string default: the client's
---@field max_retries? integer default: the client's `max_retries` (2), for every poll
---@field headers? table<string, string> default: none
---@field extra_query? table<string, string|string[]> default: none
---@field interval? number default: 1.0 (seconds)
---@field max_interval? number default: 5.0 (seconds)
---@field backoff? "linear"|"exponential"|"constant" default: "linear"
---@field timeout? number default: 7200 (seconds for the whole call)
---@field request_timeout? number default: the client's `timeout` (seconds per request)
---@field on_poll? fun(batch: llamacloud.Batch?, info: llamacloud.PollInfo): boolean? default: none; info.id and info.index name the batch
---@field concurrency? integer default: 16 (requests in flight at once, 1 to 10000)

---The per-call options of create, list, each and cancel.
---@class llamacloud.CallOptions
---@field organization_id? string default: the client's
---@field project_id? string default: the client's
---@field timeout? number default: the client's `timeout` (seconds per attempt)
---@field max_retries? integer default: the client's `max_retries` (2); create retries only what certainly did not reach the service
---@field headers? table<string, string> default: none; added to the client's for this call
---@field extra_query? table<string, string|string[]> default: none; further query parameters (a list repeats the key)
---@field deadline? number default: none; an absolute time on `llamacloud.now()`'s clock past which no attempt starts and no retry pause ends

---The options of jobs.get: the per-call options and `expand`.
---@class llamacloud.JobOptions
---@field expand? string|string[] default: none; each value is sent as its own `expand=` ("markdown", "text", …)
---@field organization_id? string default: the client's
---@field project_id? string default: the client's
---@field timeout? number default: the client's `timeout` (seconds per attempt)
---@field max_retries? integer default: the client's `max_retries` (2)
---@field headers? table<string, string> default: none; added to the client's for this call
---@field extra_query? table<string, string|string[]> default: none; further query parameters
---@field deadline? number default: none; an absolute time on `llamacloud.now()`'s clock past which no attempt starts

---@class llamacloud.WaitFilesOptions
---@field expand? string|string[] default: "results" (always sent; other values are added to it)
---@field organization_id? string default: the client's
---@field project_id? string default: the client's
---@field max_retries? integer default: the client's `max_retries` (2), for every request
---@field headers? table<string, string> default: none; added to the client's for every request
---@field extra_query? table<string, string|string[]> default: none; further query parameters of the batch's polls
---@field interval? number default: 1.0 (seconds: the pause after a batch's or a job's first poll)
---@field max_interval? number default: 5.0 (seconds: the longest pause)
---@field backoff? "linear"|"exponential"|"constant" default: "linear"
---@field timeout? number default: 7200 (seconds for the whole call: the batch and every job; math.huge for no limit)
---@field request_timeout? number default: the client's `timeout` (seconds per request)
---@field on_poll? fun(batch: llamacloud.Batch?, info: llamacloud.PollInfo): boolean? default: none; called after every poll of the batch
---@field concurrency? integer default: 16 (job requests in flight at once, 1 to 10000)
---@field on_file? fun(file: llamacloud.FileReport, info: table) default: none; called once per entry of `files` as it settles
---@field job_expand? string|string[] default: none; passed to every jobs.get as its `expand`

---The body of batches.create, as the service takes it.
---@class llamacloud.CreateParams
---@field source_directory_id string default: none, required; the directory whose files become jobs ("dir-…")
---@field config { job: { type: llamacloud.JobType, configuration_id: string } } default: none, required; the job made for each file
---@field webhook_configuration_ids? string[] default: none; saved webhook configurations to notify ("whc-…")
---@field webhook_configurations? llamacloud.WebhookConfiguration[] default: none; inline webhook endpoints

---@class llamacloud.WebhookConfiguration
---@field webhook_url string
---@field webhook_events? string[] nil: every event ("batch.pending", "batch.running", "batch.success", "batch.error", "batch.cancelled")
---@field webhook_headers? table<string, string> sent with each delivery
---@field webhook_output_format? "string"|"json" default "string"
---@field webhook_signing_secret? string signs each delivery (LC-Signature; see webhooks.verify)

---The query of batches.list and batches.each, as the service names it.
---@class llamacloud.ListParams
---@field status? llamacloud.BatchStatus default: any status; one of the six
---@field source_directory_id? string default: any directory
---@field created_at_on_or_after? string default: no bound; an RFC 3339 date-time
---@field created_at_on_or_before? string default: no bound; an RFC 3339 date-time
---@field page_size? integer default: the service's; a positive whole number
---@field page_token? string default: the first page; a page's next_page_token

---@class llamacloud.PollInfo
---@field attempt integer 1 for the first poll, one more per poll
---@field elapsed number seconds since the wait began
---@field err? llamacloud.Error a retryable error the poll ended with (the wait goes on)
---@field id? string wait_many: the batch's id
---@field index? integer wait_many: the batch's position in ids

---In Neovim, a call given a callback returns at once a handle.
---@class llamacloud.Handle
local Handle = {}

---Aborts the call (the connection is closed); its callback is then never called.
---@return boolean cancelled false when the call had already ended
function Handle.cancel() end

---@alias llamacloud.Callback fun(result: any, err: llamacloud.Error?)

---@class llamacloud.Batches
local Batches = {}

---Fetches one batch. Misuse raises; whatever happens on the wire returns nil, err.
---In Neovim, a function as the last argument makes the call return a handle and call it later.
---@param batch_id string
---@param opts? llamacloud.GetOptions
---@return llamacloud.Batch? batch
---@return llamacloud.Error? err
---@overload fun(batch_id: string, callback: fun(batch: llamacloud.Batch?, err: llamacloud.Error?)): llamacloud.Handle
---@overload fun(batch_id: string, opts: llamacloud.GetOptions?, callback: fun(batch: llamacloud.Batch?, err: llamacloud.Error?)): llamacloud.Handle
function Batches.get(batch_id, opts) end

---Polls `get` until the batch is terminal: COMPLETED returns it; FAILED or CANCELLED return nil, PollingError.
---@param batch_id string
---@param opts? llamacloud.WaitOptions
---@return llamacloud.Batch? batch
---@return llamacloud.Error? err
---@overload fun(batch_id: string, callback: fun(batch: llamacloud.Batch?, err: llamacloud.Error?)): llamacloud.Handle
---@overload fun(batch_id: string, opts: llamacloud.WaitOptions?, callback: fun(batch: llamacloud.Batch?, err: llamacloud.Error?)): llamacloud.Handle
function Batches.wait(batch_id, opts) end

---Gets many batches at once over one connection pool; the list is in the order of ids.
---@param ids string[]
---@param opts? llamacloud.ManyOptions
---@return llamacloud.ManyEntry[]
---@overload fun(ids: string[], callback: fun(list: llamacloud.ManyEntry[])): llamacloud.Handle
---@overload fun(ids: string[], opts: llamacloud.ManyOptions?, callback: fun(list: llamacloud.ManyEntry[])): llamacloud.Handle
function Batches.get_many(ids, opts) end

---Waits for many batches at once over one connection pool; the list is in the order of ids.
---@param ids string[]
---@param opts? llamacloud.WaitManyOptions
---@return llamacloud.ManyEntry[]
---@overload fun(ids: string[], callback: fun(list: llamacloud.ManyEntry[])): llamacloud.Handle
---@overload fun(ids: string[], opts: llamacloud.WaitManyOptions?, callback: fun(list: llamacloud.ManyEntry[])): llamacloud.Handle
function Batches.wait_many(ids, opts) end

---Sorts an expanded batch's results into files that got a job, whose mapping failed, and neither yet.
---@param batch llamacloud.Batch
---@return llamacloud.Outcomes
function Batches.outcomes(batch) end

---Creates a batch: one job of `params.config.job.type` per file of the source directory.
---Sent once: retried only when the first attempt certainly did not reach the service (refused or
---unresolved connection, 429, 503). A timeout, a reset after sending or another 5xx returns
---nil, err with `err.may_have_created = true`: look for the batch with `list` before creating again.
---@param params llamacloud.CreateParams
---@param opts? llamacloud.CallOptions
---@return llamacloud.Batch? batch
---@return llamacloud.Error? err
---@overload fun(params: llamacloud.CreateParams, callback: fun(batch: llamacloud.Batch?, err: llamacloud.Error?)): llamacloud.Handle
---@overload fun(params: llamacloud.CreateParams, opts: llamacloud.CallOptions?, callback: fun(batch: llamacloud.Batch?, err: llamacloud.Error?)): llamacloud.Handle
function Batches.create(params, opts) end

---One page of batches: `page.items`, `page.next_page_token` (nil on the last page).
---@param params? llamacloud.ListParams
---@param opts? llamacloud.CallOptions
---@return llamacloud.Page? page
---@return llamacloud.Error? err
---@overload fun(params: llamacloud.ListParams?, callback: fun(page: llamacloud.Page?, err: llamacloud.Error?)): llamacloud.Handle
---@overload fun(params: llamacloud.ListParams?, opts: llamacloud.CallOptions?, callback: fun(page: llamacloud.Page?, err: llamacloud.Error?)): llamacloud.Handle
function Batches.list(params, opts) end

---A generic-for iterator over every batch of every page, fetching a page when the loop reaches it:
---`for batch, err in client.batches.each(params) do … end`. On an error it yields false, err once and
---ends; it stops on an empty page or an empty or null token. Not in Neovim with a callback: page with `list`.
---@param params? llamacloud.ListParams
---@param opts? llamacloud.CallOptions
---@return fun(): (llamacloud.Batch|false)?, llamacloud.Error?
function Batches.each(params, opts) end

---Asks the service to cancel a batch; returns the batch (not yet CANCELLED: `wait` for that).
---@param batch_id string
---@param opts? llamacloud.CallOptions
---@return llamacloud.Batch? batch
---@return llamacloud.Error? err
---@overload fun(batch_id: string, callback: fun(batch: llamacloud.Batch?, err: llamacloud.Error?)): llamacloud.Handle
---@overload fun(batch_id: string, opts: llamacloud.CallOptions?, callback: fun(batch: llamacloud.Batch?, err: llamacloud.Error?)): llamacloud.Handle
function Batches.cancel(batch_id, opts) end

---Waits for the batch (as `wait`, with expand = "results"), then for every file's job, and returns one
---entry per file. A FAILED batch returns nil, PollingError; CANCELLED returns the report; running out
---of time returns the report so far and PollingTimeoutError.
---@param batch_id string
---@param opts? llamacloud.WaitFilesOptions
---@return llamacloud.Report? report
---@return llamacloud.Error? err
---@overload fun(batch_id: string, callback: fun(report: llamacloud.Report?, err: llamacloud.Error?)): llamacloud.Handle
---@overload fun(batch_id: string, opts: llamacloud.WaitFilesOptions?, callback: fun(report: llamacloud.Report?, err: llamacloud.Error?)): llamacloud.Handle
function Batches.wait_files(batch_id, opts) end

---@class llamacloud.Jobs
local Jobs = {}

---Fetches the job a result's job_reference points to: GET /api/v2/parse/{id} for parse_v2,
---GET /api/v2/extract/{id} for extract_v2; the server's object as is. An unknown type raises.
---@param job_reference llamacloud.JobReference
---@param opts? llamacloud.JobOptions
---@return llamacloud.Job? job
---@return llamacloud.Error? err
---@overload fun(job_reference: llamacloud.JobReference, callback: fun(job: llamacloud.Job?, err: llamacloud.Error?)): llamacloud.Handle
---@overload fun(job_reference: llamacloud.JobReference, opts: llamacloud.JobOptions?, callback: fun(job: llamacloud.Job?, err: llamacloud.Error?)): llamacloud.Handle
function Jobs.get(job_reference, opts) end

---A job's status from either shape: a parse job's `job.job.status`, an extract job's `job.status`.
---@param job llamacloud.Job
---@return string? status
function Jobs.status(job) end

---@class llamacloud.ManyEntry
---@field batch? llamacloud.Batch
---@field err? llamacloud.Error

---@class llamacloud.Outcomes
---@field jobs llamacloud.BatchResult[] files that got a job
---@field failed llamacloud.BatchResult[] files whose mapping failed (error_message)
---@field unmapped llamacloud.BatchResult[] files with neither yet

---@alias llamacloud.BatchStatus "PENDING"|"THROTTLED"|"RUNNING"|"COMPLETED"|"FAILED"|"CANCELLED"|string
---@alias llamacloud.JobType "parse_v2"|"extract_v2"

---A batch as the server sent it; a JSON null is an absent field, unknown fields are kept.
---@class llamacloud.Batch
---@field id string "bat-…"
---@field status llamacloud.BatchStatus
---@field project_id? string
---@field source_directory_id? string
---@field config? { job: { type: llamacloud.JobType, configuration_id: string } }
---@field created_at? string
---@field updated_at? string
---@field results? llamacloud.BatchResult[] only with expand = "results"
---@field [string] any

---@class llamacloud.BatchResult
---@field source_directory_file_id string
---@field job_reference? llamacloud.JobReference
---@field error_message? string

---@class llamacloud.JobReference
---@field type llamacloud.JobType
---@field id string

---One page of batches.list.
---@class llamacloud.Page
---@field items llamacloud.Batch[]
---@field next_page_token? string nil on the last page

---A parse or extract job as the server sent it (`job.job.status` or `job.status`).
---@class llamacloud.Job
---@field status? string
---@field job? { status: string, [string]: any }
---@field [string] any

---What batches.wait_files returns.
---@class llamacloud.Report
---@field batch llamacloud.Batch
---@field files llamacloud.FileReport[] one per result, in the batch's order
---@field counts table<string, integer> files per status; COMPLETED, FAILED, CANCELLED, MAPPING_FAILED and UNMAPPED always present

---@class llamacloud.FileReport
---@field source_directory_file_id string
---@field job_reference? llamacloud.JobReference
---@field status "COMPLETED"|"FAILED"|"CANCELLED"|"MAPPING_FAILED"|"UNMAPPED"|string
---@field error_message? string
---@field job? llamacloud.Job the last job object seen

---@alias llamacloud.ErrorName
---| "BadRequestError" # 400
---| "AuthenticationError" # 401
---| "PermissionDeniedError" # 403
---| "NotFoundError" # 404
---| "ConflictError" # 409
---| "UnprocessableEntityError" # 422
---| "RateLimitError" # 429
---| "InternalServerError" # 500 and above
---| "APIStatusError" # any other non-2xx
---| "APIConnectionError" # refused, reset, DNS, TLS, closed mid-body
---| "APITimeoutError" # the attempt ran past timeout
---| "APIResponseValidationError" # a 2xx body too large or not of the call's shape
---| "PollingError" # wait saw FAILED or CANCELLED
---| "PollingTimeoutError" # wait ran out of time
---| "PollingCancelled" # on_poll returned false

---What a call returns as its second value; tostring(err) reads "NotFoundError: 404 …".
---@class llamacloud.Error
---@field name llamacloud.ErrorName
---@field message string
---@field status? integer the HTTP status
---@field body? table|string the decoded JSON, else the raw text
---@field headers? table<string, string> lower-case names
---@field request_id? string the x-request-id response header
---@field attempts? integer every try, retries included
---@field batch? llamacloud.Batch Polling errors: the last batch seen
---@field may_have_created? boolean batches.create: the request may have reached the service

---@class llamacloud.Webhooks
local Webhooks = {}

---Checks a webhook delivery's LC-Signature header (HMAC-SHA256 of the raw body, constant time).
---@param raw_body string the request body, unparsed
---@param signature string? the LC-Signature header's value, "sha256=<hex>"
---@param secret string the webhook signing secret (an empty one raises)
---@return boolean ok
---@return "missing"|"malformed"|"mismatch"|nil reason
function Webhooks.verify(raw_body, signature, secret) end

---How a client's calls wait; the host modules (llamacloud.host.*) are hosts. A host gives its way
---to wait (now, sleep, step) and nothing about calls: one binder (llamacloud.bind) makes every call
---from its declaration.
---@class llamacloud.Host
---@field name? string the coroutine host's is "coroutine"
---@field stopping? fun(): string? a reason once the host's calls must stop (an nginx worker exiting)
---@field direct? boolean calls may block in C: a call that takes (id [, opts]) is the C closure itself
---@field run? fun(ud: userdata, req: userdata): any, llamacloud.Error?, number? runs one request to its end (else it is stepped on a multi of its own)
---@field enter? fun(label: string): llamacloud.Host?, string? the primitives a call uses right now (OpenResty picks by phase), or nil and why
---@field close? fun(ud: userdata) the client is closing: end what the host keeps for it (the coroutine host's shared multi)
---@field async? fun(fn: fun(primitives: llamacloud.Host): any, any, callback: fun(result: any, err: llamacloud.Error?)): llamacloud.Handle runs fn later and calls back (Neovim)
local Host = {}

---Seconds on a monotonic clock.
---@return number
function Host.now() end

---@param seconds number
function Host.sleep(seconds) end

---@param multi userdata
---@param max_wait number
function Host.step(multi, max_wait) end

return llamacloud
