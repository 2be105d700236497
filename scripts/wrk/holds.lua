-- wrk script: POST a one-ticket hold as a random buyer.
-- Arguments (after `--`): the event id, then a file with one buyer token per line.
local tokens = {}
local path

function init(args)
  -- The last two arguments (wrk may pass the URL or "--" before them).
  local n = #args
  path = "/v1/events/" .. args[n - 1] .. "/holds"
  for line in io.lines(args[n]) do
    tokens[#tokens + 1] = line
  end
  math.randomseed(os.time())
end

local body = '{"items":[{"ticket_type_id":0,"quantity":1}]}'

function request()
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)],
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", path, headers, body)
end
