-- wrk script for the container backend API on /DEV/0/AUTH_bench/big.
-- MODE=rowput: object-row PUTs of new names (<run>-t<thread>-<n>), as an
--   object server sends them;
-- MODE=first|middle|prefix: JSON listing pages of 10,000 (from the start,
--   from a marker in the middle, prefix "d" with delimiter "/");
-- MODE=head: HEAD of the container.
-- Environment: MODE, DEV, RUN.
local mode = os.getenv("MODE") or "head"
local dev = os.getenv("DEV") or "sda1"
local run = os.getenv("RUN") or "r"
local base = os.time()
local counter = 0
local nthreads = 0
local c = "/" .. dev .. "/0/AUTH_bench/big"

function setup(thread)
   thread:set("tid", nthreads)
   nthreads = nthreads + 1
end

function request()
   counter = counter + 1
   if mode == "rowput" then
      return wrk.format("PUT", string.format("%s/%s-t%d-%d", c, run, tid, counter), {
         ["X-Timestamp"] = string.format("%.5f", base + counter * 0.00001),
         ["X-Size"] = "4096",
         ["X-Content-Type"] = "application/octet-stream",
         ["X-Etag"] = "d41d8cd98f00b204e9800998ecf8427e",
         ["Content-Length"] = "0",
      })
   elseif mode == "first" then
      return wrk.format("GET", c .. "?format=json&limit=10000")
   elseif mode == "middle" then
      return wrk.format("GET", c .. "?format=json&limit=10000&marker=d500/o0500000")
   elseif mode == "prefix" then
      return wrk.format("GET", c .. "?format=json&limit=10000&prefix=d&delimiter=/")
   end
   return wrk.format("HEAD", c)
end
