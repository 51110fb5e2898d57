-- wrk script: POST /shares/validate with a different token on every request, read from
-- a file of tokens (one per line) that outnumber the service's verified-token cache, so
-- every request pays a full signature check.
--
-- arguments: TOKENS_FILE BODY
-- output:    RESULT <requests> <duration_us> <p50_us> <p99_us> <non-2xx> <socket errors>

local tokens = {}
local position = 0

function init(args)
   for line in io.lines(args[1]) do
      tokens[#tokens + 1] = line
   end
   body = args[2]
end

function request()
   position = position + 1
   if position > #tokens then
      position = 1
   end
   return wrk.format("POST", "/shares/validate",
      {["Content-Type"] = "application/json", ["token"] = tokens[position]}, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99), e.status,
      e.connect + e.read + e.write + e.timeout))
end
