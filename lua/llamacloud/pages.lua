-- batches.each: a generic-for iterator over every batch of every page, fetching a page only when the
-- loop reaches it (spec/list_spec.lua).
local core = require("llamacloud.core")

local M = {}

-- fetch(params) returns a page or nil, err. The iterator yields each batch; on an error it yields
-- false, err once and ends. It stops on an empty page or an empty or null next_page_token, and on a
-- token it has already followed (a service that repeats one would otherwise loop forever): that ends
-- with false, err (APIResponseValidationError) after the batches already yielded.
function M.each(fetch, params)
  local query = {}
  for k, v in pairs(params or {}) do query[k] = v end
  local seen = {}
  if query.page_token then seen[query.page_token] = true end
  local items, i, token, done = nil, 0, nil, false
  return function()
    while not done do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      if items and (#items == 0 or type(token) ~= "string" or token == "") then
        done = true
        return nil
      end
      if items then
        if seen[token] then
          done = true
          return false, core.error("APIResponseValidationError", "list: the service sent next_page_token '"
            .. token .. "' again; stopping rather than reading the same pages forever", { page_token = token })
        end
        seen[token] = true
        query.page_token = token
      end
      local page, err = fetch(query)
      if not page then
        done = true
        return false, err
      end
      items, i, token = page.items, 0, page.next_page_token
    end
    return nil
  end
end

return M
